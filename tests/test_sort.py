"""sort, argsort, topk on ocl against torch CPU (stable order, NaN, long rows)."""

import pytest
import torch

from conftest import DEVICE, assert_close


def ocl(t):
    return t.to(DEVICE)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int32, torch.float16, torch.bool])
def test_sort_dtypes_dims(dtype, no_fallbacks):
    x = (torch.randn(5, 37) * 3).to(dtype)  # ties among ints and bools test stability
    for src in (x, x.t(), x[:, ::3]):
        for dim in (0, -1):
            for desc in (False, True):
                v, i = ocl(src).sort(dim=dim, descending=desc, stable=True)
                ev, ei = src.sort(dim=dim, descending=desc, stable=True)
                assert_close(v, ev)
                assert_close(i, ei)
    assert_close(ocl(x).argsort(dim=0, descending=True, stable=True), x.argsort(dim=0, descending=True, stable=True))


def test_sort_nan_and_edge_shapes(no_fallbacks):
    x = torch.tensor([3.0, float("nan"), -1.0, float("inf"), float("nan"), -float("inf"), 0.0, -0.0])
    for desc in (False, True):
        v, i = ocl(x).sort(descending=desc, stable=True)
        ev, ei = x.sort(descending=desc, stable=True)
        torch.testing.assert_close(v.cpu(), ev, equal_nan=True, rtol=0, atol=0)  # inf: exact compare
        assert_close(i, ei)
    s = torch.tensor(2.0)
    assert_close(ocl(s).sort()[0], s.sort()[0])
    assert_close(ocl(s).sort()[1], s.sort()[1])
    e = torch.empty(3, 0)
    assert_close(ocl(e).sort()[0], e.sort()[0])


def test_sort_long_rows_merge(no_fallbacks):
    x = torch.randint(-50, 50, (2, 9000)).float()  # longer than a block: block sort + merges
    v, i = ocl(x).sort(stable=True)
    ev, ei = x.sort(stable=True)
    assert_close(v, ev)
    assert_close(i, ei)
    v, i = ocl(x).sort(descending=True, stable=True)
    ev, ei = x.sort(descending=True, stable=True)
    assert_close(i, ei)


def test_topk(no_fallbacks):
    x = torch.randn(6, 20)
    for k, dim, largest in ((3, -1, True), (5, 0, False), (20, 1, True), (0, 1, True)):
        v, i = ocl(x).topk(k, dim=dim, largest=largest)
        ev, ei = x.topk(k, dim=dim, largest=largest)
        assert_close(v, ev)
        assert_close(i, ei)
    with pytest.raises(RuntimeError):
        ocl(x).topk(21)


def test_sort_topk_backward(no_fallbacks):
    x = torch.randn(4, 7)
    for fn in (lambda t: t.sort(1)[0], lambda t: t.topk(3, dim=0)[0]):
        a, b = x.clone().requires_grad_(), ocl(x).requires_grad_()
        ra, rb = fn(a), fn(b)
        assert_close(rb, ra)
        g = torch.randn(ra.shape)
        ra.backward(g)
        rb.backward(ocl(g))
        assert_close(b.grad, a.grad)
