"""softmax / log_softmax on ocl (forward and backward) against torch CPU."""

import math

import pytest
import torch

from conftest import DEVICE, assert_close

INF, NAN = math.inf, math.nan
FUNCS = {"softmax": torch.softmax, "log_softmax": torch.log_softmax}


def ocl(t):
    return t.to(DEVICE)


def _inputs():
    g = torch.Generator().manual_seed(0)
    return {
        "contiguous": torch.randn(3, 4, 70, generator=g) * 5,  # 70 > 64: a work-group per row on dim -1
        "transposed": (torch.randn(70, 3, 4, generator=g) * 5).permute(1, 2, 0),
        "sliced": (torch.randn(3, 9, 150, generator=g) * 5)[:, 2:6, ::2],
    }


INPUTS = _inputs()


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("layout", list(INPUTS))
def test_forward_every_dim(name, layout, no_fallbacks):
    x = INPUTS[layout]
    f = FUNCS[name]
    for dim in (0, 1, 2, -1):
        assert_close(f(ocl(x), dim), f(x, dim), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("layout", list(INPUTS))
def test_backward_every_dim(name, layout, no_fallbacks):
    x = INPUTS[layout]
    f = FUNCS[name]
    for dim in (0, -1):
        g = torch.randn(x.shape, generator=torch.Generator().manual_seed(dim + 5))
        grads = []
        for dev in ("cpu", DEVICE):
            t = x.detach().to(dev).requires_grad_(True)
            f(t, dim).backward(g.to(dev))
            grads.append(t.grad)
        assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", list(FUNCS))
def test_dtypes(name, dtype, no_fallbacks):
    x = (torch.randn(5, 80, generator=torch.Generator().manual_seed(1)) * 4).to(dtype)
    f = FUNCS[name]
    tol = 1e-2 if dtype != torch.float64 else 1e-12
    # reference computed in float64 then rounded: ocl computes half/bf16 in float
    for dim in (0, 1):
        expected = f(x.double(), dim).to(dtype)
        assert_close(f(ocl(x), dim), expected, rtol=tol, atol=tol)
        assert_close(f(ocl(x), dim, dtype=torch.float32), f(x.float(), dim), rtol=1e-5, atol=1e-6)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    t = ocl(x).requires_grad_(True)
    f(t, 1).backward(ocl(g))
    r = x.double().requires_grad_(True)
    f(r, 1).backward(g.double())
    assert_close(t.grad, r.grad.to(dtype), rtol=tol * 5, atol=tol * 5)


def test_half_to_float(no_fallbacks):
    x = torch.randn(4, 100, generator=torch.Generator().manual_seed(3)).half()
    for op in (torch.ops.aten._softmax.default, torch.ops.aten._log_softmax.default):
        y = op(ocl(x), 1, True)
        assert y.dtype == torch.float32
        assert_close(y, op(x.float(), 1, False), rtol=1e-5, atol=1e-6)


def test_extreme_values(no_fallbacks):
    x = torch.tensor([[1000.0, 0.0, -1000.0], [-INF, 0.0, 1.0], [-INF, -INF, -INF], [INF, 1.0, 2.0],
                      [NAN, 1.0, 2.0], [88.0, 89.0, 90.0]])
    for name, f in FUNCS.items():
        for t in (x, x.t().contiguous().t()):
            assert_close(f(ocl(t), 1), f(t, 1))


def test_empty_scalar_and_long_rows(no_fallbacks):
    for x, dim in ((torch.empty(0, 5), 1), (torch.empty(3, 0), 1), (torch.tensor(1.5), 0),
                   (torch.randn(2, 5000, generator=torch.Generator().manual_seed(4)), 1),
                   (torch.randn(300, 2, generator=torch.Generator().manual_seed(5)), 1)):
        for f in FUNCS.values():
            assert_close(f(ocl(x), dim), f(x, dim), rtol=1e-5, atol=1e-7)


def test_integer_input_errors_like_torch():
    x = torch.arange(4)
    with pytest.raises(RuntimeError) as cpu:
        torch.ops.aten._softmax(x, 0, False)
    with pytest.raises(RuntimeError) as dev:
        torch.ops.aten._softmax(ocl(x), 0, False)
    assert str(dev.value) == str(cpu.value)


def test_deterministic_and_out(no_fallbacks):
    x = ocl(torch.randn(6, 3000, generator=torch.Generator().manual_seed(6)))
    a, b = torch.log_softmax(x, 1).cpu(), torch.log_softmax(x, 1).cpu()
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    out = ocl(torch.empty(6, 3000))
    torch.ops.aten._softmax.out(x, 1, False, out=out)
    assert_close(out, torch.softmax(x.cpu(), 1), rtol=1e-5, atol=1e-7)


def test_planned_calls_follow_data_and_offsets(no_fallbacks):
    # a signature is planned once: later calls read other data at other offsets of one buffer
    base = torch.randn(4, 2, 100, generator=torch.Generator().manual_seed(7)) * 3
    big = ocl(base)
    for r in range(4):
        for name, f in FUNCS.items():
            assert_close(f(big[r], 1), f(base[r], 1), rtol=1e-5, atol=1e-6)
            assert_close(f(big[r], 0), f(base[r], 0), rtol=1e-5, atol=1e-6)
    y, g = torch.softmax(base[0], 1), torch.randn(2, 100, generator=torch.Generator().manual_seed(8))
    yo, go = ocl(y), ocl(g)
    for _ in range(2):
        assert_close(torch.ops.aten._softmax_backward_data(go, yo, 1, torch.float32),
                     torch.ops.aten._softmax_backward_data(g, y, 1, torch.float32), rtol=1e-5, atol=1e-6)
        # a gradient of another dtype than the output is converted first (torch's CPU kernel refuses it)
        assert_close(torch.ops.aten._softmax_backward_data(go, yo.double(), 1, torch.float64),
                     torch.ops.aten._softmax_backward_data(g.double(), y.double(), 1, torch.float64))
