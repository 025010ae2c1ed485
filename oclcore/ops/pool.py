"""2-d pooling: max (with int64 indices), average (ceil_mode,
count_include_pad, divisor_override), adaptive average and adaptive max, and
their backward ops, on cl/pool.cl (3-d average and adaptive average pooling
through the 2-d kernel, 3-d max pooling's backward as a scatter).
Inputs of any strides (channels-last included) are read in place; outputs
take torch's layout."""

import functools

import torch

from .. import runtime
from ..torch.dispatch import cpu_fallback, register
from ..torch.tensor import empty
from . import depth_fold, dtypes
from .meta import infer

aten = torch.ops.aten

_MAX, _AVG, _ADAPTIVE_AVG, _ADAPTIVE_MAX = 0, 1, 2, 3
_SIGNATURES = {"pool2d_forward": "BiBiBiVVVVViiii", "pool2d_backward_max": "BiBiBiVVVVVViii",
               "pool2d_backward_avg": "BiBiBiVVVVVViii", "pool2d_backward_adaptive_avg": "BiBiBiVVVVVViii"}
_GROUP = 128
_kernels = {}


def _kernel(name, dtype, index):
    key = (name, dtype, index)
    k = _kernels.get(key)
    if k is None:
        dtypes.check(dtype, "pooling")
        defines = dtypes.kernel_defines(dtype, store="ST")
        k = _kernels[key] = runtime.get_kernel(("types.cl", "pool.cl"), defines, name, _SIGNATURES[name],
                                               runtime.device(index))
    return k


def _pair(v, default=None):
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return default
    if isinstance(v, int):
        return (v, v)
    return (v[0], v[0]) if len(v) == 1 else (v[0], v[1])


def _strides4(t):
    """(n, c, h, w) strides of a 3-d (C, H, W) or 4-d tensor."""
    s = t.stride()
    return tuple(s) if t.dim() == 4 else (0, *s)


def _dims4(t):
    return tuple(t.shape) if t.dim() == 4 else (1, *t.shape)


def _vec(values):
    return tuple(values) + (0,) * (8 - len(values))


def _launch(name, dtype, index, total, a, b, c, geom, win, sa, sb, sc, mode, count_include_pad=1, divisor=0):
    if total == 0:
        return
    k = _kernel(name, dtype, index)
    k.launch((total,), (64,) if total >= 64 else None, (
        a._buf, a.storage_offset(), b._buf, b.storage_offset(), c._buf, c.storage_offset(), _vec(geom),
        _vec(win), _vec(sa), _vec(sb), _vec(sc), mode, int(bool(count_include_pad)), int(divisor or 0), total))


def _window(kernel_size, stride, padding, dilation):
    k = _pair(kernel_size)
    s = _pair(stride, k)
    p = _pair(padding, (0, 0))
    d = _pair(dilation, (1, 1))
    return (k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1])


def _forward(x, out, indices, mode, win, count_include_pad=True, divisor=0):
    n, c, h, w = _dims4(x)
    oh, ow = out.shape[-2:]
    idx = indices if indices is not None else out
    _launch("pool2d_forward", x.dtype, x._index, n * c * oh * ow, out, idx, x, (c, h, w, oh, ow), win,
            _strides4(x), _strides4(out), _strides4(idx), mode, count_include_pad, divisor)


# Input rows per backward work-item: the row range of outputs is stepped, not divided, within them.
_ROWS = 8


def _candidates(mode, size, out, k, s, p, d):
    """(A, Blo, Bhi, D): the outputs along one axis whose windows may hold input i are
    [floor((A i + Blo) / D), floor((A i + Bhi) / D)) clipped to [0, out) (see cl/pool.cl)."""
    if mode in (_ADAPTIVE_AVG, _ADAPTIVE_MAX):
        return (out, 0, out + size - 1, size)
    return (1, p - (k - 1) * d + s - 1, p + s, s)


@functools.lru_cache(maxsize=256)
def _backward_plan(mode, dims, out_hw, win, gis):
    """Kernel name, geometry, candidate ranges and work-items of a backward call."""
    n, c, h, w = dims
    oh, ow = out_hw
    rows = max(1, min(_ROWS, h))
    blocks = -(-h // rows)
    channels_fastest = int(c > 1 and gis[1] < gis[3])
    cand = _candidates(mode, h, oh, win[0], win[2], win[4], win[6]) + \
        _candidates(mode, w, ow, win[1], win[3], win[5], win[7])
    name = {_MAX: "pool2d_backward_max", _ADAPTIVE_MAX: "pool2d_backward_max", _AVG: "pool2d_backward_avg",
            _ADAPTIVE_AVG: "pool2d_backward_adaptive_avg"}[mode]
    return name, (c, h, w, oh, ow, rows, blocks, channels_fastest), cand, n * c * blocks * w


def _backward(gy, x, indices, grad_input, mode, win, count_include_pad=True, divisor=0):
    gis = _strides4(grad_input)
    name, geom, cand, total = _backward_plan(mode, _dims4(x), tuple(gy.shape[-2:]), win, gis)
    if total == 0:
        return
    idx = indices if indices is not None else gy
    _kernel(name, gy.dtype, gy._index).launch((total,), (_GROUP,), (
        grad_input._buf, grad_input.storage_offset(), gy._buf, gy.storage_offset(), idx._buf, idx.storage_offset(),
        geom, win, cand, gis, _strides4(gy), _strides4(idx), int(bool(count_include_pad)), int(divisor or 0),
        total))


def _new(meta, index):
    return empty(meta.shape, meta.dtype, index, meta.stride())


@register(aten.max_pool2d_with_indices.default)
def max_pool2d_with_indices(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    meta = infer(aten.max_pool2d_with_indices.default, (x, kernel_size, stride, padding, dilation, ceil_mode))
    out, indices = _new(meta[0], x._index), _new(meta[1], x._index)
    _forward(x, out, indices, _MAX, _window(kernel_size, stride, padding, dilation))
    return out, indices


@register(aten.max_pool2d.default)
def max_pool2d(x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    return max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)[0]


@register(aten.max_pool2d_with_indices_backward.default)
def max_pool2d_with_indices_backward(gy, x, kernel_size, stride, padding, dilation, ceil_mode, indices):
    meta = infer(aten.max_pool2d_with_indices_backward.default,
                 (gy, x, kernel_size, stride, padding, dilation, ceil_mode, indices))
    gi = _new(meta, x._index)
    _backward(gy, x, indices, gi, _MAX, _window(kernel_size, stride, padding, dilation))
    return gi


@register(aten.avg_pool2d.default)
def avg_pool2d(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    meta = infer(aten.avg_pool2d.default, (x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                           divisor_override))
    out = _new(meta, x._index)
    _forward(x, out, None, _AVG, _window(kernel_size, stride, padding, 1), count_include_pad, divisor_override)
    return out


@register(aten.avg_pool2d_backward.default)
def avg_pool2d_backward(gy, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    meta = infer(aten.avg_pool2d_backward.default, (gy, x, kernel_size, stride, padding, ceil_mode,
                                                    count_include_pad, divisor_override))
    gi = _new(meta, x._index)
    _backward(gy, x, None, gi, _AVG, _window(kernel_size, stride, padding, 1), count_include_pad,
              divisor_override)
    return gi


_NO_WINDOW = (1, 1, 1, 1, 0, 0, 1, 1)


@register(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg_pool2d(x, output_size):
    meta = infer(aten._adaptive_avg_pool2d.default, (x, output_size))
    out = _new(meta, x._index)
    _forward(x, out, None, _ADAPTIVE_AVG, _NO_WINDOW)
    return out


@register(aten._adaptive_avg_pool2d_backward.default)
def _adaptive_avg_pool2d_backward(gy, x):
    meta = infer(aten._adaptive_avg_pool2d_backward.default, (gy, x))
    gi = _new(meta, x._index)
    _backward(gy, x, None, gi, _ADAPTIVE_AVG, _NO_WINDOW)
    return gi


@register(aten.adaptive_max_pool2d.default)
def adaptive_max_pool2d(x, output_size):
    meta = infer(aten.adaptive_max_pool2d.default, (x, output_size))
    out, indices = _new(meta[0], x._index), _new(meta[1], x._index)
    _forward(x, out, indices, _ADAPTIVE_MAX, _NO_WINDOW)
    return out, indices


@register(aten.adaptive_max_pool2d_backward.default)
def adaptive_max_pool2d_backward(gy, x, indices):
    meta = infer(aten.adaptive_max_pool2d_backward.default, (gy, x, indices))
    gi = _new(meta, x._index)
    _backward(gy, x, indices, gi, _ADAPTIVE_MAX, _NO_WINDOW)
    return gi


# ---- 3-d max pooling's backward: the gradients scattered to the recorded maxima ----

def _scatter_to_indices(gy, x, indices):
    """The input gradient of a max pooling whose maxima are ``indices`` (flat positions within
    each (n, c) volume, as torch records them): gy added at those positions (overlapping windows
    add up)."""
    n, c = (x.shape[0], x.shape[1]) if x.dim() == 5 else (1, x.shape[0])
    gi = aten.zeros(list(x.shape), dtype=gy.dtype, device=gy.device)
    flat = aten.view(gi, [n, c, -1])
    aten.scatter_add_(flat, 2, aten.reshape(indices, [n, c, -1]), aten.reshape(gy, [n, c, -1]))
    return gi


@register(aten.max_pool3d_with_indices_backward.default)
def max_pool3d_with_indices_backward(gy, x, kernel_size, stride, padding, dilation, ceil_mode, indices):
    infer(aten.max_pool3d_with_indices_backward.default,
          (gy, x, kernel_size, stride, padding, dilation, ceil_mode, indices))
    return _scatter_to_indices(gy, x, indices)


@register(aten.adaptive_max_pool3d_backward.default)
def adaptive_max_pool3d_backward(gy, x, indices):
    infer(aten.adaptive_max_pool3d_backward.default, (gy, x, indices))
    return _scatter_to_indices(gy, x, indices)


# ---- 3-d average pooling through the 2-d kernel (oclcore.ops.depth_fold) ----
#
# A box average is the product of per-axis averages, divisors included (the count of a window
# clipped by padding or ceil_mode is a product of per-axis counts); a divisor_override breaks
# that product: the CPU runs those. Adaptive windows are per-axis too.

def _triple(v, default=None):
    v = list(v) if v else list(default or [])
    return v * 3 if len(v) == 1 else v


def _windows(kernel_size, stride, padding):
    """((kd, kh, kw), (sd, sh, sw), (pd, ph, pw)) of a 3-d pooling's arguments."""
    return (_triple(kernel_size), _triple(stride, kernel_size),
            _triple([padding] if isinstance(padding, int) else padding))


@register(aten.avg_pool3d.default)
def avg_pool3d(x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    args = (x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    infer(aten.avg_pool3d.default, args)
    if divisor_override is not None:
        return cpu_fallback(aten.avg_pool3d.default, args, {})
    (kd, kh, kw), (sd, sh, sw), (pd, ph, pw) = _windows(kernel_size, stride, padding)
    return depth_fold.forward(
        x, lambda t: avg_pool2d(t, [kh, kw], [sh, sw], [ph, pw], ceil_mode, count_include_pad),
        lambda t: avg_pool2d(t, [kd, 1], [sd, 1], [pd, 0], ceil_mode, count_include_pad))


@register(aten.avg_pool3d_backward.default)
def avg_pool3d_backward(gy, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    args = (gy, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    infer(aten.avg_pool3d_backward.default, args)
    if divisor_override is not None:
        return cpu_fallback(aten.avg_pool3d_backward.default, args, {})
    (kd, kh, kw), (sd, sh, sw), (pd, ph, pw) = _windows(kernel_size, stride, padding)

    def like(shape):  # (the 2-d backward takes the input for its shape only)
        return aten.empty(shape, dtype=x.dtype, device=x.device)
    return depth_fold.backward(
        gy, x.shape,
        lambda g, shape: avg_pool2d_backward(g, like(shape), [kd, 1], [sd, 1], [pd, 0], ceil_mode, count_include_pad,
                                             None),
        lambda g, shape: avg_pool2d_backward(g, like(shape), [kh, kw], [sh, sw], [ph, pw], ceil_mode,
                                             count_include_pad, None))


@register(aten._adaptive_avg_pool3d.default, aten.adaptive_avg_pool3d.default)
def _adaptive_avg_pool3d(x, output_size):
    od, oh, ow = infer(aten._adaptive_avg_pool3d.default, (x, output_size)).shape[-3:]
    return depth_fold.forward(x, lambda t: _adaptive_avg_pool2d(t, [oh, ow]),
                              lambda t: _adaptive_avg_pool2d(t, [od, t.shape[3]]))


@register(aten._adaptive_avg_pool3d_backward.default)
def _adaptive_avg_pool3d_backward(gy, x):
    infer(aten._adaptive_avg_pool3d_backward.default, (gy, x))

    def back(g, shape):
        return _adaptive_avg_pool2d_backward(g, aten.empty(shape, dtype=x.dtype, device=x.device))
    return depth_fold.backward(gy, x.shape, back, back)
