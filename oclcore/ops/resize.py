"""2-d upsampling (nearest, nearest-exact, bilinear with or without
align_corners) and their backward ops, on cl/resize.cl. Scales follow torch's
rules: an explicit scale factor wins over the size ratio (but not under
align_corners), computed in the op's accumulation precision."""

import numpy as np
import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import empty
from . import depth_fold, dtypes
from .meta import infer

aten = torch.ops.aten

_kernels = {}


def _kernel(name, dtype, dev):
    key = (name, dtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        dtypes.check(dtype, "upsampling")
        defines = dtypes.kernel_defines(dtype, store="ST")
        ct = defines["CT"]
        s = "f" if "nearest" in name else dtypes.SCALAR_CHAR[ct]
        k = _kernels[key] = runtime.get_kernel(("types.cl", "resize.cl"), defines, name,
                                               "BiBiVVV" + s + s + "ii", dev)
    return k


def _strides4(t):
    return t.stride() if t.dim() == 4 else (0, *t.stride())


def _vec(values):
    return tuple(values) + (0,) * (8 - len(values))


def _scale(inp, out, scale, align_corners, ftype):
    """torch's area_pixel_compute_scale (nearest: align_corners=False, float)."""
    if align_corners:
        return float(ftype(inp - 1) / ftype(out - 1)) if out > 1 else 0.0
    if scale is not None and scale > 0:
        return float(ftype(1.0 / scale))
    return float(ftype(inp) / ftype(out))


def _float_type(dtype):
    return np.float64 if dtype is torch.float64 else np.float32


def _run(name, dtype, index, total, dst, src, small, big, mode, sh, sw):
    """Launches ``name``; ``small``/``big`` are the (N, C, H, W) input and output shapes."""
    if total == 0:
        return
    k = _kernel(name, dtype, runtime.device(index))
    n, c, h, w = small
    geom = _vec((c, h, w, big[2], big[3]))
    k.launch((total,), (64,) if total >= 64 else None, (
        dst._buf, dst.storage_offset(), src._buf, src.storage_offset(), geom, _vec(_strides4(src)),
        _vec(_strides4(dst)), sh, sw, mode, total))


def _dims4(shape):
    shape = tuple(shape)
    return shape if len(shape) == 4 else (1, *shape)


def _new(meta, index):
    return empty(meta.shape, meta.dtype, index, meta.stride())


def _vec_scales(scale_factors):
    return (scale_factors[0], scale_factors[1]) if scale_factors else (None, None)


def _nearest(func, x, output_size, scales_h, scales_w, exact):
    out = _new(infer(func, (x, output_size, scales_h, scales_w)), x._index)
    small, big = _dims4(x.shape), _dims4(out.shape)
    sh = _scale(small[2], big[2], scales_h, False, np.float32)
    sw = _scale(small[3], big[3], scales_w, False, np.float32)
    _run("upsample_nearest_forward", x.dtype, x._index, out.numel(), out, x, small, big, exact, sh, sw)
    return out


def _nearest_backward(func, gy, output_size, input_size, scales_h, scales_w, exact):
    gi = _new(infer(func, (gy, output_size, input_size, scales_h, scales_w)), gy._index)
    small, big = _dims4(input_size), _dims4(gy.shape)
    sh = _scale(small[2], big[2], scales_h, False, np.float32)
    sw = _scale(small[3], big[3], scales_w, False, np.float32)
    _run("upsample_nearest_backward", gy.dtype, gy._index, gi.numel(), gi, gy, small, big, exact, sh, sw)
    return gi


@register(aten.upsample_nearest2d.default)
def upsample_nearest2d(x, output_size, scales_h=None, scales_w=None):
    return _nearest(aten.upsample_nearest2d.default, x, output_size, scales_h, scales_w, 0)


@register(aten._upsample_nearest_exact2d.default)
def _upsample_nearest_exact2d(x, output_size, scales_h=None, scales_w=None):
    return _nearest(aten._upsample_nearest_exact2d.default, x, output_size, scales_h, scales_w, 1)


@register(aten.upsample_nearest2d_backward.default)
def upsample_nearest2d_backward(gy, output_size, input_size, scales_h=None, scales_w=None):
    return _nearest_backward(aten.upsample_nearest2d_backward.default, gy, output_size, input_size, scales_h,
                             scales_w, 0)


@register(aten._upsample_nearest_exact2d_backward.default)
def _upsample_nearest_exact2d_backward(gy, output_size, input_size, scales_h=None, scales_w=None):
    return _nearest_backward(aten._upsample_nearest_exact2d_backward.default, gy, output_size, input_size,
                             scales_h, scales_w, 1)


def _output_size(x, output_size, scale_factors):
    if output_size is not None:
        return list(output_size)
    return [int(x.shape[-2] * scale_factors[0]), int(x.shape[-1] * scale_factors[1])]


@register(aten.upsample_nearest2d.vec)
def upsample_nearest2d_vec(x, output_size, scale_factors):
    sh, sw = _vec_scales(scale_factors)
    return upsample_nearest2d(x, _output_size(x, output_size, scale_factors), sh, sw)


@register(aten._upsample_nearest_exact2d.vec)
def _upsample_nearest_exact2d_vec(x, output_size, scale_factors):
    sh, sw = _vec_scales(scale_factors)
    return _upsample_nearest_exact2d(x, _output_size(x, output_size, scale_factors), sh, sw)


@register(aten.upsample_bilinear2d.default)
def upsample_bilinear2d(x, output_size, align_corners, scales_h=None, scales_w=None):
    meta = infer(aten.upsample_bilinear2d.default, (x, output_size, align_corners, scales_h, scales_w))
    out = _new(meta, x._index)
    small, big = _dims4(x.shape), _dims4(out.shape)
    ft = _float_type(x.dtype)
    sh = _scale(small[2], big[2], scales_h, align_corners, ft)
    sw = _scale(small[3], big[3], scales_w, align_corners, ft)
    _run("upsample_bilinear_forward", x.dtype, x._index, out.numel(), out, x, small, big, int(align_corners),
         sh, sw)
    return out


@register(aten.upsample_bilinear2d.vec)
def upsample_bilinear2d_vec(x, output_size, align_corners, scale_factors):
    sh, sw = _vec_scales(scale_factors)
    return upsample_bilinear2d(x, _output_size(x, output_size, scale_factors), align_corners, sh, sw)


@register(aten.upsample_bilinear2d_backward.default)
def upsample_bilinear2d_backward(gy, output_size, input_size, align_corners, scales_h=None, scales_w=None):
    meta = infer(aten.upsample_bilinear2d_backward.default,
                       (gy, output_size, input_size, align_corners, scales_h, scales_w))
    gi = _new(meta, gy._index)
    small, big = _dims4(input_size), _dims4(gy.shape)
    ft = _float_type(gy.dtype)
    sh = _scale(small[2], big[2], scales_h, align_corners, ft)
    sw = _scale(small[3], big[3], scales_w, align_corners, ft)
    _run("upsample_bilinear_backward", gy.dtype, gy._index, gi.numel(), gi, gy, small, big, int(align_corners),
         sh, sw)
    return gi


# ---- 1-d nearest and 3-d trilinear through the 2-d kernels ----
#
# A 1-d map is a 2-d one of height 1. Trilinear interpolation is linear along each axis in turn
# (oclcore.ops.depth_fold): the (H, W) plane is an axis of unchanged size in the second pass, an
# identity map at scale 1.

def _nearest1d_backward(func2d, gy, output_size, input_size, scales):
    n, c, length = input_size
    gi = func2d(aten.unsqueeze(gy, 2), [1, output_size[0]], [n, c, 1, length], None, scales)
    return aten.squeeze(gi, [2])


@register(aten.upsample_nearest1d_backward.default)
def upsample_nearest1d_backward(gy, output_size, input_size, scales=None):
    infer(aten.upsample_nearest1d_backward.default, (gy, output_size, input_size, scales))
    return _nearest1d_backward(upsample_nearest2d_backward, gy, output_size, input_size, scales)


@register(aten._upsample_nearest_exact1d_backward.default)
def _upsample_nearest_exact1d_backward(gy, output_size, input_size, scales=None):
    infer(aten._upsample_nearest_exact1d_backward.default, (gy, output_size, input_size, scales))
    return _nearest1d_backward(_upsample_nearest_exact2d_backward, gy, output_size, input_size, scales)


@register(aten.upsample_trilinear3d.default)
def upsample_trilinear3d(x, output_size, align_corners, scales_d=None, scales_h=None, scales_w=None):
    infer(aten.upsample_trilinear3d.default, (x, output_size, align_corners, scales_d, scales_h, scales_w))
    od, oh, ow = output_size
    return depth_fold.forward(x, lambda t: upsample_bilinear2d(t, [oh, ow], align_corners, scales_h, scales_w),
                              lambda t: upsample_bilinear2d(t, [od, t.shape[3]], align_corners, scales_d, None))


@register(aten.upsample_trilinear3d.vec)
def upsample_trilinear3d_vec(x, output_size, align_corners, scale_factors):
    scales = [None] * 3 if scale_factors is None else list(scale_factors)
    if output_size is None:
        output_size = [int(x.shape[2 + i] * scales[i]) for i in range(3)]
    return upsample_trilinear3d(x, list(output_size), align_corners, *scales)


@register(aten.upsample_trilinear3d_backward.default)
def upsample_trilinear3d_backward(gy, output_size, input_size, align_corners, scales_d=None, scales_h=None,
                                  scales_w=None):
    infer(aten.upsample_trilinear3d_backward.default,
          (gy, output_size, input_size, align_corners, scales_d, scales_h, scales_w))
    return depth_fold.backward(
        gy, input_size,
        lambda g, shape: upsample_bilinear2d_backward(g, list(g.shape[2:]), shape, align_corners, scales_d, None),
        lambda g, shape: upsample_bilinear2d_backward(g, list(g.shape[2:]), shape, align_corners, scales_h,
                                                      scales_w))
