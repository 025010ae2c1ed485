"""3-D ops that act on each axis in turn (average pooling, adaptive average pooling, trilinear
upsampling) run as two passes of their 2-D kernel: over (H, W) with the depth folded into the
channels, then over D with the (H, W) plane as one axis the 2-D op leaves alone."""

import torch

aten = torch.ops.aten


def _batched(shape):
    """(N, C, D, H, W) of a batched or unbatched (C, D, H, W) shape."""
    return tuple(shape) if len(shape) == 5 else (1, *shape)


def forward(x, over_hw, over_d):
    """``over_hw`` on (N, C * D, H, W), then ``over_d`` on (N, C, D, H' * W'); the result has
    x's batching. Each pass returns a 4-D tensor of its new sizes."""
    n, c, d, h, w = _batched(x.shape)
    planes = over_hw(aten.view(x.contiguous(), [n, c * d, h, w]))
    oh, ow = planes.shape[2], planes.shape[3]
    out = over_d(aten.view(planes.contiguous(), [n, c, d, oh * ow]))
    shape = [n, c, out.shape[2], oh, ow]
    return aten.view(out.contiguous(), shape if x.dim() == 5 else shape[1:])


def backward(gy, input_shape, back_d, back_hw):
    """The gradient of ``forward``: ``back_d`` from (N, C, D', H' * W') to (N, C, D, H' * W'),
    then ``back_hw`` from (N, C * D, H', W') to (N, C * D, H, W)."""
    n, c, d, h, w = _batched(input_shape)
    od, oh, ow = gy.shape[-3:]
    g = back_d(aten.view(gy.contiguous(), [n, c, od, oh * ow]), [n, c, d, oh * ow])
    g = back_hw(aten.view(g.contiguous(), [n, c * d, oh, ow]), [n, c * d, h, w])
    return aten.view(g.contiguous(), list(input_shape))
