"""The backward of F.grid_sample (aten.grid_sampler_2d_backward) on ocl for bilinear and nearest
sampling with zeros or border padding, from gathers and scatters: the input's gradient is each
output gradient spread over its corners by their weights (nearest: its one pixel), the grid's
the change of the interpolant along x and y (nearest: zero). torch's decomposition already runs
the forward on the device. Bicubic sampling and reflection padding take the CPU fallback."""

import torch

from ..torch.dispatch import cpu_fallback, register

aten = torch.ops.aten
_BILINEAR, _NEAREST = 0, 1
_ZEROS, _BORDER = 0, 1


def _unnormalize(coord, size, align_corners):
    """(pixel coordinate, its derivative by the normalized one)."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2), (size - 1) / 2
    return ((coord + 1) * size - 1) / 2, size / 2


def _border(coord, size):
    """Clipped to [0, size - 1], and where the clip passes the gradient (strictly inside)."""
    inside = aten.logical_and(aten.gt(coord, 0), aten.lt(coord, size - 1))
    return aten.clamp(coord, 0, size - 1), inside


@register(aten.grid_sampler_2d_backward.default)
def grid_sampler_2d_backward(grad_output, input, grid, interpolation_mode, padding_mode, align_corners,
                             output_mask):
    args = (grad_output, input, grid, interpolation_mode, padding_mode, align_corners, output_mask)
    if interpolation_mode not in (_BILINEAR, _NEAREST) or padding_mode not in (_ZEROS, _BORDER):
        return cpu_fallback(aten.grid_sampler_2d_backward.default, args, {})
    n, c, h, w = input.shape
    ho, wo = grid.shape[1], grid.shape[2]
    ix, dx = _unnormalize(aten.select(grid, 3, 0), w, align_corners)
    iy, dy = _unnormalize(aten.select(grid, 3, 1), h, align_corners)
    pass_x = pass_y = None
    if padding_mode == _BORDER:
        ix, pass_x = _border(ix, w)
        iy, pass_y = _border(iy, h)
    go = aten.view(grad_output.contiguous(), [n, c, ho * wo])
    flat_input = aten.view(input.contiguous(), [n, c, h * w])
    grad_input = aten.zeros([n, c, h * w], dtype=input.dtype, device=input.device) if output_mask[0] else None

    def corner(xc, yc, weight):
        """(positions in the flat plane, 1 where inside the input) of one corner; its share of
        the output gradient goes to grad_input."""
        inside = aten.logical_and(aten.logical_and(aten.ge(xc, 0), aten.lt(xc, w)),
                                  aten.logical_and(aten.ge(yc, 0), aten.lt(yc, h)))
        spot = aten.clamp(yc, 0, h - 1) * w + aten.clamp(xc, 0, w - 1)
        spots = aten.expand(aten.view(spot.long(), [n, 1, ho * wo]), [n, c, ho * wo])
        keep = aten.view(inside.to(input.dtype), [n, 1, ho * wo])
        if grad_input is not None:
            share = keep if weight is None else aten.view(weight, [n, 1, ho * wo]) * keep
            grad_input.scatter_add_(2, spots, go * share)
        return spots, keep

    if interpolation_mode == _NEAREST:  # (rounding half to even, as torch's nearbyint)
        corner(aten.round(ix), aten.round(iy), None)
        grad_input = None if grad_input is None else aten.view(grad_input, [n, c, h, w])
        return grad_input, aten.zeros_like(grid)
    x0, y0 = aten.floor(ix), aten.floor(iy)
    wx1, wy1 = ix - x0, iy - y0
    wx0, wy0 = 1 - wx1, 1 - wy1
    values = {}
    for ddy, ddx, weight in ((0, 0, wy0 * wx0), (0, 1, wy0 * wx1), (1, 0, wy1 * wx0), (1, 1, wy1 * wx1)):
        spots, keep = corner(x0 + ddx, y0 + ddy, weight)
        values[ddy, ddx] = aten.gather(flat_input, 2, spots) * keep
    wy0, wy1, wx0, wx1 = (aten.view(t, [n, 1, ho * wo]) for t in (wy0, wy1, wx0, wx1))
    gx = aten.sum(go * ((values[0, 1] - values[0, 0]) * wy0 + (values[1, 1] - values[1, 0]) * wy1), [1])
    gy = aten.sum(go * ((values[1, 0] - values[0, 0]) * wx0 + (values[1, 1] - values[0, 1]) * wx1), [1])
    gx, gy = aten.view(gx * dx, [n, ho, wo]), aten.view(gy * dy, [n, ho, wo])
    if pass_x is not None:
        gx, gy = aten.where(pass_x, gx, 0.0), aten.where(pass_y, gy, 0.0)
    grad_grid = aten.stack([gx, gy], 3)
    if grad_input is not None:
        grad_input = aten.view(grad_input, [n, c, h, w])
    return grad_input, grad_grid
