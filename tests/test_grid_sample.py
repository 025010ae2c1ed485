"""F.grid_sample's gradients on ocl against torch CPU: bilinear and nearest, zeros and border
padding, both align_corners, grids reaching outside the input, only the grid's gradient, a spatial
transformer's affine_grid + grid_sample step; reflection padding through the CPU."""
import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close


def _compare(x, grid, needs_input_grad=True, **kw):
    xc, gc = x.clone().requires_grad_(needs_input_grad), grid.clone().requires_grad_()
    xo, go = x.to(DEVICE).requires_grad_(needs_input_grad), grid.to(DEVICE).requires_grad_()
    want, got = F.grid_sample(xc, gc, **kw), F.grid_sample(xo, go, **kw)
    assert_close(got, want, rtol=1e-5, atol=1e-5)
    seed = torch.randn(want.shape)
    want.backward(seed)
    got.backward(seed.to(DEVICE))
    assert_close(go.grad, gc.grad, rtol=1e-4, atol=1e-4)
    if needs_input_grad:
        assert_close(xo.grad, xc.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_gradients(mode, padding_mode, align_corners, no_fallbacks):
    torch.manual_seed(0)
    grid = torch.rand(2, 4, 6, 2) * 2.4 - 1.2   # some points outside [-1, 1]
    _compare(torch.randn(2, 3, 5, 7), grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


def test_grid_only_and_spatial_transformer(no_fallbacks):
    torch.manual_seed(1)
    _compare(torch.randn(1, 2, 6, 6), torch.rand(1, 3, 3, 2) * 2 - 1, needs_input_grad=False, align_corners=False)
    theta = torch.tensor([[[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]]).repeat(2, 1, 1)
    x = torch.randn(2, 1, 8, 8)
    tc, to = theta.clone().requires_grad_(), theta.to(DEVICE).requires_grad_()
    want = F.grid_sample(x, F.affine_grid(tc, (2, 1, 8, 8), align_corners=False), align_corners=False)
    got = F.grid_sample(x.to(DEVICE), F.affine_grid(to, (2, 1, 8, 8), align_corners=False), align_corners=False)
    assert_close(got, want, rtol=1e-5, atol=1e-5)
    want.pow(2).sum().backward()
    got.pow(2).sum().backward()
    assert_close(to.grad, tc.grad, rtol=1e-4, atol=1e-4)


def test_reflection_padding_falls_back_correctly():
    import oclcore

    torch.manual_seed(2)
    oclcore.reset_fallbacks()
    _compare(torch.randn(1, 2, 5, 5), torch.rand(1, 3, 4, 2) * 2.4 - 1.2, padding_mode="reflection",
             align_corners=False)
    assert set(oclcore.fallbacks()) == {"aten::grid_sampler_2d_backward"}
