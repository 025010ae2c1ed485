"""torch.searchsorted and torch.bucketize on ocl against torch CPU."""
import math

import pytest
import torch

from conftest import DEVICE


def same(a, b):
    assert a.device.type == "ocl" and a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a.cpu(), b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float16])
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_1d_and_rows(dtype, right, no_fallbacks):
    torch.manual_seed(0)
    seq = torch.randint(-5, 6, (17,)).sort().values.to(dtype)  # repeated values
    values = torch.randint(-7, 8, (3, 4, 5)).to(dtype)
    same(torch.searchsorted(seq.to(DEVICE), values.to(DEVICE), right=right),
         torch.searchsorted(seq, values, right=right))
    rows = torch.randint(-5, 6, (3, 4, 9)).sort(-1).values.to(dtype)
    same(torch.searchsorted(rows.to(DEVICE), values.to(DEVICE), side="right" if right else "left", out_int32=True),
         torch.searchsorted(rows, values, side="right" if right else "left", out_int32=True))
    same(torch.bucketize(values.to(DEVICE), seq.to(DEVICE), right=right), torch.bucketize(values, seq, right=right))


def test_nan_sorter_views_scalars_and_mixed_types(no_fallbacks):
    seq = torch.tensor([-math.inf, -1.0, 0.0, 0.0, 2.5, math.inf, math.nan])
    values = torch.tensor([math.nan, -math.inf, 0.0, 3.0, math.inf, -2.0])
    same(torch.searchsorted(seq.to(DEVICE), values.to(DEVICE)), torch.searchsorted(seq, values))
    same(torch.searchsorted(seq.to(DEVICE), values.to(DEVICE), right=True), torch.searchsorted(seq, values, right=True))
    unsorted = torch.randn(4, 10)
    sorter = unsorted.argsort(-1)
    probe = torch.randn(4, 6)
    same(torch.searchsorted(unsorted.to(DEVICE), probe.to(DEVICE), sorter=sorter.to(DEVICE)),
         torch.searchsorted(unsorted, probe, sorter=sorter))
    strided = torch.randn(6, 20).sort(-1).values[::2, ::2]  # views of the sequence and the values
    same(torch.searchsorted(strided.to(DEVICE), probe[:3, ::2].to(DEVICE)), torch.searchsorted(strided, probe[:3, ::2]))
    ints = torch.arange(0, 20, 3)
    same(torch.searchsorted(ints.to(DEVICE), torch.tensor([4.5, 6.0]).to(DEVICE)),
         torch.searchsorted(ints, torch.tensor([4.5, 6.0])))
    same(torch.searchsorted(ints.to(DEVICE), 7), torch.searchsorted(ints, 7))
    same(torch.bucketize(3.5, seq[:6].to(DEVICE)), torch.bucketize(3.5, seq[:6]))
    same(torch.searchsorted(torch.empty(0).to(DEVICE), values.to(DEVICE)), torch.searchsorted(torch.empty(0), values))
    same(torch.searchsorted(seq.to(DEVICE), torch.empty(0, 3).to(DEVICE)), torch.searchsorted(seq, torch.empty(0, 3)))


def test_bad_shapes_raise_like_torch():
    with pytest.raises(RuntimeError, match="first N-1 dimensions"):
        torch.searchsorted(torch.randn(3, 4, device=DEVICE), torch.randn(2, 5, device=DEVICE))
    with pytest.raises(RuntimeError, match="1 dimension"):
        torch.bucketize(torch.randn(3, device=DEVICE), torch.randn(2, 2, device=DEVICE))
