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
from ..torch.tensor import contiguous_strides, empty, entry
from . import copy as _copy
from . import dtypes, pointwise
from .meta import call_key, infer

aten = torch.ops.aten

_WEIGHT, _BIAS, _RUNNING, _UPDATE, _SAVE = 1, 2, 4, 8, 16
_GRAD_INPUT, _GROUP_PARAMS, _GRAD_WEIGHT, _GRAD_BIAS, _PARTIALS = 32, 64, 128, 256, 512
_KEEP_Y, _ACT_SHIFT = 1024, 11
# activations a batch norm kernel applies to its output (forward) or whose gradient it applies to
# grad_out (backward), as cl/norm.cl numbers them
ACTIVATIONS = {"relu": 1, "relu6": 2, "silu": 3}
_STP = {"LD_plain": "STP_plain", "LD_half": "STP_half", "LD_bf16": "STP_bf16"}
# name -> (signature, number of trailing compute-type scalars: eps, momentum)
_SIGNATURES = {
    "norm_stats": ("Bi" * 2 + "VV", 0),
    "norm_forward": ("Bi" * 10 + "VVVVi", 2),
    "norm_grad_sums": ("Bi" * 9 + "VVVVi", 1),
    "norm_backward": ("Bi" * 12 + "VVVVVi", 1),
    "norm_param_grad": ("Bi" * 6 + "VVVi", 0),
    "bn_eval": ("Bi" * 6 + "iiii", 1),
    "ln_rows": ("Bi" * 6 + "iiii", 1),
    "ln_rows_backward": ("Bi" * 6 + "iiii", 0),
    "bn_fold": ("BBB" + "Bi" * 5 + "iii", 1),
}
_EVAL_LIMIT = 2**30      # bn_eval indexes with int: larger calls take the general kernel
_INT32_MAX = 2**31 - 1   # ln_rows indexes with int too
_ROW_ELEMENTS = 8        # ln_rows' EPI: the most elements of a row a work-item holds
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
                       WG=_work_group(dev), EPI=_ROW_ELEMENTS, AT="double" if dev.fp64 else defines["CT"])
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
    _, buf, offset, _ = entry(t)
    return buf, offset


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
    shape, dtype, stride = _new_ncs_geometry(m)
    return empty(shape, dtype, index, stride)


def _new_ncs_geometry(m):
    """(shape, dtype, strides) of the tensor :func:`_new_ncs` makes for meta result ``m``."""
    shape = tuple(m.shape)
    stride = m.stride() if _spatial_stride(shape, m.stride()) is not None else contiguous_strides(shape)
    return shape, m.dtype, stride


class _Params:
    """weight/bias/running stats as contiguous tensors of one dtype; running
    stats that had to be converted are written back by ``finish``."""

    def __init__(self, x, weight, bias, running_mean=None, running_var=None):
        self.dtype = self.dtype_for(x, weight, bias, running_mean, running_var)
        self.weight, self.bias = self._fit(weight), self._fit(bias)
        self.running = [(t, self._fit(t)) for t in (running_mean, running_var)]
        self.running_mean, self.running_var = self.running[0][1], self.running[1][1]

    @staticmethod
    def dtype_for(x, *tensors):
        present = [t for t in tensors if t is not None]
        return present[0].dtype if present else stats_dtype(x.dtype)

    def _fit(self, t):
        if t is None or self.fits(t, self.dtype):
            return t
        return _copy.contiguous(t, self.dtype)

    @staticmethod
    def fits(t, dtype):
        """True when ``t`` is used as it is (a function of its dtype, shape and strides)."""
        return t.dtype is dtype and (t.dim() == 0 or t.stride(-1) == 1 or t.numel() <= 1)

    @classmethod
    def as_given(cls, dtype, weight, bias, running_mean=None, running_var=None):
        """The parameters of a call whose tensors all fit (nothing to convert or write back)."""
        p = cls.__new__(cls)
        p.dtype, p.weight, p.bias, p.running = dtype, weight, bias, ()
        p.running_mean, p.running_var = running_mean, running_var
        return p

    def finish(self):
        for orig, used in self.running:
            if used is not orig:
                orig.copy_(used)


def _geometry(g2, p, q, sg1, sg2, sp, sq):
    return (g2, p, q, sg1, sg2, sp, sq, 0)


@functools.lru_cache(maxsize=1024)
def _passes(backward, index, dtype, pdtype, groups, gx, flags, tunables):
    """How one forward or backward norm call with these flags runs (a pure function of its
    arguments, so cached): (flags with _PARTIALS where partials are used, ck, partials length or 0,
    (first kernel, global, local) or None, (main kernel, global, local))."""
    dev = runtime.device(index)
    ck = _split_cached(*_device_shape(index), groups, gx, *tunables)
    chunks = ck[1]
    wg = _work_group(dev)
    tiles = -(-ck[3] // ck[0])
    grid, local = (tiles * wg, chunks), (wg, 1)
    if backward:
        sums = not flags & _RUNNING or (flags & _GROUP_PARAMS and flags & (_GRAD_WEIGHT | _GRAD_BIAS))
        first_name, main_name = "norm_grad_sums", "norm_backward"
        # without grad_input only the first chunk's work-groups have work: the group's grads
        main_grid = grid if flags & _GRAD_INPUT else (tiles * wg, 1)
    else:
        sums = not flags & _RUNNING
        first_name, main_name = "norm_stats", "norm_forward"
        main_grid = grid
    first, part = None, 0
    if chunks > 1 and sums:
        first = (_kernel(first_name, dtype, pdtype, dev), grid, local)
        part = groups * chunks * 2
        flags |= _PARTIALS
    return flags, ck, part, first, (_kernel(main_name, dtype, pdtype, dev), main_grid, local)


def _plan_passes(backward, x, pdtype, groups, gx, flags):
    return _passes(backward, x._index, x.dtype, pdtype, groups, tuple(gx), flags,
                   (WAVES, MIN_PER_ITEM, MAX_CHUNKS, INTERLEAVE))


def _partials(part, x):
    """A workspace buffer of ``part`` accumulation-type partial sums (None for none)."""
    if not part:
        return None
    dev = runtime.device(x._index)
    return dev.alloc(part * _accumulation_dtype(dev).itemsize)


def _part_arg(part, x):
    return (x._buf, 0) if part is None else (part, 0)


def _forward(x, y, params, groups, gx, gy, pc, flags, eps, momentum=0.0, mean=None, rstd=None, a=None):
    """Normalises x into y; with an activation in flags, act(y) goes to a (same geometry as y) and
    y is written only with _KEEP_Y (else y may be a placeholder)."""
    if params.weight is not None:
        flags |= _WEIGHT
    if params.bias is not None:
        flags |= _BIAS
    if mean is not None:
        flags |= _SAVE
    flags, ck, part, first, (k, grid, local) = _plan_passes(False, x, params.dtype, groups, gx, flags)
    part = _partials(part, x)
    if first is not None:
        first[0].launch(first[1], first[2], (part, 0, x._buf, x.storage_offset(), gx, ck))
    k.launch(grid, local, (
        y._buf, y.storage_offset(), *_buf(a, y), x._buf, x.storage_offset(), *_buf(params.weight, x),
        *_buf(params.bias, x), *_buf(mean, x), *_buf(rstd, x), *_buf(params.running_mean, x),
        *_buf(params.running_var, x), *_part_arg(part, x), gx, gy, pc, ck, flags, float(eps), float(momentum)))


def _backward(dy, x, gi, params, mean, rstd, groups, gx, gd, gg, pc, flags, eps, gw=None, gb=None, src=None):
    """Input, weight and bias grads; with an activation in flags, grad_out is first multiplied by
    that activation's derivative at src (dy's geometry)."""
    if params.weight is not None:
        flags |= _WEIGHT
    if gi is not None:
        flags |= _GRAD_INPUT
    if gw is not None:
        flags |= _GRAD_WEIGHT
    if gb is not None:
        flags |= _GRAD_BIAS
    flags, ck, part, first, (k, grid, local) = _plan_passes(True, x, params.dtype, groups, gx, flags)
    stats = (*_buf(mean, x), *_buf(rstd, x), *_buf(params.running_mean, x), *_buf(params.running_var, x))
    part = _partials(part, x)
    if first is not None:
        first[0].launch(first[1], first[2], (part, 0, dy._buf, dy.storage_offset(), *_buf(src, dy),
                                             x._buf, x.storage_offset(),
                                             *_buf(params.weight, x), *stats, gx, gd, pc, ck,
                                             flags & ~_PARTIALS, float(eps)))
    k.launch(grid, local, (
        *_buf(gi, x), dy._buf, dy.storage_offset(), *_buf(src, dy), x._buf, x.storage_offset(),
        *_buf(params.weight, x),
        *stats, *_buf(gw, x), *_buf(gb, x), *_part_arg(part, x), gx, gd, gg, pc, ck, flags, float(eps)))


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


_CALLS_LIMIT = 1024  # batch norm call signatures kept per pass; the caches start over when full
_forward_calls = {}   # call signature -> _BatchNormForward
_backward_calls = {}  # call signature -> _BatchNormBackward


def _cached(calls, key, make):
    call = calls.get(key) if key is not None else None
    if call is None:
        call = make()
        if key is not None:
            if len(calls) >= _CALLS_LIMIT:
                calls.clear()
            calls[key] = call
    return call


def _ncs_geometry(shape, stride, n, s):
    """The batch norm geometry of a tensor of ``shape`` and ``stride`` as :func:`_ncs` walks it (its
    contiguous copy if needed), and whether the tensor is walked as it is."""
    shape = tuple(shape)
    ss = _spatial_stride(shape, stride)
    direct = ss is not None
    if not direct:
        stride = contiguous_strides(shape)
        ss = _spatial_stride(shape, stride)
    return _bn_geometry((stride[0], stride[1], ss), n, s), direct


def _eval_launch(x, out_stride):
    """(global size, local size, planes, plane length) of bn_eval for a dense NCHW-like x whose
    output has its strides, else None (other layouts take the per-channel kernel)."""
    if x.dim() < 2 or tuple(out_stride) != x.stride() or not x.is_contiguous() or x.numel() > _EVAL_LIMIT:
        return None
    planes = x.shape[0] * x.shape[1]
    length = x.numel() // max(1, planes)
    grid = pointwise.plane_launch(length, planes)   # bn_eval walks planes as pointwise's 2-D launches do
    return None if grid is None else (*grid, planes, length)


def _eval(x, y, params, c, launch, eps):
    """Batch norm with running statistics in one elementwise pass (cl/norm.cl bn_eval)."""
    flags = (_WEIGHT if params.weight is not None else 0) | (_BIAS if params.bias is not None else 0)
    gsize, lsize, planes, length = launch
    k = _kernel("bn_eval", x.dtype, params.dtype, runtime.device(x._index))
    k.launch(gsize, lsize, (
        y._buf, y.storage_offset(), x._buf, x.storage_offset(), *_buf(params.weight, x), *_buf(params.bias, x),
        *_buf(params.running_mean, x), *_buf(params.running_var, x), planes, length, c, flags, float(eps)))


class _BatchNormForward:
    """What a batch norm call's signature decides, found once after torch's checks: the output's
    and statistics' geometry, the kernels' geometry and flags, which tensors need copies."""

    def __init__(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        meta = infer(aten.native_batch_norm.default, (x, weight, bias, running_mean, running_var, training,
                                                      momentum, eps))
        self.out = _new_ncs_geometry(meta[0])
        c = x.shape[1]
        self.stats = ((c,) if training else (0,), stats_dtype(x.dtype))
        self.training, self.c, self.empty = training, c, x.numel() == 0
        if self.empty:
            return
        self.pdtype = _Params.dtype_for(x, weight, bias, running_mean, running_var)
        self.params_fit = all(t is None or _Params.fits(t, self.pdtype)
                              for t in (weight, bias, running_mean, running_var))
        n = x.shape[0]
        s = x.numel() // (n * c)
        self.gx, self.x_direct = _ncs_geometry(x.shape, x.stride(), n, s)
        shape, _, stride = self.out
        self.gy = _ncs_geometry(shape, stride, n, s)[0]
        self.flags = _RUNNING if not training else _UPDATE if running_mean is not None else 0
        self.eval_launch = None if training else _eval_launch(x, stride)

    def run(self, x, weight, bias, running_mean, running_var, momentum, eps, act=0, keep_y=False):
        """(out, mean, rstd); with an activation code ``act``, (out, act(out), mean, rstd) where out
        is written only when keep_y (else it is a 0-element tensor)."""
        index = x._index
        shape, dtype, stride = self.out
        a = empty(shape, dtype, index, stride) if act else None
        out = empty(shape, dtype, index, stride) if not act or keep_y else empty((0,), dtype, index)
        shape, dtype = self.stats
        mean, rstd = empty(shape, dtype, index), empty(shape, dtype, index)
        if self.empty:
            return (out, a, mean, rstd) if act else (out, mean, rstd)
        if self.params_fit:
            params = _Params.as_given(self.pdtype, weight, bias, running_mean, running_var)
        else:
            params = _Params(x, weight, bias, running_mean, running_var)
        if not act and self.eval_launch is not None and x.storage_offset() < _EVAL_LIMIT:
            _eval(x, out, params, self.c, self.eval_launch, eps)
            params.finish()
            return out, mean, rstd
        xv = x if self.x_direct else _copy.contiguous(x)
        training = self.training
        flags = self.flags | (act << _ACT_SHIFT) | (_KEEP_Y if keep_y else 0)
        _forward(xv, out if not act or keep_y else a, params, self.c, self.gx, self.gy, _BN_PARAM_INDEX, flags,
                 eps, momentum, mean if training else None, rstd if training else None, a)
        params.finish()
        return (out, a, mean, rstd) if act else (out, mean, rstd)


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps, act=0, keep_y=False):
    """(out, save_mean, save_invstd) of batch norm; updates the running stats in training. With an
    activation code (ACTIVATIONS), (out or a 0-element tensor unless keep_y, act(out), mean, invstd)."""
    key = call_key((x, weight, bias, running_mean, running_var), (training,))
    call = _cached(_forward_calls, key, lambda: _BatchNormForward(x, weight, bias, running_mean, running_var,
                                                                  training, momentum, eps))
    return call.run(x, weight, bias, running_mean, running_var, momentum, eps, act, keep_y)


# ---- torch.ops.oclcore.fold_batch_norm: batch norm with running statistics folded into a conv ----

torch.library.define(
    "oclcore::fold_batch_norm",
    "(Tensor w, Tensor? b, Tensor? gamma, Tensor? beta, Tensor running_mean, Tensor running_var, "
    "float eps) -> (Tensor, Tensor)")


def _fold_reference(w, b, gamma, beta, running_mean, running_var, eps):
    s = torch.rsqrt(running_var + eps)
    if gamma is not None:
        s = s * gamma
    shift = (-running_mean if b is None else b - running_mean) * s
    if beta is not None:
        shift = shift + beta
    return w * s.view([-1] + [1] * (w.dim() - 1)), shift


@torch.library.register_fake("oclcore::fold_batch_norm")
def _fold_fake(w, b, gamma, beta, running_mean, running_var, eps):
    return torch.empty_like(w, memory_format=torch.contiguous_format), w.new_empty(w.shape[:1])


torch.library.impl("oclcore::fold_batch_norm", "CPU")(_fold_reference)


@register(torch.ops.oclcore.fold_batch_norm.default)
def fold_batch_norm(w, b, gamma, beta, running_mean, running_var, eps):
    """(w * s, (b - mean) * s + beta) with s = gamma / sqrt(var + eps) per output channel (dim 0 of
    w): the weight and bias of a convolution followed by eval batch norm, in one launch."""
    params = (b, gamma, beta, running_mean, running_var)
    if any(t is not None and (t.dtype != w.dtype or t.dim() != 1) for t in params) or not w.dtype.is_floating_point:
        return _fold_reference(w, b, gamma, beta, running_mean, running_var, eps)
    if not w.is_contiguous() or w.storage_offset():
        w = _copy.contiguous(w)
    k = w.shape[0]
    w2, b2 = empty(tuple(w.shape), w.dtype, w._index), empty((k,), w.dtype, w._index)
    if k == 0:
        return w2, b2
    length = w.numel() // k
    flags = (1 if b is not None else 0) | (2 if gamma is not None else 0) | (4 if beta is not None else 0)
    items = k * max(length, 1)
    _kernel("bn_fold", w.dtype, w.dtype, runtime.device(w._index)).launch(
        (items,), (256,) if items >= 256 else None,
        (w2._buf, b2._buf, w._buf, *_buf(b, w), *_buf(gamma, w), *_buf(beta, w), *_buf(running_mean, w),
         *_buf(running_var, w), k, length, flags, float(eps)))
    return w2, b2


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


class _BatchNormBackward:
    """What a batch norm backward call's signature decides (see _BatchNormForward)."""

    def __init__(self, dy, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps, output_mask):
        meta = infer(aten.native_batch_norm_backward.default, (dy, x, weight, running_mean, running_var, save_mean,
                                                               save_invstd, train, eps, output_mask))
        c = x.shape[1]
        self.c, self.train = c, train
        self.gi = _new_ncs_geometry(meta[0]) if output_mask[0] else None
        self.pdtype = weight.dtype if weight is not None else x.dtype
        self.gw, self.gb = bool(output_mask[1]), bool(output_mask[2])
        self.nothing = self.gi is None and not self.gw and not self.gb
        self.empty = x.numel() == 0
        if self.nothing or self.empty:
            return
        running = (None, None) if train else (running_mean, running_var)
        self.params_dtype = _Params.dtype_for(x, weight, None, *running)
        self.params_fit = all(t is None or _Params.fits(t, self.params_dtype) for t in (weight, *running))
        n = x.shape[0]
        s = x.numel() // (n * c)
        self.gx, self.x_direct = _ncs_geometry(x.shape, x.stride(), n, s)
        self.gd, self.dy_direct = _ncs_geometry(dy.shape, dy.stride(), n, s)
        self.gg = self.gx if self.gi is None else _ncs_geometry(self.gi[0], self.gi[2], n, s)[0]
        self.flags = _GROUP_PARAMS | (0 if train else _RUNNING)

    def run(self, dy, x, weight, running_mean, running_var, save_mean, save_invstd, eps, act=0, src=None):
        index, c = x._index, self.c
        gi = None
        if self.gi is not None:
            shape, dtype, stride = self.gi
            gi = empty(shape, dtype, index, stride)
        gw = empty((c,), self.pdtype, index) if self.gw else None
        gb = empty((c,), self.pdtype, index) if self.gb else None
        if self.nothing:
            return None, None, None
        if self.empty:
            for t in (gw, gb):
                if t is not None and t.numel():
                    t.zero_()
            return gi, gw, gb
        train = self.train
        running = (None, None) if train else (running_mean, running_var)
        if self.params_fit:
            params = _Params.as_given(self.params_dtype, weight, None, *running)
        else:
            params = _Params(x, weight, None, *running)
        xv = x if self.x_direct else _copy.contiguous(x)
        dv = dy if self.dy_direct else _copy.contiguous(dy)
        if act and dv is not dy:  # (src has dy's layout: the caller's condition)
            src = _copy.contiguous(src)
        _backward(dv, xv, gi, params, save_mean if train else None, save_invstd if train else None, c,
                  self.gx, self.gd, self.gg, _BN_PARAM_INDEX, self.flags | (act << _ACT_SHIFT), eps, gw, gb,
                  src if act else None)
        return gi, gw, gb


def batch_norm_backward(dy, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                        output_mask, act=0, src=None):
    """(grad_input, grad_weight, grad_bias) of batch norm, each None where output_mask is False. With
    an activation code, dy is the activation's grad_out, first multiplied by its derivative at src
    (which has dy's layout)."""
    key = call_key((dy, x, weight, running_mean, running_var, save_mean, save_invstd), (train, output_mask))
    call = _cached(_backward_calls, key, lambda: _BatchNormBackward(
        dy, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps, output_mask))
    return call.run(dy, x, weight, running_mean, running_var, save_mean, save_invstd, eps, act, src)


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
    rows = _row_launch(x, m, k)
    if rows is not None and _copy.is_contiguous(out):
        grid, local, lanes = rows
        flags = _SAVE | (_WEIGHT if params.weight is not None else 0) | (_BIAS if params.bias is not None else 0)
        _kernel("ln_rows", x.dtype, params.dtype, runtime.device(x._index)).launch(grid, local, (
            out._buf, out.storage_offset(), x._buf, x.storage_offset(), *_buf(params.weight, x),
            *_buf(params.bias, x), mean._buf, mean.storage_offset(), rstd._buf, rstd.storage_offset(),
            m, k, lanes, flags, float(eps)))
        return out, mean, rstd
    geom = _geometry(1, 1, k, k, 0, 0, 1)
    _forward(x, out, params, m, geom, geom, (0, 0, 0, 1, 0, 0, 0, 0), 0, eps, 0.0, mean, rstd)
    return out, mean, rstd


@functools.lru_cache(maxsize=256)
def _row_lanes(index, k):
    """Work-items per row for ln_rows on rows of ``k`` elements (about 4 each, a power of two), or 0
    when a row needs more than a work-group's worth (the general kernel's chunks take those)."""
    wg = _work_group(runtime.device(index))
    lanes = min(wg, _pow2_ceil(-(-k // 4)))
    return lanes if k <= _ROW_ELEMENTS * lanes else 0


def _row_launch(x, m, k):
    """(global size, local size, lanes per row) of ln_rows / ln_rows_backward over ``m`` rows of ``k``
    elements of ``x``, or None when such rows take the general kernels."""
    lanes = _row_lanes(x._index, k)
    if not lanes or m * k >= _INT32_MAX:
        return None
    wg = _work_group(runtime.device(x._index))
    return (-(-m // (wg // lanes)) * wg,), (wg,), lanes


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
    rows = _row_launch(x, m, k)
    if gi is not None and rows is not None:
        grid, local, lanes = rows
        _kernel("ln_rows_backward", x.dtype, params.dtype, runtime.device(x._index)).launch(grid, local, (
            gi._buf, gi.storage_offset(), dy._buf, dy.storage_offset(), x._buf, x.storage_offset(),
            *_buf(params.weight, x), mean._buf, mean.storage_offset(), rstd._buf, rstd.storage_offset(),
            m, k, lanes, _WEIGHT if params.weight is not None else 0))
    elif gi is not None:
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
