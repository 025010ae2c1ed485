"""Reductions and cumulative ops on ocl against torch CPU."""

import math

import pytest
import torch

import oclcore
from conftest import DEVICE, assert_close

NAN, INF = math.nan, math.inf


def ocl(t):
    return t.to(DEVICE)


def _layouts():
    """(name, function making a CPU tensor of shape (4, 5, 6) in that layout)."""
    base = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()
    return {
        "contiguous": base,
        "transposed": torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(1)).permute(1, 2, 0),
        "sliced": torch.randn(4, 7, 12, generator=torch.Generator().manual_seed(2))[:, 1:6, ::2],
    }


LAYOUTS = _layouts()
DIMS = [None, 0, -1, (0, 2), (1, -1), (0, 1, 2)]

REDUCTIONS = {
    "sum": lambda x, d, k: x.sum() if d is None else x.sum(d, keepdim=k),
    "mean": lambda x, d, k: x.mean() if d is None else x.mean(d, keepdim=k),
    "nansum": lambda x, d, k: x.nansum() if d is None else x.nansum(d, keepdim=k),
    "amax": lambda x, d, k: x.amax() if d is None else x.amax(d, keepdim=k),
    "amin": lambda x, d, k: x.amin() if d is None else x.amin(d, keepdim=k),
    "var": lambda x, d, k: x.var(d, keepdim=k),
    "std0": lambda x, d, k: x.std(d, correction=0, keepdim=k),
    "norm": lambda x, d, k: torch.linalg.vector_norm(x, dim=d, keepdim=k),
    "logsumexp": lambda x, d, k: torch.logsumexp(x, dim=(0, 1, 2) if d is None else d, keepdim=k),
    "prod": lambda x, d, k: (x.prod() if d is None else x.prod(d if isinstance(d, int) else d[0], keepdim=k)),
    "all": lambda x, d, k: (x > -1).all() if d is None else (x > -1).all(d, keepdim=k),
    "any": lambda x, d, k: (x > 1.5).any() if d is None else (x > 1.5).any(d, keepdim=k),
    "count_nonzero": lambda x, d, k: torch.count_nonzero(x > 0, dim=d),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("op", list(REDUCTIONS))
def test_reductions_over_dims(op, layout, no_fallbacks):
    x = LAYOUTS[layout]
    f = REDUCTIONS[op]
    for d in DIMS:
        for keepdim in (False, True):
            assert_close(f(ocl(x), d, keepdim), f(x, d, keepdim), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", [
    lambda x: x.sum(), lambda x: x.mean(0), lambda x: x.var(1), lambda x: x.amax(0),
    lambda x: torch.linalg.vector_norm(x), lambda x: x.logsumexp(1), lambda x: x.max(0).indices,
    lambda x: x.argmin(), lambda x: x.sum(0),
], ids=["sum", "mean0", "var1", "amax0", "norm", "logsumexp1", "max0_indices", "argmin", "sum0"])
def test_long_reductions(fn, no_fallbacks):
    # rows long enough to be split into chunks plus a second pass, and columns for the work-item path
    x = torch.randn(40000, 3, generator=torch.Generator().manual_seed(3))
    for t in (x, x.t(), x[::2, 1:]):
        assert_close(fn(ocl(t)), fn(t), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 5, 7, 7), (2, 3, 28, 29), (1, 2, 3, 1000), (70, 9), (2, 12544)])
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "norm"])
def test_contiguous_rows_run_several_per_work_group(shape, op, no_fallbacks):
    """Reductions over contiguous trailing elements (squeeze-excitation pooling) run reduce_rows:
    a power of two of work-items per output and several outputs per work-group."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(5))
    dims = (-2, -1) if len(shape) == 4 else (-1,)
    f = {"sum": lambda t: t.sum(dims, keepdim=True), "mean": lambda t: t.mean(dims),
         "amax": lambda t: t.amax(dims), "norm": lambda t: torch.linalg.vector_norm(t, dim=dims)}[op]
    with oclcore.profile() as prof:
        actual = f(ocl(x))
    assert [name for _, name, *_ in prof.times()] == ["reduce_rows"]
    assert_close(actual, f(x), rtol=1e-5, atol=1e-5)
    # a strided view of the same values takes the other kernels and agrees
    assert_close(f(ocl(x.transpose(0, 1).contiguous()).transpose(0, 1)), f(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn,kernel", [
    (lambda t: t.sum((0, 2, 3)), "reduce_value"), (lambda t: t.mean((0, 2, 3), keepdim=True), "reduce_value"),
    (lambda t: t.amin((0, 2, 3)), "reduce_value"), (lambda t: t.var((0, 2, 3)), "reduce_moments"),
    (lambda t: t.argmax(0), "reduce_arg"), (lambda t: torch.logsumexp(t, (0, 2, 3)), "reduce_lse"),
], ids=["sum", "mean", "amin", "var", "argmax", "logsumexp"])
def test_long_strided_columns_are_chunked(fn, kernel, no_fallbacks):
    """Per-channel reductions of a channels-last tensor (convnext's layer-scale gradient): each
    work-item folds a chunk of one column, a second pass folds each output's chunks."""
    x = torch.randn(4, 30, 30, 70, generator=torch.Generator().manual_seed(6)).permute(0, 3, 1, 2)
    if kernel == "reduce_arg":
        x = x.permute(0, 2, 3, 1).reshape(3600, 70)  # argmax over the strided dim 0
    with oclcore.profile() as prof:
        actual = fn(ocl(x) if kernel == "reduce_arg" else ocl(x.permute(0, 2, 3, 1).contiguous()).permute(0, 3, 1, 2))
    assert [name for _, name, *_ in prof.times()][-2:] == [kernel, kernel]
    assert_close(actual, fn(x), rtol=1e-4, atol=1e-5)
    # two chunks per column: the second pass runs with its smallest work-groups
    y = torch.randn(600, 100, generator=torch.Generator().manual_seed(7))
    y = y if kernel == "reduce_arg" else y.view(600, 100, 1, 1)
    assert_close(fn(ocl(y)), fn(y), rtol=1e-4, atol=1e-5)


def test_deterministic(no_fallbacks):
    x = ocl(torch.randn(70000, generator=torch.Generator().manual_seed(4)))
    for f in (lambda t: t.sum(), lambda t: t.var(), lambda t: t.view(70, 1000).sum(0),
              lambda t: t.view(700, 100).logsumexp(1), lambda t: torch.softmax(t.view(7, 10000), 1)):
        a, b = f(x).cpu(), f(x).cpu()
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_sum_dtypes(no_fallbacks):
    i = torch.randint(-100, 100, (6, 7), dtype=torch.int32)
    assert_close(ocl(i).sum(), i.sum())
    assert_close(ocl(i).sum(1), i.sum(1))
    assert_close(ocl(i.to(torch.int8)).sum(0, keepdim=True), i.to(torch.int8).sum(0, keepdim=True))
    assert_close(ocl(i > 0).sum(1), (i > 0).sum(1))
    assert_close(ocl(i.long() * 2**40).sum(0), (i.long() * 2**40).sum(0))
    assert_close(ocl(i).sum(1, dtype=torch.float64), i.sum(1, dtype=torch.float64))
    assert_close(ocl(i.float()).sum(1, dtype=torch.int16), i.float().sum(1, dtype=torch.int16))
    assert_close(ocl(i % 3).prod(1), (i % 3).prod(1))
    assert_close(ocl(i).amax(1), i.amax(1))
    assert_close(ocl(i).amin((0, 1)), i.amin((0, 1)))
    assert_close(ocl(i).max(1).indices, i.max(1).indices)
    assert_close(ocl(i).mean(1, dtype=torch.float32), i.mean(1, dtype=torch.float32))
    assert_close(ocl(i).cumsum(1), i.cumsum(1))
    assert_close(ocl(i.to(torch.uint8)).all(1), i.to(torch.uint8).all(1))
    assert_close(ocl((i > 0).to(torch.bool)).any(0), (i > 0).any(0))


def test_mean_of_int_errors_like_torch():
    i = torch.arange(6)
    with pytest.raises(RuntimeError) as cpu:
        i.mean()
    with pytest.raises(RuntimeError) as dev:
        ocl(i).mean()
    assert str(dev.value) == str(cpu.value)


def test_bad_dim_errors_like_torch():
    x = torch.randn(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        ocl(x).sum(2)
    with pytest.raises(RuntimeError, match="Expected reduction dim"):
        ocl(torch.empty(0)).max()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_float_dtypes(dtype, no_fallbacks):
    x = torch.randn(8, 33, generator=torch.Generator().manual_seed(5)).to(dtype)
    tol = 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-10
    for f in (lambda t: t.sum(1), lambda t: t.mean(), lambda t: t.amax(0), lambda t: t.var(1),
              lambda t: t.std(0), lambda t: torch.linalg.vector_norm(t, 3, 1), lambda t: t.logsumexp(0),
              lambda t: t.cumsum(1), lambda t: t.max(1).values):
        assert_close(f(ocl(x)), f(x), rtol=tol, atol=tol)
    assert_close(ocl(x).argmax(1), x.argmax(1))


def test_max_min_indices_ties_and_nan(no_fallbacks):
    x = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0],
                      [2.0, NAN, 5.0, NAN, 1.0],
                      [-INF, -INF, -INF, -INF, -INF],
                      [0.0, -1.0, -1.0, 4.0, -1.0]])
    for t in (x, x.t().contiguous().t()):
        for f in (lambda a: a.max(1), lambda a: a.min(1), lambda a: a.max(0), lambda a: a.min(0, keepdim=True)):
            values, indices = f(ocl(t))
            ev, ei = f(t)
            assert_close(values, ev)
            assert_close(indices, ei)
        for f in (lambda a: a.argmax(1), lambda a: a.argmin(1), lambda a: a.argmax(),
                  lambda a: a.argmin(keepdim=True), lambda a: a.amax(1), lambda a: a.amin(1), lambda a: a.max(),
                  lambda a: a.min(), lambda a: torch.aminmax(a, dim=1)[0], lambda a: torch.aminmax(a)[1]):
            assert_close(f(ocl(t)), f(t))
    y = torch.tensor([[5, 1, 5, 1], [2, 2, 2, 2]])
    assert_close(ocl(y).argmax(1), y.argmax(1))
    assert_close(ocl(y).argmin(1), y.argmin(1))
    assert_close(ocl(y).argmax(), y.argmax())


@pytest.mark.parametrize("ord", [2, 1, INF, -INF, 0, 3, 0.5, -1])
def test_vector_norm_orders(ord, no_fallbacks):
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(6))
    x[0, 0] = 0
    for dim in (None, 1, (0, 1)):
        for keepdim in (False, True):
            assert_close(torch.linalg.vector_norm(ocl(x), ord, dim, keepdim), torch.linalg.vector_norm(x, ord, dim, keepdim))
    assert_close(torch.linalg.vector_norm(ocl(x), ord, dtype=torch.float64),
                 torch.linalg.vector_norm(x, ord, dtype=torch.float64))
    assert_close(ocl(x).norm(p=ord if ord not in (INF, -INF) else 2, dim=0), x.norm(p=ord if ord not in (INF, -INF) else 2, dim=0))


def test_var_std_corrections(no_fallbacks):
    x = torch.randn(7, 9, generator=torch.Generator().manual_seed(7)) * 10 + 100
    for c in (0, 1, 2, 0.5):
        assert_close(ocl(x).var(1, correction=c), x.var(1, correction=c), rtol=1e-4)
        assert_close(ocl(x).std(0, correction=c, keepdim=True), x.std(0, correction=c, keepdim=True), rtol=1e-4)
    for f in (lambda t: torch.var_mean(t, 1), lambda t: torch.std_mean(t, (0, 1), correction=0),
              lambda t: torch.var_mean(t, 0, keepdim=True)):
        for a, b in zip(f(ocl(x)), f(x)):
            assert_close(a, b, rtol=1e-4)


def test_empty_and_scalar_inputs(no_fallbacks):
    e = torch.empty(0, 3)
    for f in (lambda t: t.sum(), lambda t: t.sum(0), lambda t: t.prod(0), lambda t: t.mean(0),
              lambda t: t.sum(1), lambda t: t.amax(1), lambda t: t.logsumexp(0), lambda t: (t > 0).all(0),
              lambda t: (t > 0).any(), lambda t: torch.linalg.vector_norm(t, dim=0), lambda t: t.cumsum(0),
              lambda t: torch.count_nonzero(t, 0), lambda t: t.var(0, correction=0)):
        assert_close(f(ocl(e)), f(e))
    s = torch.tensor(2.5)
    for f in (lambda t: t.sum(), lambda t: t.sum(0), lambda t: t.amax(-1, keepdim=True), lambda t: t.max(0)[1],
              lambda t: t.var(correction=0), lambda t: t.logsumexp(0), lambda t: t.cumsum(0),
              lambda t: t.argmax(), lambda t: torch.linalg.vector_norm(t)):
        assert_close(f(ocl(s)), f(s))


def test_all_any_overloads(no_fallbacks):
    x = torch.tensor([[0.0, 1.0, NAN], [2.0, 3.0, 4.0]])
    for f in (lambda t: t.all(), lambda t: t.any(), lambda t: t.all(1), lambda t: t.any(0, keepdim=True),
              lambda t: torch.all(t, dim=(0, 1)), lambda t: torch.any(t, dim=()),
              lambda t: torch.all(t.long(), dim=1)):
        assert_close(f(ocl(x)), f(x))


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
def test_cumulative(op, no_fallbacks):
    for x in LAYOUTS.values():
        for d in (0, 1, -1):
            assert_close(getattr(ocl(x), op)(d), getattr(x, op)(d), rtol=1e-5, atol=1e-5)
    x = LAYOUTS["transposed"]
    assert_close(getattr(ocl(x), op)(2, dtype=torch.float64), getattr(x, op)(2, dtype=torch.float64))
    b = torch.tensor([[True, False, True], [True, True, True]])
    assert_close(getattr(ocl(b), op)(1), getattr(b, op)(1))
    y = ocl(x)
    getattr(y, op + "_")(1)
    assert_close(y, getattr(x, op)(1), rtol=1e-5, atol=1e-5)


def test_logcumsumexp_forward_backward_and_edges(no_fallbacks):
    for x in LAYOUTS.values():
        for d in (0, -1):
            assert_close(torch.logcumsumexp(ocl(x), d), torch.logcumsumexp(x, d), rtol=1e-5, atol=1e-5)
    e = torch.tensor([[-math.inf, -math.inf, 0.0, math.inf, 1.0], [1.0, math.nan, 2.0, -math.inf, 3.0]])
    assert_close(torch.logcumsumexp(ocl(e), 1), torch.logcumsumexp(e, 1))
    x = torch.randn(3, 6, dtype=torch.float64)
    xc, xo = x.clone().requires_grad_(), ocl(x).requires_grad_()
    g = torch.randn(3, 6, dtype=torch.float64)
    torch.logcumsumexp(xc, 1).backward(g)
    torch.logcumsumexp(xo, 1).backward(ocl(g))
    assert_close(xo.grad, xc.grad)
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        torch.logcumsumexp(ocl(torch.arange(4)), 0)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_running_max_and_min_with_ties_and_nan(op, no_fallbacks):
    x = torch.tensor([[1.0, 3.0, 3.0, 2.0, math.nan, 5.0, math.nan, 0.0], [2.0, 2.0, 1.0, 1.0, 4.0, 0.0, 4.0, -1.0]])
    for t in (x, x.t().contiguous().t(), x.to(torch.int32).clamp(-5, 5), x[:, 1::2]):
        t = torch.nan_to_num(t) if not t.dtype.is_floating_point else t
        for d in (1, 0):
            got, want = getattr(torch, op)(ocl(t), d), getattr(torch, op)(t, d)
            assert_close(got.values, want.values, rtol=0, atol=0)
            assert torch.equal(got.indices.cpu(), want.indices)
    b = torch.tensor([[True, False, True], [False, False, True]])
    got, want = getattr(torch, op)(ocl(b), 1), getattr(torch, op)(b, 1)
    assert torch.equal(got.values.cpu(), want.values) and torch.equal(got.indices.cpu(), want.indices)
    y = torch.randn(4, 5, dtype=torch.float64)
    yc, yo = y.clone().requires_grad_(), ocl(y).requires_grad_()
    g = torch.randn(4, 5, dtype=torch.float64)
    getattr(torch, op)(yc, 0).values.backward(g)
    getattr(torch, op)(yo, 0).values.backward(ocl(g))
    assert_close(yo.grad, yc.grad)


def test_out_variants(no_fallbacks):
    x = torch.randn(4, 5)
    out = ocl(torch.empty(4))
    r = torch.sum(ocl(x), 1, out=out)
    assert r is out
    assert_close(out, x.sum(1))
    values, indices = ocl(torch.empty(5)), ocl(torch.empty(5, dtype=torch.long))
    torch.max(ocl(x), 0, out=(values, indices))
    assert_close(values, x.max(0).values)
    assert_close(indices, x.max(0).indices)
    out = ocl(torch.empty(4, 5))
    torch.cumsum(ocl(x), 1, out=out)
    assert_close(out, x.cumsum(1))
    out = ocl(torch.empty(5, dtype=torch.float64))
    torch.mean(ocl(x), 0, out=out)  # the result is converted to out's dtype
    assert_close(out, x.mean(0).double())


def _grad(f, x, device):
    t = x.detach().to(device).requires_grad_(True)
    y = f(t)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(9), dtype=y.dtype)
    y.backward(g.to(device))
    return t.grad


@pytest.mark.parametrize("fn", [
    lambda x: x.sum(), lambda x: x.sum((0, 2), keepdim=True), lambda x: x.mean(1), lambda x: x.var(-1),
    lambda x: x.std((0, 1), correction=0), lambda x: torch.linalg.vector_norm(x, dim=1),
    lambda x: torch.linalg.vector_norm(x, 3), lambda x: x.logsumexp(2), lambda x: x.amax(0),
    lambda x: x.cumsum(1),
], ids=["sum", "sum_keepdim", "mean", "var", "std", "norm2", "norm3", "logsumexp", "amax", "cumsum"])
def test_backward(fn):
    oclcore.reset_fallbacks()
    x = LAYOUTS["transposed"]
    assert_close(_grad(fn, x, DEVICE), _grad(fn, x, "cpu"), rtol=1e-4, atol=1e-5)
    mine = {"aten::" + n for n in ("sum", "mean", "var", "std", "linalg_vector_norm", "logsumexp", "amax", "cumsum")}
    assert not mine & set(oclcore.fallbacks()), oclcore.fallbacks()


def test_planned_calls_follow_data_offsets_and_arguments(no_fallbacks):
    # a signature is planned once: later calls differ in data, storage offset and argument values
    base = torch.randn(4, 64, generator=torch.Generator().manual_seed(10))
    big = ocl(base)
    for r in range(4):  # same shape and strides, another offset into the same buffer each time
        v = big[r].view(4, 16)
        assert_close(v.sum(1), base[r].view(4, 16).sum(1))
        assert_close(v.mean(1, keepdim=True), base[r].view(4, 16).mean(1, keepdim=True))
        assert_close(v.amax(0), base[r].view(4, 16).amax(0))
        assert_close(v.sum(), base[r].view(4, 16).sum())
    x, xc = big[:, :16], base[:, :16]
    assert_close(x.sum(1), xc.sum(1))
    assert_close(x.sum(1, dtype=torch.float64), xc.sum(1, dtype=torch.float64))
    assert_close(x.sum(0), xc.sum(0))
    for c in (1, 0, 1):
        assert_close(x.var(1, correction=c), xc.var(1, correction=c))
    for p in (2, 3, 2.0, 1):
        assert_close(torch.linalg.vector_norm(x, p, 1), torch.linalg.vector_norm(xc, p, 1))
    values, indices = x.max(1)
    assert_close(values, xc.max(1).values)
    assert_close(indices, xc.max(1).indices)
    assert_close(x.argmax(1), xc.argmax(1))
    with pytest.raises(IndexError, match="Dimension out of range"):  # after the valid dims were planned
        x.sum(2)
    with pytest.raises(RuntimeError) as dev:
        ocl(torch.arange(6)).mean(0)
    with pytest.raises(RuntimeError) as cpu:
        torch.arange(6).mean(0)
    assert str(dev.value) == str(cpu.value)


def test_planned_call_on_a_buffer_needing_long_indices(monkeypatch, no_fallbacks):
    # a plan made for 32-bit indices must not serve a view into a buffer too large for them
    from oclcore.ops import reduce

    monkeypatch.setattr(reduce, "_INT32_MAX", 1000)
    built = []
    kernel = reduce.kernel
    monkeypatch.setattr(reduce, "kernel", lambda *a: built.append(a[4]) or kernel(*a))
    base = torch.randn(3000, generator=torch.Generator().manual_seed(11))
    small, big = ocl(base[:63]), ocl(base)
    assert_close(small.view(9, 7).t().sum(0, keepdim=True), base[:63].view(9, 7).t().sum(0, keepdim=True))
    view = big[2000:2063].view(9, 7).t()  # the same shape and strides in a 3000-element buffer
    assert_close(view.sum(0, keepdim=True), base[2000:2063].view(9, 7).t().sum(0, keepdim=True))
    assert built == ["int", "long"]


@pytest.mark.parametrize("positions", [(7, 7), (15, 17), (16, 16), (1, 257)], ids=str)
def test_position_reductions_either_side_of_the_per_item_limit(positions, no_fallbacks):
    """Means, sums, variances and argmaxes over the positions of many planes: reductions of up to
    ITEM_MAX_NRED elements fold one work-item per output, longer ones a work-group per output."""
    from oclcore.ops import reduce
    h, w = positions
    assert (h * w <= reduce.ITEM_MAX_NRED) == (h * w < 257)
    x = torch.randn(3, 70, h, w, generator=torch.Generator().manual_seed(h * w))
    for f in (lambda t: t.mean((2, 3), keepdim=True), lambda t: t.sum((2, 3)), lambda t: t.var((2, 3)),
              lambda t: t.flatten(2).argmax(2), lambda t: t.amax((2, 3))):
        assert_close(f(ocl(x)), f(x), rtol=1e-5, atol=1e-5)
