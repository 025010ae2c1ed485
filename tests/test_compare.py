"""torch.equal and torch.allclose on ocl tensors: computed on the device, as on the CPU."""

import pytest
import torch

from conftest import DEVICE

NAN = float("nan")
CASES = [
    ("equal", (torch.ones(3), torch.ones(3, dtype=torch.float64)), {}),  # dtypes may differ
    ("equal", (torch.ones(3), torch.ones(1)), {}),  # no broadcasting: sizes differ
    ("equal", (torch.tensor([NAN]), torch.tensor([NAN])), {}),
    ("equal", (torch.arange(6.0).view(2, 3), torch.arange(6.0).view(3, 2).t().contiguous().t()), {}),
    ("equal", (torch.ones(0), torch.ones(0)), {}),
    ("equal", (torch.arange(3), torch.arange(3.0)), {}),
    ("allclose", (torch.ones(3), torch.ones(1)), {}),  # broadcasts
    ("allclose", (torch.ones(3), torch.ones(3) + 1e-3), {}),
    ("allclose", (torch.ones(3), torch.ones(3) + 1e-3), {"atol": 1e-2}),
    ("allclose", (torch.tensor([NAN, 1.0]), torch.tensor([NAN, 1.0])), {}),
    ("allclose", (torch.tensor([NAN, 1.0]), torch.tensor([NAN, 1.0])), {"equal_nan": True}),
]


@pytest.mark.parametrize("name,args,kwargs", CASES)
def test_whole_tensor_comparisons_match_cpu(no_fallbacks, name, args, kwargs):
    fn = getattr(torch, name)
    want = fn(*args, **kwargs)
    got = fn(*(a.to(DEVICE) for a in args), **kwargs)
    assert type(got) is bool and got == want


def test_allclose_of_different_dtypes_raises(no_fallbacks):
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        torch.allclose(torch.ones(2).to(DEVICE), torch.ones(2, dtype=torch.float64).to(DEVICE))
