"""torch.unique (without dim) on ocl against torch CPU: values, inverse and counts."""
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
