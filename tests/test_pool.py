"""Pooling on ocl against torch CPU (2-d; 3-d average, 3-d max's backward): forward, indices, and
input grads through autograd, for contiguous, channels-last and sliced inputs."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, LAYOUTS, assert_close, compare_forward_backward, layout_input

POOLS = {
    "max": lambda t: F.max_pool2d(t, 3, 2, 1),
    "max_ceil_dilated": lambda t: F.max_pool2d(t, (3, 2), (2, 1), (1, 1), (2, 1), ceil_mode=True),
    "max_stride1": lambda t: F.max_pool2d(t, 2, 1),
    "max_overlap_dilated2": lambda t: F.max_pool2d(t, 3, 1, 1, 2),
    "max_ceil_partial": lambda t: F.max_pool2d(t, (4, 2), (3, 2), (1, 0), ceil_mode=True),
    "max_transposed_grad": lambda t: F.max_pool2d(t, 3, 2, 1).transpose(2, 3),
    "avg": lambda t: F.avg_pool2d(t, 3, 2, 1),
    "avg_ceil_nopad": lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg_divisor": lambda t: F.avg_pool2d(t, (2, 3), 2, 1, divisor_override=5),
    "avg_overlap_nopad": lambda t: F.avg_pool2d(t, 3, 1, 1, count_include_pad=False),
    "avg_ceil_partial": lambda t: F.avg_pool2d(t, (4, 2), (3, 2), (1, 0), ceil_mode=True),
    "adaptive_avg": lambda t: F.adaptive_avg_pool2d(t, (4, 3)),
    "adaptive_avg_up": lambda t: F.adaptive_avg_pool2d(t, (13, 17)),
    "adaptive_avg_global": lambda t: F.adaptive_avg_pool2d(t, 1),
    "adaptive_max": lambda t: F.adaptive_max_pool2d(t, (4, 5)),
    "adaptive_max_up": lambda t: F.adaptive_max_pool2d(t, (10, 12)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool(no_fallbacks, name, layout):
    torch.manual_seed(0)
    x = layout_input(layout, 2, 3, 9, 11)
    compare_forward_backward(POOLS[name], x)


@pytest.mark.parametrize("name", ["max", "avg", "adaptive_avg", "adaptive_max"])
def test_pool_unbatched_float32(no_fallbacks, name):
    torch.manual_seed(1)
    compare_forward_backward(POOLS[name], torch.randn(3, 8, 7), 1e-5, 1e-5)


def test_max_pool_indices(no_fallbacks):
    x = torch.randn(1, 2, 7, 6)
    x[0, 0, 1, 1] = float("nan")
    yc, ic = F.max_pool2d(x, 2, 2, return_indices=True)
    yo, io = F.max_pool2d(x.to(DEVICE), 2, 2, return_indices=True)
    assert io.dtype == torch.int64
    assert torch.equal(io.cpu(), ic)
    assert torch.equal(yo.cpu().isnan(), yc.isnan())
    assert_close(yo.cpu().nan_to_num(), yc.nan_to_num())
    yc, ic = F.adaptive_max_pool2d(x, 3, return_indices=True)
    yo, io = F.adaptive_max_pool2d(x.to(DEVICE), 3, return_indices=True)
    assert torch.equal(io.cpu(), ic)


def test_max_pool_ties_backward_deterministic(no_fallbacks):
    x = torch.ones(1, 1, 6, 6, dtype=torch.float64)  # every window ties: the first index wins
    compare_forward_backward(lambda t: F.max_pool2d(t, 3, 1, 1), x)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("window", [(3, 2, 1), (3, 1, 1), (2, 2, 0)])
def test_max_pool_backward_bitwise(no_fallbacks, layout, window):
    """float32 input grads equal torch's exactly: ties, -inf and NaN inputs, gradients summed in torch's
    order; 19 rows span several row blocks of the backward kernel."""
    torch.manual_seed(2)
    x = layout_input(layout, 2, 3, 19, 10).mul(2).round().float()  # few distinct values: many ties
    x[0, 0, :4, :4] = float("-inf")
    x[1, 2, 5, 5] = float("nan")
    xc, xo = x.clone().requires_grad_(), x.to(DEVICE).requires_grad_()
    yc, ic = F.max_pool2d(xc, *window, return_indices=True)
    yo, io = F.max_pool2d(xo, *window, return_indices=True)
    assert torch.equal(io.cpu(), ic)
    g = torch.randn_like(yc)
    yc.backward(g)
    yo.backward(g.to(DEVICE))
    assert torch.equal(xo.grad.cpu(), xc.grad)


@pytest.mark.parametrize("name", ["avg", "avg_ceil_partial", "adaptive_avg", "adaptive_max_up"])
def test_pool_many_row_blocks(no_fallbacks, name):
    torch.manual_seed(3)
    compare_forward_backward(POOLS[name], torch.randn(1, 2, 29, 6, dtype=torch.float64))


def test_pool_batch1_odd_sizes_no_grad(no_fallbacks):
    x = torch.randn(1, 1, 5, 3)
    with torch.no_grad():
        assert_close(F.max_pool2d(x.to(DEVICE), 2, ceil_mode=True), F.max_pool2d(x, 2, ceil_mode=True))
        assert_close(F.avg_pool2d(x.to(DEVICE), (3, 1)), F.avg_pool2d(x, (3, 1)))


def test_pool_bad_arguments_raise_torch_errors():
    x = torch.randn(1, 1, 4, 4, device=DEVICE)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(x, 2, 2, 2)
    with pytest.raises(RuntimeError):
        F.avg_pool2d(x, 5)


@pytest.mark.parametrize("pool", [
    lambda t: F.max_pool3d(t, 2), lambda t: F.max_pool3d(t, 3, stride=1, padding=1),
    lambda t: F.max_pool3d(t, (2, 3, 2), stride=(1, 2, 2), dilation=(2, 1, 1)),
    lambda t: F.max_pool3d(t[0], 2), lambda t: F.max_pool3d(t.to(memory_format=torch.channels_last_3d), 2),
], ids=["2", "3-overlapping-padded", "dilated", "unbatched", "channels-last-3d"])
def test_max_pool3d_backward(pool, no_fallbacks):
    """3-D max pooling's gradient goes to the recorded maxima (overlapping windows add up)."""
    torch.manual_seed(0)
    compare_forward_backward(pool, torch.randn(2, 3, 5, 6, 7), 1e-5, 1e-5)


def test_adaptive_max_pool3d():
    """Forward on the CPU fallback (torch's decomposition declines it), backward on the device."""
    import oclcore

    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, 6, 7)
    xc, xo = x.clone().requires_grad_(), x.to(DEVICE).requires_grad_()
    oclcore.reset_fallbacks()
    want, got = F.adaptive_max_pool3d(xc, (2, 3, 2)), F.adaptive_max_pool3d(xo, (2, 3, 2))
    assert_close(got, want)
    want.sum().backward()
    got.sum().backward()
    assert_close(xo.grad, xc.grad)
    assert set(oclcore.fallbacks()) == {"aten::adaptive_max_pool3d"}


@pytest.mark.parametrize("pool", [
    lambda t: F.avg_pool3d(t, 2), lambda t: F.avg_pool3d(t, 3, stride=2, padding=1),
    lambda t: F.avg_pool3d(t, (3, 2, 3), stride=(2, 1, 2), padding=(1, 1, 0), ceil_mode=True, count_include_pad=False),
    lambda t: F.avg_pool3d(t, 3, stride=2, padding=1, ceil_mode=True), lambda t: F.avg_pool3d(t[0], 2),
    lambda t: F.avg_pool3d(t.to(memory_format=torch.channels_last_3d), 2),
], ids=["2", "3-padded", "ceil-no-pad-count", "ceil", "unbatched", "channels-last-3d"])
def test_avg_pool3d(pool, no_fallbacks):
    """3-D average pooling (per-axis averages through the 2-d kernel), forward and backward."""
    torch.manual_seed(2)
    compare_forward_backward(pool, torch.randn(2, 3, 5, 6, 7), 1e-5, 1e-5)


def test_avg_pool3d_divisor_override_falls_back():
    import oclcore

    x = torch.randn(1, 2, 4, 4, 4)
    oclcore.reset_fallbacks()
    assert_close(F.avg_pool3d(x.to(DEVICE), 2, divisor_override=3), F.avg_pool3d(x, 2, divisor_override=3))
    assert set(oclcore.fallbacks()) == {"aten::avg_pool3d"}


@pytest.mark.parametrize("size", [(2, 3, 2), (7, 4, 9), 1, "unbatched", "channels-last-3d"])
def test_adaptive_avg_pool3d(size, no_fallbacks):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 5, 6, 7)
    pool = {"unbatched": lambda t: F.adaptive_avg_pool3d(t[0], (3, 3, 3)),
            "channels-last-3d": lambda t: F.adaptive_avg_pool3d(t.to(memory_format=torch.channels_last_3d), 2)}.get(
        size, lambda t: F.adaptive_avg_pool3d(t, size))
    compare_forward_backward(pool, x, 1e-5, 1e-5)
