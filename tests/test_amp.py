"""Automatic mixed precision on ocl: torch.autocast(device_type="ocl") casts as on CUDA (products
and convolutions to the autocast dtype, precision-sensitive ops to float32, mixed inputs to the
widest type, float64 untouched), torch.amp.GradScaler training matches the CPU's step for step,
and GradScaler's two ops agree with the CPU's."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close
from oclcore import runtime


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_dtypes(no_fallbacks, dtype):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8, device=DEVICE)
    w = torch.randn(5, 3, 3, 3, device=DEVICE)
    a, b = torch.randn(4, 6, device=DEVICE), torch.randn(6, 5, device=DEVICE)
    with torch.autocast(device_type="ocl", dtype=dtype):
        assert F.conv2d(x, w).dtype == dtype
        assert (a @ b).dtype == dtype and torch.mm(a, b).dtype == dtype
        assert F.linear(a, b.t()).dtype == dtype
        assert torch.bmm(a[None], b[None]).dtype == dtype
        low = a @ b
        assert torch.softmax(low, 1).dtype == torch.float32
        assert F.log_softmax(low, 1).dtype == torch.float32
        assert F.layer_norm(low, (5,)).dtype == torch.float32
        assert low.sum().dtype == torch.float32
        assert F.cross_entropy(low, torch.tensor([0, 1, 2, 3], device=DEVICE)).dtype == torch.float32
        assert torch.cat([low, a[:, :5]]).dtype == torch.float32          # promoted to the widest
        assert torch.addcmul(a, low.float()[:, :1], a.to(dtype)).dtype == torch.float32
        assert (low + 1).dtype == dtype                                   # not listed: untouched
        if runtime.device(0).fp64:
            d = torch.randn(4, 6, device=DEVICE, dtype=torch.float64)
            assert torch.mm(d, d.t()).dtype == torch.float64              # float64 is never cast
    with torch.autocast(device_type="ocl", dtype=dtype, enabled=False):
        assert (a @ b).dtype == torch.float32
    assert (a @ b).dtype == torch.float32
    assert dtype in torch.ocl.get_amp_supported_dtype()


def test_autocast_values(no_fallbacks):
    torch.manual_seed(1)
    a, b = torch.randn(16, 32), torch.randn(32, 8)
    with torch.autocast(device_type="ocl", dtype=torch.float16):
        got = a.to(DEVICE) @ b.to(DEVICE)
    assert_close(got.float(), a.half().float() @ b.half().float(), rtol=2e-3, atol=2e-2)


def _amp_training(device, make_opt, steps=4):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4)).to(device)
    x, y = torch.randn(4, 3, 8, 8).to(device), torch.tensor([0, 1, 2, 3]).to(device)
    opt = make_opt(model.parameters())
    scaler = torch.amp.GradScaler(device, init_scale=2.0 ** 10, growth_interval=2)
    losses, scales = [], []
    for _ in range(steps):
        with torch.autocast(device_type=device, dtype=torch.float16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
        scales.append(scaler.get_scale())
    return losses, scales, model[4].weight.detach().cpu()


# (torch's default optimizer step; on ocl the fused one, to which GradScaler hands the scale)
@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.SGD(p, lr=0.1), lambda p: torch.optim.Adam(p, lr=0.01)],
                         ids=["sgd", "adam"])
def test_grad_scaler_training_matches_cpu(make_opt, no_fallbacks):
    cpu_losses, cpu_scales, cpu_w = _amp_training("cpu", make_opt)
    losses, scales, w = _amp_training(DEVICE, make_opt)
    assert scales == cpu_scales
    for got, want in zip(losses, cpu_losses):
        assert abs(got - want) <= 2e-3 * max(1.0, abs(want)), (losses, cpu_losses)
    assert_close(w, cpu_w, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("values", [[1.0, 2.0], [math.inf, 1.0], [-math.inf, 0.0], [math.nan, 0.0]])
@pytest.mark.parametrize("shape", [(), (1,)])
def test_non_finite_check_and_unscale(no_fallbacks, values, shape):
    grads = [torch.tensor(values), torch.ones(3), torch.empty(0)]
    mine = [g.to(DEVICE) for g in grads]
    found, found_o = torch.zeros(shape), torch.zeros(shape, device=DEVICE)
    inv, inv_o = torch.full(shape, 0.25), torch.full(shape, 0.25, device=DEVICE)
    torch._amp_foreach_non_finite_check_and_unscale_(grads, found, inv)
    torch._amp_foreach_non_finite_check_and_unscale_(mine, found_o, inv_o)
    assert found_o.cpu().item() == found.item()
    for a, b in zip(mine, grads):
        assert torch.allclose(a.cpu(), b, equal_nan=True)
    # found_inf, once set, stays set
    torch._amp_foreach_non_finite_check_and_unscale_([torch.ones(2, device=DEVICE)], found_o, inv_o)
    assert found_o.cpu().item() == found.item()


@pytest.mark.parametrize("found,tracker,interval", [(0.0, 0, 3), (0.0, 2, 3), (1.0, 2, 3), (0.0, 0, 1)])
def test_update_scale(no_fallbacks, found, tracker, interval):
    scale, track = torch.full((1,), 8.0), torch.full((1,), tracker, dtype=torch.int32)
    scale_o, track_o = scale.to(DEVICE), track.to(DEVICE)
    torch._amp_update_scale_(scale, track, torch.full((1,), found), 2.0, 0.5, interval)
    out = torch._amp_update_scale_(scale_o, track_o, torch.full((1,), found, device=DEVICE), 2.0, 0.5, interval)
    assert out is scale_o
    assert scale_o.cpu().item() == scale.item() and track_o.cpu().item() == track.item()
    # a scale that would grow past float32's range stays where it is
    big, t = torch.full((1,), 3e38, device=DEVICE), torch.zeros(1, dtype=torch.int32, device=DEVICE)
    torch._amp_update_scale_(big, t, torch.zeros(1, device=DEVICE), 2.0, 0.5, 1)
    assert big.cpu().item() == pytest.approx(3e38)


def test_amp_op_errors(no_fallbacks):
    with pytest.raises(RuntimeError, match="found_inf must be a one-element"):
        torch._amp_foreach_non_finite_check_and_unscale_([torch.ones(2, device=DEVICE)],
                                                          torch.zeros(2, device=DEVICE), torch.ones(1, device=DEVICE))
    with pytest.raises(RuntimeError, match="growth_tracker must be a one-element"):
        torch._amp_update_scale_(torch.ones(1, device=DEVICE), torch.zeros(1, device=DEVICE),
                                 torch.zeros(1, device=DEVICE), 2.0, 0.5, 1)
