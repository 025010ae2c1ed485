"""kthvalue, median and nanmedian on ocl against torch CPU: values exactly, indices by what they
point at (ties may pick another index), NaN rules, keepdim, odd shapes, views, gradients."""
import math

import pytest
import torch

from conftest import DEVICE, assert_close


def check(ocl_result, cpu_result, x, dim, keepdim):
    """Values equal torch's; each index points at an element equal to its value."""
    values, indices = ocl_result
    assert_close(values, cpu_result[0], rtol=0, atol=0)
    assert indices.dtype == torch.int64 and indices.shape == cpu_result[1].shape
    idx = indices.cpu() if keepdim else indices.cpu().unsqueeze(dim)
    picked = x.gather(dim, idx)
    want = values.cpu() if keepdim else values.cpu().unsqueeze(dim)
    assert torch.equal(picked.isnan(), want.isnan())
    assert torch.equal(picked[~picked.isnan()], want[~want.isnan()])


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.int64])
@pytest.mark.parametrize("dim,keepdim", [(-1, False), (0, True), (1, False)])
def test_kthvalue_and_medians_match_torch(dtype, dim, keepdim, no_fallbacks):
    torch.manual_seed(0)
    x = torch.randint(-6, 7, (5, 7, 3)).to(dtype)  # many ties
    if dtype.is_floating_point:
        x[0, 2, 1] = x[3, 0, 0] = x[3, 4, 0] = math.nan
        x[1] = math.nan
    xo = x.to(DEVICE)
    n = x.shape[dim]
    for k in (1, (n + 1) // 2, n):
        check(torch.kthvalue(xo, k, dim, keepdim), torch.kthvalue(x, k, dim, keepdim), x, dim, keepdim)
    check(torch.median(xo, dim, keepdim), torch.median(x, dim, keepdim), x, dim, keepdim)
    check(torch.nanmedian(xo, dim, keepdim), torch.nanmedian(x, dim, keepdim), x, dim, keepdim)
    assert_close(torch.median(xo), torch.median(x), rtol=0, atol=0)
    assert_close(torch.nanmedian(xo), torch.nanmedian(x), rtol=0, atol=0)


def test_views_scalars_and_empty(no_fallbacks):
    x = torch.randn(6, 9)[1:, ::2].t()  # offset, strided, transposed
    check(torch.median(x.to(DEVICE), 0), torch.median(x, 0), x, 0, False)
    check(torch.kthvalue(x.to(DEVICE), 2, 1, True), torch.kthvalue(x, 2, 1, True), x, 1, True)
    s = torch.tensor(2.5)
    for got, want in ((torch.median(s.to(DEVICE), 0), torch.median(s, 0)),
                      (torch.kthvalue(s.to(DEVICE), 1), torch.kthvalue(s, 1))):
        assert_close(got[0], want[0]) and assert_close(got[1], want[1])
    assert_close(torch.median(s.to(DEVICE)), torch.median(s))
    assert torch.median(torch.empty(0, device=DEVICE)).cpu().isnan()
    assert torch.nanmedian(torch.full((4,), math.nan, device=DEVICE)).cpu().isnan()


def test_bad_arguments_raise_like_torch():
    x = torch.randn(3, 4, device=DEVICE)
    with pytest.raises(RuntimeError, match="k out of range"):
        torch.kthvalue(x, 5, 1)
    with pytest.raises(IndexError, match="non-zero size"):
        torch.median(torch.empty(0, 3, device=DEVICE), 0)
    with pytest.raises(IndexError):
        torch.median(x, 2)


def test_gradients_flow_to_the_selected_elements(no_fallbacks):
    x = torch.randn(4, 6, dtype=torch.float64)
    for fn in (lambda t: torch.median(t, 1)[0], lambda t: torch.kthvalue(t, 3, 0, True)[0],
               lambda t: torch.nanmedian(t), lambda t: torch.median(t)):
        xc = x.clone().requires_grad_()
        xo = x.to(DEVICE).requires_grad_()
        yc, yo = fn(xc), fn(xo)
        g = torch.randn_like(yc)
        yc.backward(g)
        yo.backward(g.to(DEVICE))
        assert_close(xo.grad, xc.grad)


@pytest.mark.parametrize("dtype", [torch.int64, torch.float32, torch.int8])
def test_mode_most_frequent_smallest_on_ties_last_occurrence(dtype, no_fallbacks):
    torch.manual_seed(0)
    x = torch.randint(0, 4, (6, 9, 5)).to(dtype)
    for dim in (1, -1, 0):
        for keepdim in (False, True):
            got, want = torch.mode(x.to(DEVICE), dim, keepdim), torch.mode(x, dim, keepdim)
            assert_close(got.values, want.values, rtol=0, atol=0)
            assert torch.equal(got.indices.cpu(), want.indices)
    v = x[:, ::2, 1:].transpose(0, 1)  # a view
    got, want = torch.mode(v.to(DEVICE), 0), torch.mode(v, 0)
    assert torch.equal(got.values.cpu(), want.values) and torch.equal(got.indices.cpu(), want.indices)
    s = torch.tensor(3.0)
    got = torch.mode(s.to(DEVICE))
    assert got.values.cpu() == 3.0 and got.indices.cpu() == 0
    with pytest.raises(IndexError, match="non-zero size"):
        torch.mode(torch.empty(2, 0, device=DEVICE), 1)
