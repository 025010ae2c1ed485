"""Dropout on ocl: reproducible under a seed, edge probabilities, mask
statistics, and a backward consistent with the mask."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close


def test_same_seed_same_mask_and_fresh_masks_after(no_fallbacks):
    x = torch.randn(64, 33).to(DEVICE)
    torch.manual_seed(7)
    first, second = F.dropout(x, 0.4), F.dropout(x, 0.4)
    torch.manual_seed(7)
    again = F.dropout(x, 0.4)
    assert torch.equal(first.cpu(), again.cpu())
    assert not torch.equal(first.cpu(), second.cpu())


@pytest.mark.parametrize("p", (0.1, 0.5, 0.8))
def test_mask_statistics_and_scaling(p, no_fallbacks):
    x = torch.rand(200, 100) + 0.5
    out, mask = torch.ops.aten.native_dropout(x.to(DEVICE), p, True)
    out, mask = out.cpu(), mask.cpu()
    assert mask.dtype == torch.bool
    kept = mask.double().mean().item()
    assert abs(kept - (1 - p)) < 4 * ((p * (1 - p) / x.numel()) ** 0.5)
    assert torch.equal(out == 0, ~mask)
    assert_close(out[mask], x[mask] / (1 - p))


def test_p0_keeps_everything_and_p1_drops_everything(no_fallbacks):
    x = torch.randn(10, 7)
    out, mask = torch.ops.aten.native_dropout(x.to(DEVICE), 0.0, True)
    assert torch.equal(out.cpu(), x) and bool(mask.cpu().all())
    out, mask = torch.ops.aten.native_dropout(x.to(DEVICE), 1.0, True)
    assert bool((out.cpu() == 0).all()) and not bool(mask.cpu().any())


def test_eval_and_train_false(no_fallbacks):
    x = torch.randn(5, 4).to(DEVICE)
    m = torch.nn.Dropout(0.5).eval()
    assert torch.equal(m(x).cpu(), x.cpu())
    out, mask = torch.ops.aten.native_dropout(x, 0.5, False)
    assert torch.equal(out.cpu(), x.cpu()) and bool(mask.cpu().all())


def test_backward_matches_mask(no_fallbacks):
    x = torch.randn(30, 20).to(DEVICE).requires_grad_()
    m = torch.nn.Dropout(0.3).train()
    y = m(x)
    g = torch.randn(30, 20)
    y.backward(g.to(DEVICE))
    kept = y.detach().cpu() != 0
    assert_close(x.grad, g * kept / 0.7)


def test_non_contiguous_float64_and_empty(no_fallbacks):
    x = torch.randn(8, 6, dtype=torch.float64).to(DEVICE).t()
    out, mask = torch.ops.aten.native_dropout(x, 0.5, True)
    assert_close(out, x.cpu() * mask.cpu() * 2.0)
    e, em = torch.ops.aten.native_dropout(torch.empty(0, 3).to(DEVICE), 0.5, True)
    assert e.shape == (0, 3) and em.shape == (0, 3)


def test_integer_input_raises():
    with pytest.raises(RuntimeError):
        torch.ops.aten.native_dropout(torch.ones(3, dtype=torch.int64).to(DEVICE), 0.5, True)


def test_random_ops_take_a_cpu_generator(no_fallbacks):
    """torch.Generator(device="ocl") cannot exist (torch's Python backend hooks); a CPU generator
    passed as generator= seeds ocl random ops reproducibly."""
    draws = []
    for seed in (5, 5, 6):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(64, device=DEVICE, generator=g)
        u = torch.empty(64, device=DEVICE).uniform_(generator=g)
        i = torch.randint(0, 1000, (64,), device=DEVICE, generator=g)
        b = torch.bernoulli(torch.full((64,), 0.5, device=DEVICE), generator=g)
        perm = torch.randperm(64, device=DEVICE, generator=g)
        draws.append(torch.cat([x.cpu(), u.cpu(), i.cpu().float(), b.cpu(), perm.cpu().float()]))
    assert torch.equal(draws[0], draws[1])
    for k in range(5):  # every op's numbers depend on the seed
        assert not torch.equal(draws[0][64 * k:64 * (k + 1)], draws[2][64 * k:64 * (k + 1)])
    assert 0 <= draws[0][64:128].min() and draws[0][64:128].max() < 1
    assert torch.equal(draws[0][256:].sort().values, torch.arange(64.0))
