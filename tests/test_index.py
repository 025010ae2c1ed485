"""Gathers, scatters and advanced indexing on ocl against torch CPU."""

import pytest
import torch

from oclcore.ops.index import check_index_errors
from conftest import DEVICE, assert_close


def ocl(t):
    return t.to(DEVICE)


def grad_pair(x):
    """A CPU leaf and its ocl leaf copy, both requiring grad."""
    a = x.clone().requires_grad_(True)
    b = ocl(x).requires_grad_(True)
    return a, b


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float16, torch.bool])
def test_index_select_dtypes(dtype, no_fallbacks):
    x = (torch.randn(4, 6) * 5).to(dtype)
    idx = torch.tensor([3, 0, 0, 2, 5])
    assert_close(ocl(x).index_select(1, ocl(idx)), x.index_select(1, idx))
    assert_close(ocl(x).index_select(0, ocl(idx[:3]).int()), x.index_select(0, idx[:3]))


def test_index_select_noncontiguous_backward(no_fallbacks):
    x = torch.randn(5, 7)
    idx = torch.tensor([6, 1, 1, 4, 0, 2])[::2]
    a, b = grad_pair(x)
    ra, rb = a.t().index_select(0, idx), b.t().index_select(0, ocl(idx))
    assert_close(rb, ra)
    g = torch.randn(ra.shape)
    ra.backward(g)
    rb.backward(ocl(g))
    assert_close(b.grad, a.grad)


def test_index_select_empty_and_0dim(no_fallbacks):
    x = torch.randn(3, 4)
    e = torch.tensor([], dtype=torch.long)
    assert_close(ocl(x).index_select(0, ocl(e)), x.index_select(0, e))
    s = torch.tensor(2.5)
    assert_close(ocl(s).index_select(0, ocl(torch.tensor([0]))), s.index_select(0, torch.tensor([0])))


def test_gather_backward(no_fallbacks):
    x = torch.randn(4, 5)
    idx = torch.randint(0, 5, (4, 8))
    a, b = grad_pair(x)
    ra, rb = a.gather(1, idx), b.gather(1, ocl(idx))
    assert_close(rb, ra)
    g = torch.randn(ra.shape)
    ra.backward(g)
    rb.backward(ocl(g))
    assert_close(b.grad, a.grad)


def test_gather_noncontiguous(no_fallbacks):
    x = torch.randn(6, 5)[::2].t()  # (5, 3)
    idx = torch.randint(0, 5, (3, 3)).t()
    assert_close(ocl(x).gather(0, ocl(idx)), x.gather(0, idx))
    idx2 = torch.randint(0, 3, (2, 2))
    assert_close(ocl(x).gather(1, ocl(idx2)), x.gather(1, idx2))


def test_scatter_family(no_fallbacks):
    x = torch.randn(4, 5)
    src = torch.randn(4, 6)
    idx = torch.randint(0, 5, (4, 3))
    X, S, I = ocl(x), ocl(src), ocl(idx)
    # scatter with duplicates is order-dependent in torch: use a permutation for assign
    perm = torch.stack([torch.randperm(5)[:3] for _ in range(4)])
    assert_close(X.scatter(1, ocl(perm), S), x.scatter(1, perm, src))
    assert_close(X.scatter(1, ocl(perm), 2.5), x.scatter(1, perm, 2.5))
    assert_close(X.scatter_add(1, I, S), x.scatter_add(1, idx, src))
    assert_close(X.scatter(1, I, S, reduce="add"), x.scatter(1, idx, src, reduce="add"))
    assert_close(X.scatter(1, I, S, reduce="multiply"), x.scatter(1, idx, src, reduce="multiply"))
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            assert_close(X.scatter_reduce(1, I, S, reduce, include_self=include_self),
                         x.scatter_reduce(1, idx, src, reduce, include_self=include_self))
    y = ocl(x)
    y.scatter_add_(0, ocl(torch.randint(0, 4, (2, 5))), S)  # in place, src wider than index
    check_index_errors()


def test_scatter_int_and_backward(no_fallbacks):
    x = torch.randint(-5, 5, (3, 4))
    idx = torch.randint(0, 4, (3, 4))
    src = torch.randint(-5, 5, (3, 4))
    assert_close(ocl(x).scatter_add(1, ocl(idx), ocl(src)), x.scatter_add(1, idx, src))
    assert_close(ocl(x).scatter_reduce(1, ocl(idx), ocl(src), "mean"), x.scatter_reduce(1, idx, src, "mean"))
    xf, sf = torch.randn(3, 4), torch.randn(3, 4)
    a, b = grad_pair(xf)
    sa, sb = grad_pair(sf)
    ra, rb = a.scatter_add(1, idx, sa), b.scatter_add(1, ocl(idx), sb)
    g = torch.randn(3, 4)
    ra.backward(g)
    rb.backward(ocl(g))
    assert_close(b.grad, a.grad)
    assert_close(sb.grad, sa.grad)


def test_scatter_add_deterministic(no_fallbacks):
    idx = torch.randint(0, 3, (2000,))
    src = torch.randn(2000)
    r1 = ocl(torch.zeros(3)).scatter_add(0, ocl(idx), ocl(src)).cpu()
    r2 = ocl(torch.zeros(3)).scatter_add(0, ocl(idx), ocl(src)).cpu()
    assert torch.equal(r1, r2)
    assert_close(r1, torch.zeros(3, dtype=torch.float64).scatter_add(0, idx, src.double()).float(), rtol=1e-4)


def test_advanced_index(no_fallbacks):
    x = torch.randn(4, 5, 6)
    X = ocl(x)
    i = torch.tensor([[0, 3], [-1, 2]])
    j = torch.tensor([4, -5])
    for key in [(i,), (slice(None), j), (i, j), (i, slice(None), j), (slice(None), slice(1, 4), j),
                (None, i, j), (Ellipsis, j), (0, i)]:
        okey = tuple(ocl(k) if isinstance(k, torch.Tensor) else k for k in key)
        assert_close(X[okey], x[key])
    # non-contiguous source and index
    idx = torch.tensor([3, 1, 0, 2, 2, 1])[::2]
    assert_close(X.transpose(0, 2)[:, ocl(idx)], x.transpose(0, 2)[:, idx])
    # CPU index tensor on an ocl tensor
    assert_close(X[i], x[i])
    # empty index
    e = torch.tensor([], dtype=torch.long)
    assert_close(X[ocl(e)], x[e])


def test_bool_index_and_masked_select(no_fallbacks):
    x = torch.randn(4, 5)
    X = ocl(x)
    m = x > 0
    assert_close(X[ocl(m)], x[m])
    assert_close(X[ocl(m[:, 0])], x[m[:, 0]])
    assert_close(X[:, ocl(m[0])], x[:, m[0]])
    none = torch.zeros(4, 5, dtype=torch.bool)
    assert_close(X[ocl(none)], x[none])
    assert_close(X.masked_select(ocl(m[0])), x.masked_select(m[0]))  # broadcast mask
    assert_close(ocl(x.t()).masked_select(ocl(m.t())), x.t().masked_select(m.t()))


def test_index_backward(no_fallbacks):
    x = torch.randn(5, 4)
    idx = torch.tensor([0, 4, 0, 2, 0])
    a, b = grad_pair(x)
    ra, rb = a[:, idx % 4][idx], b[:, ocl(idx % 4)][ocl(idx)]
    g = torch.randn(ra.shape)
    ra.backward(g)
    rb.backward(ocl(g))
    assert_close(b.grad, a.grad)


def test_index_put(no_fallbacks):
    x = torch.randn(5, 4)
    idx = torch.tensor([0, 3, 3, 1])
    v = torch.randn(4, 4)
    X = ocl(x)
    X[ocl(torch.tensor([1, 4]))] = ocl(torch.tensor(2.0))
    x2 = x.clone()
    x2[torch.tensor([1, 4])] = 2.0
    assert_close(X, x2)
    acc = ocl(x).index_put_((ocl(idx),), ocl(v), accumulate=True)
    assert_close(acc, x.clone().index_put_((idx,), v, accumulate=True))
    uniq = torch.tensor([0, 3, 2])
    assert_close(ocl(x).index_put((ocl(uniq), ocl(torch.tensor([1]))), ocl(torch.tensor([7.0, 8.0, 9.0]))),
                 x.index_put((uniq, torch.tensor([1])), torch.tensor([7.0, 8.0, 9.0])))
    # masks: scalar (a where), tensor values, accumulate
    m = x > 0
    y, Y = x.clone(), ocl(x)
    y[m] = -1.0
    Y[ocl(m)] = -1.0
    assert_close(Y, y)
    y[m] = torch.arange(int(m.sum()), dtype=torch.float32)
    Y[ocl(m)] = ocl(torch.arange(int(m.sum()), dtype=torch.float32))
    assert_close(Y, y)
    y.index_put_((m,), torch.tensor(1.5), accumulate=True)
    Y.index_put_((ocl(m),), ocl(torch.tensor(1.5)), accumulate=True)
    assert_close(Y, y)
    # a non-contiguous destination
    z, Z = torch.zeros(4, 6), ocl(torch.zeros(4, 6))
    z.t()[torch.tensor([5, 0])] = 3.0
    Z.t()[ocl(torch.tensor([5, 0]))] = 3.0
    assert_close(Z, z)


def test_index_add(no_fallbacks):
    x = torch.randn(5, 3)
    src = torch.randn(4, 3)
    idx = torch.tensor([4, 0, 4, 1])
    assert_close(ocl(x).index_add(0, ocl(idx), ocl(src), alpha=2), x.index_add(0, idx, src, alpha=2))


def test_embedding(no_fallbacks):
    w = torch.randn(10, 4)
    idx = torch.tensor([[1, 3, 3], [0, 9, 3]])
    for padding_idx, scale in ((None, False), (3, False), (None, True)):
        a, b = grad_pair(w)
        ra = torch.nn.functional.embedding(idx, a, padding_idx=padding_idx, scale_grad_by_freq=scale)
        rb = torch.nn.functional.embedding(ocl(idx), b, padding_idx=padding_idx, scale_grad_by_freq=scale)
        assert_close(rb, ra)
        g = torch.randn(ra.shape)
        ra.backward(g)
        rb.backward(ocl(g))
        assert_close(b.grad, a.grad)


def test_nonzero_where(no_fallbacks):
    for x in (torch.tensor([[0.0, -0.0, 1.5], [float("nan"), 0.0, 2.0]]), torch.zeros(3, 0),
              torch.tensor(3), torch.tensor(0.0), torch.randint(0, 2, (3, 4, 5)).bool()):
        assert_close(ocl(x).nonzero(), x.nonzero())
    x = torch.randint(0, 3, (40, 30))
    X = ocl(x.t())
    assert_close(X.nonzero(), x.t().nonzero())
    for a, b in zip(torch.where(X > 0), torch.where(x.t() > 0)):
        assert_close(a, b)


def test_nonzero_static(no_fallbacks):
    """Fewer, exactly as many and more rows than nonzero elements (spread over several chunks of
    the count kernel), fill values, views, 0-dim and empty inputs, out= and torch's error."""
    x = torch.randint(0, 3, (40, 30)) * (torch.rand(40, 30) < 0.3)
    k = int(x.count_nonzero())
    for t in (x, x.t(), x[::3, 1:]):
        for size in (0, 5, k, k + 7):
            assert_close(torch.nonzero_static(ocl(t), size=size), torch.nonzero_static(t, size=size))
        assert_close(torch.nonzero_static(ocl(t), size=k + 3, fill_value=-9),
                     torch.nonzero_static(t, size=k + 3, fill_value=-9))
    for t in (torch.tensor(2.5), torch.tensor(0.0), torch.zeros(3, 0), torch.tensor([[True, False], [True, True]])):
        assert_close(torch.nonzero_static(ocl(t), size=4), torch.nonzero_static(t, size=4))
    out = ocl(torch.empty(6, 2, dtype=torch.int64))
    torch.nonzero_static(ocl(x), size=6, out=out)
    assert_close(out, torch.nonzero_static(x, size=6))
    with pytest.raises(RuntimeError, match="'size' must be an non-negative integer"):
        torch.nonzero_static(ocl(x), size=-1)


def test_out_of_range_indices():
    x = ocl(torch.randn(3, 4))
    with pytest.raises(IndexError):
        x[torch.tensor([3])]  # CPU index: checked at once
    with pytest.raises(IndexError):
        x[:, torch.tensor([-5])]
    x.index_select(0, ocl(torch.tensor([-1])))  # index_select takes no negative indices
    with pytest.raises(IndexError):
        check_index_errors()
    x.gather(1, ocl(torch.tensor([[4]])))  # device index: flagged, raised at the next check
    with pytest.raises(IndexError, match="out of bounds"):
        check_index_errors()
    check_index_errors()  # the flag is cleared
    x[ocl(torch.tensor([-4]))]
    with pytest.raises(IndexError):
        x.nonzero()  # ops that synchronise check the flag
    x[ocl(torch.tensor([-3]))]
    check_index_errors()


def test_out_of_range_device_indices_raise_at_the_next_synchronisation():
    x = ocl(torch.ones(5, 3))
    bad = ocl(torch.tensor([[0, 0, 0], [9, 9, 9]]))
    y = x.scatter_add(0, bad, ocl(torch.ones(2, 3)))
    with pytest.raises(IndexError, match="index 9 is out of bounds"):
        y.cpu()  # (a copy to the host waits, so it reports the bad index instead of a wrong result)
    x.index_reduce(0, ocl(torch.tensor([7])), ocl(torch.ones(1, 3)), "amax")
    with pytest.raises(IndexError, match="index 7"):
        torch.ocl.synchronize()
    x.gather(1, ocl(torch.tensor([[5]])))
    with pytest.raises(IndexError):
        x.sum().item()
    assert x.sum().item() == 15.0  # reported once


def test_embedding_max_norm_renormalises_the_looked_up_rows(no_fallbacks):
    torch.manual_seed(0)
    w = torch.randn(10, 4) * 2
    idx = torch.tensor([[1, 3, 3], [7, 1, 0]])
    for p in (2.0, 1.0):
        wc, wo = w.clone(), w.to(DEVICE)
        yc = torch.nn.functional.embedding(idx, wc, max_norm=1.0, norm_type=p)
        yo = torch.nn.functional.embedding(idx.to(DEVICE), wo, max_norm=1.0, norm_type=p)
        assert_close(wo, wc)  # rows 0, 1, 3, 7 scaled in place, the others untouched
        assert_close(yo, yc)


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_matches_torch(reduce, include_self, no_fallbacks):
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    for dim, index, source in ((0, torch.tensor([0, 2, 0, 4]), torch.randn(4, 6)),
                               (1, torch.tensor([5, 1, 1], dtype=torch.int32), torch.randn(5, 3)),
                               (-1, torch.tensor([3, 3]), torch.randn(10, 6)[::2, 1:3])):  # a strided source
        want = x.index_reduce(dim, index, source, reduce, include_self=include_self)
        got = x.to(DEVICE).index_reduce(dim, index.to(DEVICE), source.to(DEVICE), reduce, include_self=include_self)
        assert_close(got, want)
        y = x.to(DEVICE)
        y.index_reduce_(dim, index.to(DEVICE), source.to(DEVICE), reduce, include_self=include_self)
        assert_close(y, want)


def test_index_reduce_errors_match_torch():
    x, src = torch.ones(5, 3, device=DEVICE), torch.ones(3, 3, device=DEVICE)
    with pytest.raises(RuntimeError, match="Number of indices"):
        x.index_reduce(0, torch.zeros(4, dtype=torch.long, device=DEVICE), src, "amax")
    with pytest.raises(RuntimeError, match="one of prod, mean, amax or amin"):
        x.index_reduce(0, torch.zeros(3, dtype=torch.long, device=DEVICE), src, "sum")
    with pytest.raises(IndexError, match="supposed to be a vector"):
        x.index_reduce(0, torch.zeros(3, 3, dtype=torch.long, device=DEVICE), src, "amax")
    with pytest.raises(RuntimeError, match="same scalar type"):
        x.index_reduce(0, torch.zeros(3, dtype=torch.long, device=DEVICE), src.double(), "amax")
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.index_reduce(2, torch.zeros(3, dtype=torch.long, device=DEVICE), src, "amax")


MASKED_SCATTER = [
    ((3, 4), (3, 4), (12,)),
    ((3, 4), (4,), (5, 3)),      # broadcast mask, a larger 2-D source
    ((), (), (3,)),
    ((0, 3), (0, 3), (4,)),
    ((3,), (3,), (2, 2)),
]


@pytest.mark.parametrize("shapes", MASKED_SCATTER, ids=[str(s) for s in MASKED_SCATTER])
def test_masked_scatter_forward_and_backward(no_fallbacks, shapes):
    torch.manual_seed(2)
    xs, ms, ss = shapes
    x, s = torch.randn(xs, dtype=torch.float64), torch.randn(ss, dtype=torch.float64)
    m = torch.rand(ms) > 0.4
    xc, sc = x.clone().requires_grad_(), s.clone().requires_grad_()
    xo, so = x.to(DEVICE).requires_grad_(), s.to(DEVICE).requires_grad_()
    want, got = xc.masked_scatter(m, sc), xo.masked_scatter(m.to(DEVICE), so)
    assert torch.equal(got.detach().cpu(), want.detach())
    g = torch.randn_like(want)
    want.backward(g)
    got.backward(g.to(DEVICE))
    assert torch.equal(xo.grad.cpu(), xc.grad) and torch.equal(so.grad.cpu(), sc.grad)


def test_masked_scatter_in_place_and_errors(no_fallbacks):
    x = torch.zeros(2, 3).to(DEVICE)
    x.masked_scatter_(torch.tensor([True, False, True]).to(DEVICE), torch.arange(10.0).to(DEVICE))
    assert torch.equal(x.cpu(), torch.tensor([[0.0, 0.0, 1.0], [2.0, 0.0, 3.0]]))
    empty_source = torch.zeros(2, 3).to(DEVICE).masked_scatter(torch.zeros(2, 3, dtype=torch.bool).to(DEVICE),
                                                               torch.ones(0).to(DEVICE))
    assert torch.equal(empty_source.cpu(), torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="Number of elements of source < number of ones in mask"):
        torch.zeros(2, 3).to(DEVICE).masked_scatter(torch.ones(2, 3, dtype=torch.bool).to(DEVICE),
                                                    torch.ones(5).to(DEVICE))
    with pytest.raises(RuntimeError, match="boolean masks"):
        torch.zeros(3).to(DEVICE).masked_scatter(torch.ones(3).to(DEVICE), torch.ones(3).to(DEVICE))
