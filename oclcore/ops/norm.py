"""Normalisation layers: batch norm (train/eval, running statistics), layer
norm, group norm and their backward ops, on the kernels of cl/norm.cl.

Instance norm reaches these as batch norm over a (1, N*C, ...) view. Every
norm is a set of groups of elements. Numerous or small groups take one launch
(a work-group per group, or per few groups: statistics by a two-pass tree
reduction, then the normalisation). Few large groups (batch norm's channels)
are split into chunks so that the whole device works: a launch writes
per-(group, chunk) partials, and a second one combines them in a fixed order
in every work-group and normalises its chunk (see cl/norm.cl)."""

import functools

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import empty
from . import copy as _copy
from . import dtypes
from .meta import infer

aten = torch.ops.aten

_WEIGHT, _BIAS, _RUNNING, _UPDATE, _SAVE = 1, 2, 4, 8, 16
_GRAD_INPUT, _GROUP_PARAMS, _GRAD_WEIGHT, _GRAD_BIAS, _PARTIALS = 32, 64, 128, 256, 512
_STP = {"LD_plain": "STP_plain", "LD_half": "STP_half", "LD_bf16": "STP_bf16"}
# name -> (signature, number of trailing compute-type scalars: eps, momentum)
_SIGNATURES = {
    "norm_stats": ("Bi" * 2 + "VV", 0),
    "norm_forward": ("Bi" * 9 + "VVVVi", 2),
    "norm_grad_sums": ("Bi" * 8 + "VVVVi", 1),
    "norm_backward": ("Bi" * 11 + "VVVVVi", 1),
    "norm_param_grad": ("Bi" * 6 + "VVVi", 0),
}
_kernels = {}

# Splitting a group's elements into chunks (tunable; see _split):
WAVES = 16           # work-groups per compute unit a split launch aims at
MIN_PER_ITEM = 8     # fewest elements per work-item in a chunk
MAX_CHUNKS = 256     # most chunks per group (each work-group of a split norm combines them all)
INTERLEAVE = 16      # neighbouring groups a work-group holds when groups interleave in memory


def stats_dtype(dtype):
    """dtype of the saved mean and 1/std (torch's accumulation type)."""
    return torch.float64 if dtype is torch.float64 else torch.float32


def _work_group(dev):
    return _device_shape(dev.index)[0]


@functools.lru_cache(maxsize=None)
def _device_shape(index):
    """(work-group size: a power of two, compute units) of device ``index``."""
    dev = runtime.device(index)
    return runtime.work_group_size(dev), dev.compute_units


def _accumulation_dtype(dev):
    return torch.float64 if dev.fp64 else torch.float32


def _pow2_ceil(n):
    return 1 << max(0, n - 1).bit_length()


def _split(dev, groups, gx):
    """ck = (groups per work-group, chunks, chunk length, groups) for ``groups`` groups of
    geometry ``gx``: see cl/norm.cl."""
    return _split_cached(*_device_shape(dev.index), groups, tuple(gx), WAVES, MIN_PER_ITEM, MAX_CHUNKS,
                         INTERLEAVE)


@functools.lru_cache(maxsize=1024)
def _split_cached(wg, units, groups, gx, waves, min_per_item, max_chunks, interleave):
    g2, p, q, s_g1, s_g2, s_p, s_q, _ = gx
    m = p * q
    lanes = min(wg, _pow2_ceil(m))
    # neighbouring items read neighbouring groups when those are closer in memory than elements
    s_group = s_g2 if g2 > 1 else s_g1
    s_elem = s_q if q > 1 else s_p if p > 1 else None
    if groups > 1 and s_elem is not None and abs(s_group) < abs(s_elem):
        lanes = min(lanes, max(1, wg // interleave))
    gt = min(wg // lanes, _pow2_ceil(groups))
    lanes = wg // gt
    tiles = -(-groups // gt)
    chunks = min(-(-waves * units // tiles), max_chunks, m // (lanes * min_per_item))
    if chunks <= 1:
        return (gt, 1, m, groups, 0, 0, 0, 0)
    length = -(-m // chunks)
    length = -(-length // lanes) * lanes
    return (gt, -(-m // length), length, groups, 0, 0, 0, 0)


def _kernel(name, dtype, pdtype, dev):
    key = (name, dtype, pdtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        dtypes.check(dtype, "normalisation")
        if not dtype.is_floating_point:
            raise RuntimeError(f"ocl: normalisation needs a floating-point input, got {dtype}")
        defines = dtypes.kernel_defines(dtype, store="ST")
        defines.update(PT=dtypes.storage(pdtype), LDP=dtypes.load_macro(pdtype), STP=_STP[dtypes.load_macro(pdtype)],
                       WG=_work_group(dev), AT="double" if dev.fp64 else defines["CT"])
        if pdtype is torch.float64 or dev.fp64:  # parameters or accumulation in double
            defines["FP64"] = None
        sig, scalars = _SIGNATURES[name]
        sig += dtypes.SCALAR_CHAR[defines["CT"]] * scalars
        k = _kernels[key] = runtime.get_kernel(("types.cl", "norm.cl"), defines, name, sig, dev)
    return k


def _buf(t, fallback):
    """(buffer, element offset) of ``t``, or a placeholder the kernel never reads."""
    if t is None:
        return fallback._buf, 0
    return t._buf, t.storage_offset()


def _spatial_stride(shape, stride):
    """The single stride that walks dims 2.. of (shape, stride), or None if there is none."""
    spatial = [(n, s) for n, s in zip(shape[2:], stride[2:]) if n != 1]
    for (n0, s0), (n1, s1) in zip(spatial, spatial[1:]):
        if s0 != n1 * s1:
            return None
    return spatial[-1][1] if spatial else 1


def _ncs(t):
    """``t`` (N, C, *spatial) seen as (N, C, S): (tensor, strides (sn, sc, ss)); copies
    ``t`` when its spatial dims cannot be walked with a single stride."""
    ss = _spatial_stride(tuple(t.shape), t.stride())
    if ss is None:
        t = _copy.contiguous(t)
        ss = _spatial_stride(tuple(t.shape), t.stride())
    return t, (t.stride(0), t.stride(1), ss)


def _new_ncs(m, index):
    """A new tensor for meta result ``m``, in its layout when (N, C, S) can address it."""
    if _spatial_stride(tuple(m.shape), m.stride()) is None:
        return empty(m.shape, m.dtype, index)
    return empty(m.shape, m.dtype, index, m.stride())


class _Params:
    """weight/bias/running stats as contiguous tensors of one dtype; running
    stats that had to be converted are written back by ``finish``."""

    def __init__(self, x, weight, bias, running_mean=None, running_var=None):
        present = [t for t in (weight, bias, running_mean, running_var) if t is not None]
        self.dtype = present[0].dtype if present else stats_dtype(x.dtype)
        self.weight, self.bias = self._fit(weight), self._fit(bias)
        self.running = [(t, self._fit(t)) for t in (running_mean, running_var)]
        self.running_mean, self.running_var = self.running[0][1], self.running[1][1]

    def _fit(self, t):
        if t is None or (t.dtype is self.dtype and (t.dim() == 0 or t.stride(-1) == 1 or t.numel() <= 1)):
            return t
        return _copy.contiguous(t, self.dtype)

    def finish(self):
        for orig, used in self.running:
            if used is not orig:
                orig.copy_(used)


def _geometry(g2, p, q, sg1, sg2, sp, sq):
    return (g2, p, q, sg1, sg2, sp, sq, 0)


def _launch(k, ck, chunks, args):
    wg = _work_group(k.device)
    tiles = -(-ck[3] // ck[0])
    k.launch((tiles * wg, chunks), (wg, 1), args)


def _forward(x, y, params, groups, gx, gy, pc, flags, eps, momentum=0.0, mean=None, rstd=None):
    dev = runtime.device(x._index)
    ck = _split(dev, groups, gx)
    chunks = ck[1]
    if params.weight is not None:
        flags |= _WEIGHT
    if params.bias is not None:
        flags |= _BIAS
    if mean is not None:
        flags |= _SAVE
    part = None
    if chunks > 1 and not flags & _RUNNING:
        part = empty((groups * chunks * 2,), _accumulation_dtype(dev), x._index)
        k = _kernel("norm_stats", x.dtype, params.dtype, dev)
        _launch(k, ck, chunks, (part._buf, 0, x._buf, x.storage_offset(), gx, ck))
        flags |= _PARTIALS
    k = _kernel("norm_forward", x.dtype, params.dtype, dev)
    _launch(k, ck, chunks, (
        y._buf, y.storage_offset(), x._buf, x.storage_offset(), *_buf(params.weight, x), *_buf(params.bias, x),
        *_buf(mean, x), *_buf(rstd, x), *_buf(params.running_mean, x), *_buf(params.running_var, x),
        *_buf(part, x), gx, gy, pc, ck, flags, float(eps), float(momentum)))


def _backward(dy, x, gi, params, mean, rstd, groups, gx, gd, gg, pc, flags, eps, gw=None, gb=None):
    dev = runtime.device(x._index)
    ck = _split(dev, groups, gx)
    chunks = ck[1]
    if params.weight is not None:
        flags |= _WEIGHT
    if gi is not None:
        flags |= _GRAD_INPUT
    if gw is not None:
        flags |= _GRAD_WEIGHT
    if gb is not None:
        flags |= _GRAD_BIAS
    stats = (*_buf(mean, x), *_buf(rstd, x), *_buf(params.running_mean, x), *_buf(params.running_var, x))
    sums = not flags & _RUNNING or (flags & _GROUP_PARAMS and (gw is not None or gb is not None))
    part = None
    if chunks > 1 and sums:
        part = empty((groups * chunks * 2,), _accumulation_dtype(dev), x._index)
        k = _kernel("norm_grad_sums", x.dtype, params.dtype, dev)
        _launch(k, ck, chunks, (part._buf, 0, dy._buf, dy.storage_offset(), x._buf, x.storage_offset(),
                                *_buf(params.weight, x), *stats, gx, gd, pc, ck, flags, float(eps)))
        flags |= _PARTIALS
    k = _kernel("norm_backward", x.dtype, params.dtype, dev)
    # without grad_input only the first chunk's work-groups have work: the group's grads
    _launch(k, ck, chunks if gi is not None else 1, (
        *_buf(gi, x), dy._buf, dy.storage_offset(), x._buf, x.storage_offset(), *_buf(params.weight, x),
        *stats, *_buf(gw, x), *_buf(gb, x), *_buf(part, x), gx, gd, gg, pc, ck, flags, float(eps)))


def _param_grad(dy, x, mean, rstd, gw, gb, pdtype, count, geom, xs, ds):
    if gw is None and gb is None:
        return
    dev = runtime.device(x._index)
    wg = _work_group(dev)
    k = _kernel("norm_param_grad", x.dtype, pdtype, dev)
    flags = (_GRAD_WEIGHT if gw is not None else 0) | (_GRAD_BIAS if gb is not None else 0)
    k.launch((count * wg,), (wg,), (*_buf(gw, x), *_buf(gb, x), dy._buf, dy.storage_offset(), x._buf,
                                    x.storage_offset(), *_buf(mean, x), *_buf(rstd, x), geom, xs, ds, flags))


def _empty_like_meta(m, index):
    return empty(m.shape, m.dtype, index, m.stride())


# ---- batch norm ----

def _bn_geometry(strides, n, s):
    sn, sc, ss = strides
    return _geometry(1, n, s, sc, 0, sn, ss)


_BN_PARAM_INDEX = (1, 0, 0, 0, 0, 0, 0, 0)


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """(out, save_mean, save_invstd) of batch norm; updates the running stats in training."""
    meta = infer(aten.native_batch_norm.default, (x, weight, bias, running_mean, running_var, training,
                                                  momentum, eps))
    out = _new_ncs(meta[0], x._index)
    c = x.shape[1]
    sdt = stats_dtype(x.dtype)
    if training:
        mean, rstd = empty((c,), sdt, x._index), empty((c,), sdt, x._index)
    else:
        mean, rstd = empty((0,), sdt, x._index), empty((0,), sdt, x._index)
    if x.numel() == 0:
        return out, mean, rstd
    params = _Params(x, weight, bias, running_mean, running_var)
    n = x.shape[0]
    xv, xs = _ncs(x)
    s = x.numel() // (n * c)
    _, ys = _ncs(out)
    flags = 0
    if not training:
        flags |= _RUNNING
    elif params.running_mean is not None:
        flags |= _UPDATE
    _forward(xv, out, params, c, _bn_geometry(xs, n, s), _bn_geometry(ys, n, s), _BN_PARAM_INDEX, flags, eps,
             momentum, mean if training else None, rstd if training else None)
    params.finish()
    return out, mean, rstd


@register(aten.native_batch_norm.default)
def native_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps):
    return batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps)


@register(aten._native_batch_norm_legit.default)
def _native_batch_norm_legit(x, weight, bias, running_mean, running_var, training, momentum, eps):
    return batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps)


@register(aten._native_batch_norm_legit.no_stats)
def _native_batch_norm_legit_no_stats(x, weight, bias, training, momentum, eps):
    return batch_norm_forward(x, weight, bias, None, None, training, momentum, eps)


@register(aten._native_batch_norm_legit_no_training.default)
def _native_batch_norm_legit_no_training(x, weight, bias, running_mean, running_var, momentum, eps):
    return batch_norm_forward(x, weight, bias, running_mean, running_var, False, momentum, eps)


@register(aten._native_batch_norm_legit_functional.default)
def _native_batch_norm_legit_functional(x, weight, bias, running_mean, running_var, training, momentum, eps):
    new_mean, new_var = _copy.contiguous(running_mean), _copy.contiguous(running_var)
    out, mean, rstd = batch_norm_forward(x, weight, bias, new_mean, new_var, training, momentum, eps)
    return out, mean, rstd, new_mean, new_var


def batch_norm_backward(dy, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                        output_mask):
    """(grad_input, grad_weight, grad_bias) of batch norm, each None where output_mask is False."""
    meta = infer(aten.native_batch_norm_backward.default, (dy, x, weight, running_mean, running_var, save_mean,
                                                           save_invstd, train, eps, output_mask))
    c = x.shape[1]
    pdtype = weight.dtype if weight is not None else x.dtype
    gi = _new_ncs(meta[0], x._index) if output_mask[0] else None
    gw = empty((c,), pdtype, x._index) if output_mask[1] else None
    gb = empty((c,), pdtype, x._index) if output_mask[2] else None
    if gi is None and gw is None and gb is None:
        return None, None, None
    if x.numel() == 0:
        for t in (gw, gb):
            if t is not None and t.numel():
                t.zero_()
        return gi, gw, gb
    params = _Params(x, weight, None, None if train else running_mean, None if train else running_var)
    n = x.shape[0]
    s = x.numel() // (n * c)
    xv, xs = _ncs(x)
    dv, ds = _ncs(dy)
    flags = _GROUP_PARAMS | (0 if train else _RUNNING)
    gs = _ncs(gi)[1] if gi is not None else xs
    _backward(dv, xv, gi, params, save_mean if train else None, save_invstd if train else None, c,
              _bn_geometry(xs, n, s), _bn_geometry(ds, n, s), _bn_geometry(gs, n, s), _BN_PARAM_INDEX,
              flags, eps, gw, gb)
    return gi, gw, gb


@register(aten.native_batch_norm_backward.default)
def native_batch_norm_backward(dy, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                               output_mask):
    return batch_norm_backward(dy, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                               output_mask)


@register(aten.batch_norm_backward.default)
def _batch_norm_backward(dy, x, weight, running_mean, running_var, save_mean, save_var, update, eps,
                         output_mask, reserve):
    # torch passes 1/std as save_var here too; `update` is the training flag
    return batch_norm_backward(dy, x, weight, running_mean, running_var, save_mean, save_var, update, eps,
                               output_mask)


# ---- layer norm ----

def _rows(x, normalized_shape):
    k = 1
    for d in normalized_shape:
        k *= d
    m = x.numel() // k if k else 0
    return m, k


@register(aten.native_layer_norm.default)
def native_layer_norm(x, normalized_shape, weight, bias, eps):
    meta = infer(aten.native_layer_norm.default, (x, normalized_shape, weight, bias, eps))
    out, mean, rstd = (_empty_like_meta(m, x._index) for m in meta)
    m, k = _rows(x, normalized_shape)
    if m == 0 or k == 0:
        return out, mean, rstd
    if not _copy.is_contiguous(x):
        x = _copy.contiguous(x)
    params = _Params(x, weight, bias)
    geom = _geometry(1, 1, k, k, 0, 0, 1)
    _forward(x, out, params, m, geom, geom, (0, 0, 0, 1, 0, 0, 0, 0), 0, eps, 0.0, mean, rstd)
    return out, mean, rstd


@register(aten.native_layer_norm_backward.default)
def native_layer_norm_backward(dy, x, normalized_shape, mean, rstd, weight, bias, output_mask):
    meta = infer(aten.native_layer_norm_backward.default, (dy, x, normalized_shape, mean, rstd, weight, bias,
                                                           output_mask))
    gi, gw, gb = (_empty_like_meta(mt, x._index) if want and mt is not None else None
                  for mt, want in zip(meta, output_mask))
    if gi is not None and not _copy.is_contiguous(gi):  # the kernel writes rows; torch's CPU result is contiguous too
        gi = empty(gi.shape, gi.dtype, x._index)
    m, k = _rows(x, normalized_shape)
    if m == 0 or k == 0:
        for t in (gw, gb):
            if t is not None and t.numel():
                t.zero_()
        return gi, gw, gb
    x = x if _copy.is_contiguous(x) else _copy.contiguous(x)
    dy = dy if _copy.is_contiguous(dy) else _copy.contiguous(dy)
    mean = mean if _copy.is_contiguous(mean) else _copy.contiguous(mean)
    rstd = rstd if _copy.is_contiguous(rstd) else _copy.contiguous(rstd)
    params = _Params(x, weight, None)
    geom = _geometry(1, 1, k, k, 0, 0, 1)
    if gi is not None:
        _backward(dy, x, gi, params, mean, rstd, m, geom, geom, geom, (0, 0, 0, 1, 0, 0, 0, 0), 0, 0.0)
    _param_grad(dy, x, mean, rstd, gw, gb, params.dtype, k, (m, 1, 1, 0, 1, 0, 0, 0),
                (1, k, 0, 0, 0, 0, 0, 0), (1, k, 0, 0, 0, 0, 0, 0))
    return gi, gw, gb


# ---- group norm ----

def _gn_geometry(strides, c, s, group):
    sn, sc, ss = strides
    cg = c // group
    return _geometry(group, cg, s, sn, cg * sc, sc, ss)


@register(aten.native_group_norm.default)
def native_group_norm(x, weight, bias, n, c, hxw, group, eps):
    meta = infer(aten.native_group_norm.default, (x, weight, bias, n, c, hxw, group, eps))
    out, mean, rstd = _new_ncs(meta[0], x._index), _empty_like_meta(meta[1], x._index), \
        _empty_like_meta(meta[2], x._index)
    if x.numel() == 0:
        return out, mean, rstd
    params = _Params(x, weight, bias)
    xv, xs = _ncs(x)
    _, ys = _ncs(out)
    cg = c // group
    _forward(xv, out, params, n * group, _gn_geometry(xs, c, hxw, group), _gn_geometry(ys, c, hxw, group),
             (0, cg, 1, 0, 0, 0, 0, 0), 0, eps, 0.0, mean, rstd)
    return out, mean, rstd


@register(aten.native_group_norm_backward.default)
def native_group_norm_backward(dy, x, mean, rstd, weight, n, c, hxw, group, output_mask):
    meta = infer(aten.native_group_norm_backward.default, (dy, x, mean, rstd, weight, n, c, hxw, group,
                                                           output_mask))
    gi, gw, gb = (_empty_like_meta(mt, x._index) if want and mt is not None else None
                  for mt, want in zip(meta, output_mask))
    if gi is not None:
        gi = _new_ncs(meta[0], x._index)
    if x.numel() == 0:
        for t in (gw, gb):
            if t is not None and t.numel():
                t.zero_()
        return gi, gw, gb
    mean = mean if _copy.is_contiguous(mean) else _copy.contiguous(mean)
    rstd = rstd if _copy.is_contiguous(rstd) else _copy.contiguous(rstd)
    params = _Params(x, weight, None)
    xv, xs = _ncs(x)
    dv, ds = _ncs(dy)
    cg = c // group
    if gi is not None:
        _, gs = _ncs(gi)
        _backward(dv, xv, gi, params, mean, rstd, n * group, _gn_geometry(xs, c, hxw, group),
                  _gn_geometry(ds, c, hxw, group), _gn_geometry(gs, c, hxw, group), (0, cg, 1, 0, 0, 0, 0, 0),
                  0, 0.0)
    _param_grad(dv, xv, mean, rstd, gw, gb, params.dtype, c, (n, hxw, cg, 1, group, 0, 0, 0),
                (xs[1], xs[0], xs[2], 0, 0, 0, 0, 0), (ds[1], ds[0], ds[2], 0, 0, 0, 0, 0))
    return gi, gw, gb
