"""torch.unique (without dim) and torch.unique_consecutive (flat and along a dim) on ocl against
torch CPU: values, inverse and counts."""
import math

import pytest
import torch

from conftest import DEVICE


def same(a, b):
    assert a.device.type == "ocl" and a.dtype == b.dtype and a.shape == b.shape, (a, b)
    assert torch.equal(a.cpu().nan_to_num(), b.nan_to_num()) if a.is_floating_point() else torch.equal(a.cpu(), b)


@pytest.mark.parametrize("dtype", [torch.int64, torch.float32, torch.bool, torch.int8])
def test_unique_values_inverse_counts(dtype, no_fallbacks):
    torch.manual_seed(0)
    x = torch.randint(-4, 5, (6, 7)).to(dtype)
    for inverse in (False, True):
        for counts in (False, True):
            got = torch.unique(x.to(DEVICE), return_inverse=inverse, return_counts=counts)
            want = torch.unique(x, return_inverse=inverse, return_counts=counts)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                same(g, w)
    same(torch.unique(x.t().to(DEVICE)), torch.unique(x.t()))  # a view


def test_unique_nan_scalar_and_empty(no_fallbacks):
    x = torch.tensor([1.0, math.nan, 0.0, math.nan, 1.0, -math.inf])
    for g, w in zip(torch.unique(x.to(DEVICE), return_inverse=True, return_counts=True),
                    torch.unique(x, return_inverse=True, return_counts=True)):
        same(g, w)
    s = torch.tensor(3.0)
    for g, w in zip(torch.unique(s.to(DEVICE), return_inverse=True, return_counts=True),
                    torch.unique(s, return_inverse=True, return_counts=True)):
        same(g, w)
    e = torch.empty(0, 3)
    for g, w in zip(torch.unique(e.to(DEVICE), return_inverse=True, return_counts=True),
                    torch.unique(e, return_inverse=True, return_counts=True)):
        same(g, w)


def _all_forms(fn, x, **kw):
    """fn(x) on ocl and on the CPU with every combination of return_inverse and return_counts."""
    for inverse in (False, True):
        for counts in (False, True):
            got = fn(x.to(DEVICE), return_inverse=inverse, return_counts=counts, **kw)
            want = fn(x, return_inverse=inverse, return_counts=counts, **kw)
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                same(g, w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
def test_unique_consecutive_flat_and_along_dims(dtype, no_fallbacks):
    torch.manual_seed(1)
    x = torch.randint(0, 2, (5, 4, 3)).to(dtype)
    x[2] = x[1]            # a run of equal slices along dim 0
    x[:, 3] = x[:, 2]      # and along dim 1
    for dim in (None, 0, 1, 2, -1, -3):
        _all_forms(torch.unique_consecutive, x, dim=dim)
    _all_forms(torch.unique_consecutive, x.transpose(0, 2), dim=1)       # a view
    _all_forms(torch.unique_consecutive, x.transpose(0, 2))


def test_unique_consecutive_nan_scalar_empty_and_errors(no_fallbacks):
    x = torch.tensor([1.0, 1.0, math.nan, math.nan, 0.0, -math.inf, -math.inf])   # NaNs never equal
    _all_forms(torch.unique_consecutive, x)
    _all_forms(torch.unique_consecutive, x, dim=0)
    _all_forms(torch.unique_consecutive, torch.tensor(2.5))
    for shape, dim in (((0, 3), None), ((0, 3), 0), ((3, 0), 1)):
        _all_forms(torch.unique_consecutive, torch.empty(shape), dim=dim)
    for x, dim in ((torch.empty(0, 3), 1), (torch.ones(2, 3), 2), (torch.tensor(1.0), 0)):
        with pytest.raises((RuntimeError, IndexError)) as want:
            torch.unique_consecutive(x, dim=dim)
        with pytest.raises(type(want.value), match=str(want.value).split("(")[0].strip()[:40]):
            torch.unique_consecutive(x.to(DEVICE), dim=dim)
