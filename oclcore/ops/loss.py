"""Loss functions on cl/loss.cl: nll_loss / nll_loss2d (cross_entropy's second
half), mse, smooth_l1, huber, binary_cross_entropy (forward and backward) and
binary_cross_entropy_with_logits (forward; torch composes its backward from
elementwise ops).

l1_loss, kl_div, and cross_entropy's label smoothing and probability targets
reach the device as elementwise ops and reductions, so they need nothing here.

Reductions are deterministic (fixed work-group trees, no atomics) and fused
into the loss kernel: a loss is one launch, two for big inputs."""

import math

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, empty
from . import dtypes
from .copy import contiguous, is_contiguous
from .meta import infer

aten = torch.ops.aten
_NONE, _MEAN, _SUM = 0, 1, 2  # torch's Reduction enum

# name: (forward expression, derivative d loss / d x), see cl/loss.cl for the operands
_LOSSES = {
    "mse": ("(x - y) * (x - y)", "(CT)2 * (x - y)"),
    "smooth_l1": ("(fabs(x - y) < p0 ? (CT)0.5 * (x - y) * (x - y) / p0 : fabs(x - y) - (CT)0.5 * p0)",
                  "((x - y) <= -p0 ? (CT)-1 : ((x - y) >= p0 ? (CT)1 : (x - y) / p0))"),
    "huber": ("(fabs(x - y) < p0 ? (CT)0.5 * (x - y) * (x - y) : p0 * (fabs(x - y) - (CT)0.5 * p0))",
              "((x - y) <= -p0 ? -p0 : ((x - y) >= p0 ? p0 : (x - y)))"),
    "bce": ("w * ((y - (CT)1) * CLAMP_LOG(log1p(-x)) - y * CLAMP_LOG(log(x)))",
            "w * (x - y) / fmax(((CT)1 - x) * x, (CT)1e-12)"),
    "bce_logits": ("w * (((CT)1 - y) * x - ((q - (CT)1) * y + (CT)1) * LOG_SIGMOID(x))", "(CT)0"),
}
_extra_source = "\n".join(f"LOSS({name}, {fwd}, {bwd})" for name, (fwd, bwd) in _LOSSES.items())
_kernels = {}
_ITEMS_PER_THREAD = 16



def _kernel(name, dtype, dev, signature):
    key = (name, dtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        defines = dict(dtypes.kernel_defines(dtype), LS=runtime.work_group_size(dev))
        k = runtime.get_kernel(("types.cl", "loss.cl"), defines, name, signature, dev,
                               extra_source=_extra_source)
        _kernels[key] = k
    return k


def _groups(n, ls):
    return max(1, min(256, -(-n // (ls * _ITEMS_PER_THREAD))))


def _operand(t, shape, dtype):
    """``t`` broadcast to ``shape`` as a contiguous ocl tensor of ``dtype``."""
    if tuple(t.shape) != tuple(shape):
        t = t.expand(shape)
    if t.dtype != dtype or not is_contiguous(t):
        t = contiguous(t, dtype)
    return t


def _partials(groups, ct, index, out):
    if groups == 1:
        return out
    return empty((2 * groups,), torch.float64 if ct == "double" else torch.float32, index)


def _finish(part, groups, mode, scale, out, tw, dev, dtype):
    """Combines the partials of a multi-group reduction into out (and total weight tw)."""
    if groups == 1:
        return
    ct = dtypes.compute(dtype)
    sc = dtypes.SCALAR_CHAR[ct]
    k = _kernel("loss_finish", dtype, dev, "Bii" + sc + "BiBii")
    ls = runtime.work_group_size(dev)
    k.launch((ls,), (ls,), (part._buf, groups, mode, dtypes.py_scalar(scale, ct), out._buf, out.storage_offset(),
                            (tw if tw is not None else out)._buf, tw.storage_offset() if tw is not None else 0, int(tw is not None)))


# ---------------------------------------------------------------- elementwise losses

def _elementwise_forward(name, meta_func, meta_args, x, y, reduction, w=None, q=None, p0=0.0):
    meta = infer(meta_func, meta_args)
    dtype, index = meta.dtype, x._index
    dev = runtime.device(index)
    ct = dtypes.compute(dtype)
    sc = dtypes.SCALAR_CHAR[ct]
    shape = torch.broadcast_shapes(x.shape, y.shape)
    x, y = _operand(x, shape, dtype), _operand(y, shape, dtype)
    flags = 0
    if w is not None:
        w, flags = _operand(w, shape, dtype), flags | 1
    if q is not None:
        q, flags = _operand(q, shape, dtype), flags | 2
    n = x.numel()
    operands = (x._buf, x.storage_offset(), y._buf, y.storage_offset(), (w if w is not None else x)._buf,
                w.storage_offset() if w is not None else 0, (q if q is not None else x)._buf,
                q.storage_offset() if q is not None else 0, n, flags, dtypes.py_scalar(p0, ct))
    sig = "BiBiBiBiii" + sc
    if reduction == _NONE:
        out = empty(shape, dtype, index)
        if n:
            ls = runtime.work_group_size(dev)
            _kernel(name + "_none", dtype, dev, "Bi" + sig).launch((n,), (ls,) if n >= ls else None,
                                                                     (out._buf, 0) + operands)
        return out
    out = empty((), dtype, index)
    ls = runtime.work_group_size(dev)
    groups = _groups(n, ls)
    scale = 1.0 if reduction == _SUM else (1.0 / n if n else math.nan)
    part = _partials(groups, ct, index, out)
    _kernel(name + "_reduce", dtype, dev, "Bi" + sc + "Bi" + sig).launch(
        (groups * ls,), (ls,), (part._buf, groups, dtypes.py_scalar(scale if groups == 1 else 1.0, ct),
                                out._buf, 0) + operands)
    _finish(part, groups, 0, scale, out, None, dev, dtype)
    return out


def _elementwise_backward(name, meta_func, meta_args, grad, x, y, reduction, w=None, p0=0.0):
    meta = infer(meta_func, meta_args)
    dtype, index = meta.dtype, x._index
    dev = runtime.device(index)
    ct = dtypes.compute(dtype)
    sc = dtypes.SCALAR_CHAR[ct]
    shape = tuple(x.shape)
    out = empty(shape, dtype, index)
    n = out.numel()
    if n == 0:
        return out
    x, y = _operand(x, shape, dtype), _operand(y, shape, dtype)
    flags = 0
    if w is not None:
        w, flags = _operand(w, shape, dtype), 1
    if grad.dim() == 0 or grad.numel() == 1 and reduction != _NONE:
        g, g_step = (grad if grad.dtype == dtype else contiguous(grad, dtype)), 0
    else:
        g, g_step = _operand(grad, shape, dtype), 1
    scale = 1.0 / n if reduction == _MEAN else 1.0
    ls = runtime.work_group_size(dev)
    _kernel(name + "_backward", dtype, dev, "BiBii" + sc + "BiBiBiBiii" + sc).launch(
        (n,), (ls,) if n >= ls else None,
        (out._buf, 0, g._buf, g.storage_offset(), g_step, dtypes.py_scalar(scale, ct),
         x._buf, x.storage_offset(), y._buf, y.storage_offset(), (w if w is not None else x)._buf,
         w.storage_offset() if w is not None else 0, x._buf, 0, n, flags, dtypes.py_scalar(p0, ct)))
    return out


@register(aten.mse_loss.default)
def mse_loss(x, target, reduction=_MEAN):
    return _elementwise_forward("mse", aten.mse_loss.default, (x, target, reduction), x, target, reduction)


@register(aten.mse_loss_backward.default)
def mse_loss_backward(grad, x, target, reduction):
    return _elementwise_backward("mse", aten.mse_loss_backward.default, (grad, x, target, reduction),
                                 grad, x, target, reduction)


@register(aten.smooth_l1_loss.default)
def smooth_l1_loss(x, target, reduction=_MEAN, beta=1.0):
    return _elementwise_forward("smooth_l1", aten.smooth_l1_loss.default, (x, target, reduction, beta), x, target,
                                reduction, p0=beta)


@register(aten.smooth_l1_loss_backward.default)
def smooth_l1_loss_backward(grad, x, target, reduction, beta):
    return _elementwise_backward("smooth_l1", aten.smooth_l1_loss_backward.default,
                                 (grad, x, target, reduction, beta), grad, x, target, reduction, p0=beta)


@register(aten.huber_loss.default)
def huber_loss(x, target, reduction=_MEAN, delta=1.0):
    return _elementwise_forward("huber", aten.huber_loss.default, (x, target, reduction, delta), x, target,
                                reduction, p0=delta)


@register(aten.huber_loss_backward.default)
def huber_loss_backward(grad, x, target, reduction, delta):
    return _elementwise_backward("huber", aten.huber_loss_backward.default, (grad, x, target, reduction, delta),
                                 grad, x, target, reduction, p0=delta)


@register(aten.binary_cross_entropy.default)
def binary_cross_entropy(x, target, weight=None, reduction=_MEAN):
    return _elementwise_forward("bce", aten.binary_cross_entropy.default, (x, target, weight, reduction),
                                x, target, reduction, w=weight)


@register(aten.binary_cross_entropy_backward.default)
def binary_cross_entropy_backward(grad, x, target, weight=None, reduction=_MEAN):
    return _elementwise_backward("bce", aten.binary_cross_entropy_backward.default,
                                 (grad, x, target, weight, reduction), grad, x, target, reduction, w=weight)


@register(aten.binary_cross_entropy_with_logits.default)
def binary_cross_entropy_with_logits(x, target, weight=None, pos_weight=None, reduction=_MEAN):
    return _elementwise_forward("bce_logits", aten.binary_cross_entropy_with_logits.default,
                                (x, target, weight, pos_weight, reduction), x, target, reduction, w=weight,
                                q=pos_weight)


# ---------------------------------------------------------------- nll_loss

def _nll_geometry(x):
    """(N, C, S) of an nll input: (C,), (N, C) or (N, C, d1, ...)."""
    if x.dim() == 1:
        return 1, x.shape[0], 1
    n, c = x.shape[0], x.shape[1]
    return n, c, math.prod(x.shape[2:])


def _nll_operands(x, target, weight):
    dtype = x.dtype
    x = x if is_contiguous(x) else contiguous(x)
    t = target if target.dtype == torch.int64 and is_contiguous(target) else contiguous(target, torch.int64)
    w = None
    if weight is not None:
        w = weight if weight.dtype == dtype and is_contiguous(weight) else contiguous(weight, dtype)
    return x, t, w


def _nll_forward(func, x, target, weight, reduction, ignore_index):
    out_meta, tw_meta = infer(func, (x, target, weight, reduction, ignore_index))
    dtype, index = x.dtype, x._index
    dev = runtime.device(index)
    ct = dtypes.compute(dtype)
    sc = dtypes.SCALAR_CHAR[ct]
    nb, c, s = _nll_geometry(x)
    x, t, w = _nll_operands(x, target, weight)
    n = nb * s
    flags = int(w is not None)
    operands = (x._buf, x.storage_offset(), t._buf, t.storage_offset(), (w if w is not None else x)._buf,
                w.storage_offset() if w is not None else 0, n, c, s, flags, int(ignore_index))
    sig = "BiBiBiiiiil"
    ls = runtime.work_group_size(dev)
    tw = empty((), dtype, index)
    if reduction == _NONE:
        out = empty(out_meta.shape, dtype, index)
        if n:
            _kernel("nll_none", dtype, dev, "Bi" + sig).launch((n,), (ls,) if n >= ls else None,
                                                                (out._buf, 0) + operands)
        tw.zero_()
        return out, tw
    out = empty((), dtype, index)
    groups = _groups(n, ls)
    mode = 1 if reduction == _MEAN else 0
    part = _partials(groups, ct, index, out)
    _kernel("nll_reduce", dtype, dev, "Bii" + sc + "BiBi" + sig).launch(
        (groups * ls,), (ls,), (part._buf, groups, mode, dtypes.py_scalar(1.0, ct), out._buf, 0, tw._buf, 0)
        + operands)
    _finish(part, groups, mode, 1.0, out, tw, dev, dtype)
    return out, tw


def _nll_backward(func, grad, x, target, weight, reduction, ignore_index, total_weight):
    meta = infer(func, (grad, x, target, weight, reduction, ignore_index, total_weight))
    dtype, index = x.dtype, x._index
    dev = runtime.device(index)
    out = empty(meta.shape, dtype, index)
    total = out.numel()
    if total == 0:
        return out
    nb, c, s = _nll_geometry(x)
    _, t, w = _nll_operands(x, target, weight)
    g = grad if grad.dtype == dtype and is_contiguous(grad) else contiguous(grad, dtype)
    g_step = 1 if reduction == _NONE else 0
    tw = total_weight if isinstance(total_weight, OclTensor) else g
    if tw.dtype != dtype:
        tw = contiguous(tw, dtype)
    ls = runtime.work_group_size(dev)
    _kernel("nll_backward", dtype, dev, "BiBiiBiiBiBiiiiil").launch(
        (total,), (ls,) if total >= ls else None,
        (out._buf, 0, g._buf, g.storage_offset(), g_step, tw._buf, tw.storage_offset(), int(reduction == _MEAN),
         t._buf, t.storage_offset(), (w if w is not None else g)._buf, w.storage_offset() if w is not None else 0,
         total, c, s, int(w is not None), int(ignore_index)))
    return out


@register(aten.nll_loss_forward.default)
def nll_loss_forward(x, target, weight, reduction, ignore_index):
    return _nll_forward(aten.nll_loss_forward.default, x, target, weight, reduction, ignore_index)


@register(aten.nll_loss2d_forward.default)
def nll_loss2d_forward(x, target, weight, reduction, ignore_index):
    return _nll_forward(aten.nll_loss2d_forward.default, x, target, weight, reduction, ignore_index)


@register(aten.nll_loss_backward.default)
def nll_loss_backward(grad, x, target, weight, reduction, ignore_index, total_weight):
    return _nll_backward(aten.nll_loss_backward.default, grad, x, target, weight, reduction, ignore_index,
                         total_weight)


@register(aten.nll_loss2d_backward.default)
def nll_loss2d_backward(grad, x, target, weight, reduction, ignore_index, total_weight):
    return _nll_backward(aten.nll_loss2d_backward.default, grad, x, target, weight, reduction, ignore_index,
                         total_weight)
