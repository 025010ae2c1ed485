"""Padding: constant_pad_nd (any rank, negative pads crop), reflection and
replication padding in 1, 2 and 3 dims, and the reflection/replication
backward ops, on cl/pad.cl. (Circular padding decomposes into slices and
copies; constant padding's backward is constant_pad_nd with negated pads.)"""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import empty
from . import copy as _copy
from . import dtypes
from .elementwise import scalar_value
from .meta import infer

aten = torch.ops.aten

_CONSTANT, _REFLECT, _REPLICATE = 0, 1, 2
_MAX_RANK = 8
_kernels = {}


def _kernel(name, dtype, dev):
    key = (name, dtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        dtypes.check(dtype, "padding")
        defines = dtypes.kernel_defines(dtype, store="ST")
        ct = defines["CT"]
        sig = "BiBiVVVVVii" + dtypes.SCALAR_CHAR[ct] + "i" if name == "pad_forward" else "BiBiiiiiiii"
        k = _kernels[key] = runtime.get_kernel(("types.cl", "pad.cl"), defines, name, sig, dev)
    return k


def _vec(values):
    return tuple(values) + (0,) * (8 - len(values))


def _before(rank, pad):
    """Padding before each dim from torch's (last-dim-first, before/after) pad list."""
    before = [0] * rank
    for j in range(len(pad) // 2):
        before[rank - 1 - j] = pad[2 * j]
    return before


def pad_into(out, x, pad, mode, value=0):
    """Writes ``x`` padded by ``pad`` (torch's order) into ``out``."""
    if out.numel() == 0:
        return out
    rank = x.dim()
    if rank > _MAX_RANK:
        raise RuntimeError(f"ocl: padding supports at most {_MAX_RANK} dims, got {rank}")
    k = _kernel("pad_forward", x.dtype, runtime.device(x._index))
    value = dtypes.py_scalar(scalar_value(value), dtypes.compute(x.dtype))
    n = out.numel()
    k.launch((n,), (64,) if n >= 64 else None, (
        out._buf, out.storage_offset(), x._buf, x.storage_offset(), _vec(out.shape), _vec(x.shape),
        _vec(x.stride()), _vec(out.stride()), _vec(_before(rank, pad)), rank, mode, value, n))
    return out


def _new(meta, index):
    return empty(meta.shape, meta.dtype, index, meta.stride())


@register(aten.constant_pad_nd.default)
def constant_pad_nd(x, pad, value=0):
    out = _new(infer(aten.constant_pad_nd.default, (x, pad, value)), x._index)
    return pad_into(out, x, pad, _CONSTANT, value)


def _forward(func, mode):
    def impl(x, padding):
        out = _new(infer(func, (x, padding)), x._index)
        return pad_into(out, x, padding, mode)
    impl.__doc__ = f"{func.name()} on ocl."
    return impl


def _backward(func, mode):
    def impl(gy, x, padding):
        meta = infer(func, (gy, x, padding))
        g = gy if _copy.is_contiguous(gy) else _copy.contiguous(gy)
        k = _kernel("pad_backward_axis", gy.dtype, runtime.device(gy._index))
        shape = list(gy.shape)
        rank = len(shape)
        for j in range(len(padding) // 2):
            d = rank - 1 - j
            outer = 1
            for s in shape[:d]:
                outer *= s
            inner = 1
            for s in shape[d + 1:]:
                inner *= s
            size_in = x.shape[d]
            shape[d] = size_in
            dst = empty(shape, gy.dtype, gy._index)
            n = dst.numel()
            if n:
                k.launch((n,), (64,) if n >= 64 else None, (
                    dst._buf, dst.storage_offset(), g._buf, g.storage_offset(), outer, g.shape[d], size_in,
                    inner, padding[2 * j], mode, n))
            g = dst
        if g.stride() != meta.stride():
            out = _new(meta, gy._index)
            out.copy_(g)
            return out
        return g
    impl.__doc__ = f"{func.name()} on ocl."
    return impl


for _dims in (1, 2, 3):
    for _name, _mode in (("reflection", _REFLECT), ("replication", _REPLICATE)):
        _f = getattr(aten, f"{_name}_pad{_dims}d").default
        _b = getattr(aten, f"{_name}_pad{_dims}d_backward").default
        register(_f)(_forward(_f, _mode))
        register(_b)(_backward(_b, _mode))
