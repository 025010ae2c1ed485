"""torch.multinomial on ocl: the sampled frequencies follow the weights (with and without
replacement), zero weights are never drawn, shapes and dtypes as torch, torch's errors."""
import math

import pytest
import torch

from conftest import DEVICE

N = 20000


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_with_replacement_follows_the_weights(dtype, no_fallbacks):
    torch.manual_seed(0)
    w = torch.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 5.0]], dtype=dtype)
    s = torch.multinomial(w.to(DEVICE), N, replacement=True)
    assert s.dtype == torch.int64 and s.shape == (3, N) and s.device.type == "ocl"
    s = s.cpu()
    for row, weights in zip(s, w.double()):
        freq = torch.bincount(row, minlength=4).double() / N
        want = weights / weights.sum()
        assert (freq - want).abs().max() < 0.015, (freq, want)
        assert (freq[want == 0] == 0).all()


def test_without_replacement_draws_distinct_categories_first_by_weight(no_fallbacks):
    torch.manual_seed(1)
    w = torch.tensor([0.5, 0.0, 2.0, 1.0, 0.5])
    rows = w.expand(4000, 5)[:, :]  # a broadcast view: every row the same weights
    s = torch.multinomial(rows.to(DEVICE), 4).cpu()
    assert s.shape == (4000, 4)
    assert all(len(set(r.tolist())) == 4 for r in s)
    assert (s != 1).all()  # the zero weight is never drawn while others remain
    first = torch.bincount(s[:, 0], minlength=5).double() / 4000
    assert (first - w / w.sum()).abs().max() < 0.03
    one = torch.multinomial(w.to(DEVICE), 2)
    assert one.shape == (2,) and len(set(one.cpu().tolist())) == 2


def test_empty_batches_and_single_category(no_fallbacks):
    assert torch.multinomial(torch.rand(0, 3, device=DEVICE), 2, True).shape == (0, 2)
    assert torch.equal(torch.multinomial(torch.tensor([3.0], device=DEVICE), 5, True).cpu(), torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("weights,samples,replacement,message", [
    ([0.0, 0.0], 1, True, "sum of probabilities <= 0"),
    ([-1.0, 2.0], 1, True, "element < 0"),
    ([math.inf, 2.0], 1, False, "element < 0"),
    ([math.nan, 2.0], 1, True, "element < 0"),
    ([1.0, 2.0], 3, False, "without replacement"),
    ([1.0, 0.0, 0.0], 2, False, "not enough non-negative category"),
    ([1.0, 2.0], 0, True, "n_sample <= 0"),
])
def test_bad_distributions_raise_like_torch(weights, samples, replacement, message):
    with pytest.raises(RuntimeError, match=message):
        torch.multinomial(torch.tensor(weights, device=DEVICE), samples, replacement)
    with pytest.raises(RuntimeError, match="1 or 2 dim"):
        torch.multinomial(torch.rand(2, 2, 2, device=DEVICE), 1)
    with pytest.raises(RuntimeError, match="floating-point"):
        torch.multinomial(torch.ones(3, dtype=torch.long, device=DEVICE), 1)
