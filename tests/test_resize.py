"""Upsampling (nearest, nearest-exact, bilinear; trilinear and 1-d nearest through the 2-d
kernels) and channel_shuffle on ocl against torch CPU, forward and input grads through autograd."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, LAYOUTS, assert_close, compare_forward_backward, layout_input

RESIZES = {
    "nearest_x2": lambda t: F.interpolate(t, scale_factor=2, mode="nearest"),
    "nearest_size": lambda t: F.interpolate(t, size=(9, 5), mode="nearest"),
    "nearest_scale": lambda t: F.interpolate(t, scale_factor=(1.5, 0.7), mode="nearest"),
    "nearest_exact": lambda t: F.interpolate(t, scale_factor=1.7, mode="nearest-exact"),
    "bilinear": lambda t: F.interpolate(t, size=(11, 13), mode="bilinear"),
    "bilinear_align": lambda t: F.interpolate(t, size=(11, 13), mode="bilinear", align_corners=True),
    "bilinear_down": lambda t: F.interpolate(t, scale_factor=0.6, mode="bilinear"),
    "bilinear_down_align": lambda t: F.interpolate(t, size=(4, 3), mode="bilinear", align_corners=True),
    "bilinear_to_1": lambda t: F.interpolate(t, size=(1, 3), mode="bilinear", align_corners=True),
    "bilinear_recompute": lambda t: F.interpolate(t, scale_factor=1.3, mode="bilinear",
                                                  recompute_scale_factor=True),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(RESIZES))
def test_upsample(no_fallbacks, name, layout):
    torch.manual_seed(0)
    x = layout_input(layout, 2, 3, 6, 7)
    compare_forward_backward(RESIZES[name], x)


@pytest.mark.parametrize("name", ["nearest_x2", "bilinear", "bilinear_align"])
def test_upsample_float32_batch1(no_fallbacks, name):
    torch.manual_seed(1)
    compare_forward_backward(RESIZES[name], torch.randn(1, 2, 5, 4), 1e-5, 1e-5)


def test_upsample_module_no_grad(no_fallbacks):
    x = torch.randn(1, 3, 4, 5)
    up = torch.nn.Upsample(scale_factor=3, mode="bilinear")
    with torch.no_grad():
        assert_close(up(x.to(DEVICE)), up(x), 1e-5, 1e-5)


def test_upsample_empty(no_fallbacks):
    x = torch.empty(0, 3, 4, 5, device=DEVICE)
    assert F.interpolate(x, scale_factor=2).shape == (0, 3, 8, 10)


@pytest.mark.parametrize("groups", [2, 3])
def test_channel_shuffle(no_fallbacks, groups):
    torch.manual_seed(2)
    compare_forward_backward(lambda t: F.channel_shuffle(t, groups), torch.randn(2, 6, 3, 4, dtype=torch.float64))


@pytest.mark.parametrize("call", [
    lambda t: F.interpolate(t, scale_factor=2, mode="trilinear"),
    lambda t: F.interpolate(t, size=(3, 7, 5), mode="trilinear", align_corners=True),
    lambda t: F.interpolate(t, scale_factor=(1.5, 0.5, 2.3), mode="trilinear"),
    lambda t: F.interpolate(t, size=(1, 1, 1), mode="trilinear", align_corners=True),
    lambda t: F.interpolate(t.to(memory_format=torch.channels_last_3d), scale_factor=2, mode="trilinear"),
], ids=["x2", "sizes-align-corners", "uneven-scales", "to-one", "channels-last-3d"])
def test_trilinear(call, no_fallbacks):
    """Trilinear upsampling as bilinear over (H, W), then linear over D: forward and backward."""
    torch.manual_seed(0)
    compare_forward_backward(call, torch.randn(2, 3, 4, 5, 6), 1e-5, 1e-5)


@pytest.mark.parametrize("call", [
    lambda t: F.interpolate(t, scale_factor=2, mode="nearest"),
    lambda t: F.interpolate(t, size=7, mode="nearest-exact"),
    lambda t: F.interpolate(t, scale_factor=0.6, mode="nearest"),
], ids=["x2", "exact-size", "down"])
def test_nearest1d_backward(call, no_fallbacks):
    torch.manual_seed(1)
    compare_forward_backward(call, torch.randn(2, 3, 9), 1e-5, 1e-5)
