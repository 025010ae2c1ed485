"""Dropout (aten.native_dropout / native_dropout_backward, what nn.Dropout and
F.dropout call in training) on cl/dropout.cl.

The mask comes from Philox-4x32-10 keyed by the device generator's seed
(oclcore.ops.random.generator), at counters reserved with next_offset: the
same seed gives the same masks, and successive calls get fresh counters."""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import empty
from . import dtypes, pointwise
from .copy import contiguous, is_contiguous
from .meta import infer
from .random import generator

aten = torch.ops.aten
_PER_ITEM = 4  # elements decided by one Philox call (four 32-bit words)
_kernels = {}


def _kernel(name, dtype, dev, signature):
    key = (name, dtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        defines = dict(dtypes.kernel_defines(dtype), IDX="int")
        k = runtime.get_kernel(("types.cl", "random.cl", "dropout.cl"), defines, name, signature, dev)
        _kernels[key] = k
    return k


def _check_dtype(x):
    if not x.dtype.is_floating_point or not dtypes.supported(x.dtype):
        raise RuntimeError(f"\"native_dropout\" not implemented for '{dtypes.type_name(x.dtype)}'")


@register(aten.native_dropout.default)
def native_dropout(x, p, train):
    """(output, bool mask): elements kept with probability 1 - p and scaled by 1 / (1 - p)."""
    infer(aten.native_dropout.default, (x, p, train))
    mask = empty(x.shape, torch.bool, x._index)
    if train is False:
        pointwise.run("fill", mask, [1])
        out = empty(x.shape, x.dtype, x._index)
        pointwise.run("copy", out, [x])
        return out, mask
    _check_dtype(x)
    n = x.numel()
    out = empty(x.shape, x.dtype, x._index)
    if n == 0:
        return out, mask
    src = x if is_contiguous(x) else contiguous(x)
    dev = runtime.device(x._index)
    ct = dtypes.compute(x.dtype)
    items = -(-n // _PER_ITEM)
    gen = generator(x._index)
    seed = gen.seed_value
    base = gen.next_offset(items)
    scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
    sc = dtypes.SCALAR_CHAR[ct]
    k = _kernel("dropout_forward", x.dtype, dev, "BiBiBiiIIL" + sc + sc)
    k.launch((items,), (64,) if items >= 64 else None,
             (out._buf, 0, mask._buf, 0, src._buf, src.storage_offset(), n, seed & 0xFFFFFFFF,
              (seed >> 32) & 0xFFFFFFFF, base, dtypes.py_scalar(p, ct), dtypes.py_scalar(scale, ct)))
    return out, mask


@register(aten.native_dropout_backward.default)
def native_dropout_backward(grad, mask, scale):
    """grad * mask * scale."""
    meta = infer(aten.native_dropout_backward.default, (grad, mask, scale))
    out = empty(meta.shape, grad.dtype, grad._index)
    n = out.numel()
    if n == 0:
        return out
    _check_dtype(grad)
    g = grad if is_contiguous(grad) else contiguous(grad)
    m = mask if is_contiguous(mask) else contiguous(mask)
    ct = dtypes.compute(grad.dtype)
    k = _kernel("dropout_backward", grad.dtype, runtime.device(grad._index), "BiBiBii" + dtypes.SCALAR_CHAR[ct])
    k.launch((n,), (256,) if n >= 256 else None,
             (out._buf, 0, g._buf, g.storage_offset(), m._buf, m.storage_offset(), n, dtypes.py_scalar(scale, ct)))
    return out
