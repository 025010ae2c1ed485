"""torch.repeat_interleave on ocl against torch CPU: repeats as a tensor (int64 and int32, zeros,
empty, output_size), a tensor repeated along a dim or flattened with its gradient, non-contiguous
inputs, and torch's errors; and the *_scatter ops, whose decompositions end in prims.copy_to."""

import pytest
import torch

from conftest import DEVICE, assert_close


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
@pytest.mark.parametrize("values", [[3, 0, 2], [0, 0], [], [1] * 37, [5]])
def test_repeats_tensor(no_fallbacks, dtype, values):
    r = torch.tensor(values, dtype=dtype)
    want = torch.repeat_interleave(r)
    got = torch.repeat_interleave(r.to(DEVICE))
    assert got.device.type == "ocl" and got.dtype == want.dtype
    assert torch.equal(got.cpu(), want)
    if values:
        sized = torch.repeat_interleave(r.to(DEVICE), output_size=int(r.sum()))
        assert torch.equal(sized.cpu(), want)


@pytest.mark.parametrize("dim", [0, 1, -1, None])
def test_tensor_along_dim_and_gradient(no_fallbacks, dim):
    torch.manual_seed(0)
    x = torch.randn(4, 6)[:, ::2]   # non-contiguous
    n = x.numel() if dim is None else x.shape[dim]
    r = torch.randint(0, 4, (n,))
    xc, xo = x.clone().requires_grad_(), x.to(DEVICE).requires_grad_()
    yc = torch.repeat_interleave(xc, r, dim=dim)
    yo = torch.repeat_interleave(xo, r.to(DEVICE), dim=dim)
    assert_close(yo, yc, 0, 0)
    g = torch.randn_like(yc)
    yc.backward(g)
    yo.backward(g.to(DEVICE))
    assert_close(xo.grad, xc.grad, 1e-6, 1e-6)


def test_int_repeats(no_fallbacks):
    x = torch.arange(6.).reshape(2, 3)
    for kw in ({}, {"dim": 0}, {"dim": 1}):
        assert torch.equal(torch.repeat_interleave(x.to(DEVICE), 3, **kw).cpu(), torch.repeat_interleave(x, 3, **kw))


def test_errors_match_torch():
    cases = [(torch.tensor([[1, 2]]), RuntimeError, "only accept 1D vector"),
             (torch.tensor([1, -2]), RuntimeError, "repeats can not be negative"),
             (torch.tensor([1.0, 2.0]), NotImplementedError, "not implemented for 'Float'")]
    for r, kind, text in cases:
        with pytest.raises(kind, match=text):
            torch.repeat_interleave(r)
        with pytest.raises(kind, match=text):
            torch.repeat_interleave(r.to(DEVICE))


@pytest.mark.parametrize("op,args", [
    (torch.diagonal_scatter, (torch.ones(4),)), (torch.diagonal_scatter, (torch.ones(3), 1)),
    (torch.select_scatter, (torch.ones(5), 0, 2)), (torch.slice_scatter, (torch.ones(2, 5), 0, 1, 3))])
def test_scatter_ops(no_fallbacks, op, args):
    torch.manual_seed(1)
    base = torch.randn(4, 5)[:, :4] if op is torch.diagonal_scatter else torch.randn(4, 5)
    src = torch.randn_like(args[0])
    bc, sc = base.clone().requires_grad_(), src.clone().requires_grad_()
    bo, so = base.to(DEVICE).requires_grad_(), src.to(DEVICE).requires_grad_()
    yc, yo = op(bc, sc, *args[1:]), op(bo, so, *args[1:])
    assert_close(yo, yc, 0, 0)
    g = torch.randn_like(yc)
    yc.backward(g)
    yo.backward(g.to(DEVICE))
    assert_close(bo.grad, bc.grad, 0, 0)
    assert_close(so.grad, sc.grad, 0, 0)
