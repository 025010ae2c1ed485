"""torch.bincount and torch.histc on ocl against torch CPU (exact counts), torch's errors."""
import math

import pytest
import torch

from conftest import DEVICE


def same(a, b):
    assert a.device.type == "ocl" and a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a.cpu(), b), (a.cpu(), b)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_bincount_plain_weighted_and_minlength(dtype, no_fallbacks):
    torch.manual_seed(0)
    x = torch.randint(0, 9, (300,)).to(dtype)
    same(torch.bincount(x.to(DEVICE)), torch.bincount(x))
    same(torch.bincount(x.to(DEVICE), minlength=20), torch.bincount(x, minlength=20))
    for w in (torch.rand(300), torch.rand(300, dtype=torch.float64), torch.randint(0, 5, (300,))):
        got, want = torch.bincount(x.to(DEVICE), w.to(DEVICE)), torch.bincount(x, w)
        assert got.dtype == want.dtype
        torch.testing.assert_close(got.cpu(), want)
    same(torch.bincount(x[::3].to(DEVICE)), torch.bincount(x[::3]))
    same(torch.bincount(torch.empty(0, dtype=dtype).to(DEVICE), minlength=3), torch.bincount(torch.empty(0, dtype=dtype), minlength=3))


def test_bincount_errors_match_torch():
    with pytest.raises(RuntimeError, match="non-negative"):
        torch.bincount(torch.tensor([1, -2], device=DEVICE))
    with pytest.raises(RuntimeError, match="1-d non-negative"):
        torch.bincount(torch.tensor([[1, 2]], device=DEVICE))
    with pytest.raises(RuntimeError, match="same length"):
        torch.bincount(torch.tensor([1, 2], device=DEVICE), torch.tensor([1.0], device=DEVICE))
    with pytest.raises(RuntimeError, match="minlength"):
        torch.bincount(torch.tensor([1, 2], device=DEVICE), minlength=-1)
    with pytest.raises(NotImplementedError, match="'Float'"):
        torch.bincount(torch.tensor([1.0], device=DEVICE))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_histc_ranges_edges_nan_and_views(dtype, no_fallbacks):
    torch.manual_seed(1)
    x = (torch.randn(40, 30, dtype=dtype) * 2)[:, ::3]
    x[0, :4] = torch.tensor([math.nan, -1.0, 1.0, 0.5], dtype=dtype)  # NaN, both ends, an inner edge
    for bins, lo, hi in ((10, -1, 1), (1, -3, 3), (33, -0.5, 2.25)):
        same(torch.histc(x.to(DEVICE), bins, lo, hi), torch.histc(x, bins, lo, hi))
    finite = torch.nan_to_num(x)
    same(torch.histc(finite.to(DEVICE), 7, 1.5, 1.5), torch.histc(finite, 7, 1.5, 1.5))  # min == max: the data's range
    c = torch.full((5,), 2.5, dtype=dtype)  # a constant: min == max widens the range by 1
    same(torch.histc(c.to(DEVICE), 4), torch.histc(c, 4))
    same(torch.histc(torch.empty(0, dtype=dtype).to(DEVICE), 3), torch.histc(torch.empty(0, dtype=dtype), 3))


def test_histc_errors_match_torch():
    with pytest.raises(RuntimeError, match="max must be larger than min"):
        torch.histc(torch.rand(4, device=DEVICE), 3, 5, 1)
    with pytest.raises(RuntimeError, match="bins must be > 0"):
        torch.histc(torch.rand(4, device=DEVICE), -3)
    with pytest.raises(RuntimeError, match="not finite"):
        torch.histc(torch.tensor([1.0, math.inf], device=DEVICE), 3)
    with pytest.raises(RuntimeError, match="not finite"):  # (the data's range, with a NaN)
        torch.histc(torch.tensor([1.0, math.nan], device=DEVICE), 3)
    with pytest.raises(NotImplementedError, match="'Long'"):
        torch.histc(torch.tensor([1, 2], device=DEVICE), 3)
