"""Filling and creating tensors: fill_, zero_, full_like, new_empty and its kin, arange,
linspace, eye, randperm, resize_ (the aten ops torch's factories call on ocl)."""

import math
import warnings

import torch

from .. import runtime
from ..torch.dispatch import register, unregistered
from ..torch.tensor import OclTensor, contiguous_strides, empty, rebind, resize_out, storage_bytes
from . import pointwise
from .copy import dense_strides
from .meta import infer
from .random import randperm_into

aten = torch.ops.aten


@register(aten.fill_.Scalar)
def fill_(x, value):
    return pointwise.run("fill", x, [value])


@register(aten.fill_.Tensor)
def fill_tensor_(x, value):
    if value.dim() != 0:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value.dim()} dimensions.")
    if isinstance(value, OclTensor):
        return pointwise.run("copy", x, [value])
    return fill_(x, value.item())


@register(aten.fill.Scalar)
def fill(x, value):
    return fill_(empty(x.shape, x.dtype, x._index, x.stride()), value)


@register(aten.zero_.default)
def zero_(x):
    return fill_(x, 0)


@register(aten.full_like.default)
def full_like(x, fill_value, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    index = x._index
    if device is not None:
        device = torch.device(device)
        if device.type != "ocl":
            return torch.full(x.shape, fill_value, dtype=dtype or x.dtype, device=device)
        index = x._index if device.index is None else device.index
    if memory_format in (None, torch.preserve_format):
        stride = dense_strides(x)
    elif memory_format is torch.channels_last and x.dim() == 4:
        n, c, h, w = x.shape
        stride = (h * w * c, 1, w * c, c)
    else:
        stride = None
    return fill_(empty(x.shape, dtype or x.dtype, index, stride), fill_value)


@register(aten.zeros_like.default)
def zeros_like(x, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    # (torch's decomposition, registered to skip the detour)
    return full_like(x, False if (dtype or x.dtype) == torch.bool else 0, dtype, layout, device, pin_memory,
                     memory_format)


@register(aten.ones_like.default)
def ones_like(x, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return full_like(x, True if (dtype or x.dtype) == torch.bool else 1, dtype, layout, device, pin_memory,
                     memory_format)


@register(aten.empty_like.default)
def empty_like(x, **kwargs):
    """torch's empty_like: the layout its meta kernel gives (preserve_format keeps a dense input's
    strides); other devices and layouts, and a device without index, go the way of unregistered ops."""
    device, layout = kwargs.get("device"), kwargs.get("layout")
    index = x._index
    if device is not None:
        device = torch.device(device)
        index = device.index if device.type == "ocl" else None
    if index is None or layout not in (None, torch.strided) or kwargs.get("pin_memory"):
        return unregistered(aten.empty_like.default, (x,), kwargs)
    meta = infer(aten.empty_like.default, (x,), {"dtype": kwargs.get("dtype"),
                                                 "memory_format": kwargs.get("memory_format")})
    return empty(meta.shape, meta.dtype, index, meta.stride())


def _new_index(x, size, stride, device, layout, pin_memory):
    """The device index of ``x.new_*(...)``'s result, or None where the way of unregistered ops
    must make it: another device, a device without index, another layout, pinned memory, and
    negative sizes or strides (torch's errors)."""
    if layout not in (None, torch.strided) or pin_memory or any(n < 0 for n in size) or (
            stride is not None and any(s < 0 for s in stride)):
        return None
    if device is None:
        return x._index
    device = torch.device(device)
    return device.index if device.type == "ocl" else None


def _given(**kwargs):
    return {k: v for k, v in kwargs.items() if v is not None}


@register(aten.new_empty.default)
def new_empty(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
    index = _new_index(x, size, None, device, layout, pin_memory)
    if index is None:
        return unregistered(aten.new_empty.default, (x, size),
                            _given(dtype=dtype, layout=layout, device=device, pin_memory=pin_memory))
    return empty(tuple(size), dtype or x.dtype, index)


@register(aten.new_empty_strided.default)
def new_empty_strided(x, size, stride, *, dtype=None, layout=None, device=None, pin_memory=None):
    index = _new_index(x, size, stride, device, layout, pin_memory)
    if index is None or len(size) != len(stride):
        return unregistered(aten.new_empty_strided.default, (x, size, stride),
                            _given(dtype=dtype, layout=layout, device=device, pin_memory=pin_memory))
    return empty(tuple(size), dtype or x.dtype, index, tuple(stride))


@register(aten.new_full.default)
def new_full(x, size, fill_value, *, dtype=None, layout=None, device=None, pin_memory=None):
    index = _new_index(x, size, None, device, layout, pin_memory)
    if index is None:
        return unregistered(aten.new_full.default, (x, size, fill_value),
                            _given(dtype=dtype, layout=layout, device=device, pin_memory=pin_memory))
    return fill_(empty(tuple(size), dtype or x.dtype, index), fill_value)


def _new_filled(func, value):
    """x.new_zeros / x.new_ones: new_full with ``value`` (as a bool for bool results)."""
    def impl(x, size, *, dtype=None, layout=None, device=None, pin_memory=None):
        index = _new_index(x, size, None, device, layout, pin_memory)
        if index is None:
            return unregistered(func, (x, size), _given(dtype=dtype, layout=layout, device=device,
                                                        pin_memory=pin_memory))
        t = empty(tuple(size), dtype or x.dtype, index)
        return fill_(t, bool(value) if t.dtype == torch.bool else value)
    return impl


register(aten.new_zeros.default)(_new_filled(aten.new_zeros.default, 0))
register(aten.new_ones.default)(_new_filled(aten.new_ones.default, 1))


@register(aten.resize_.default)
def resize_(x, size, memory_format=None):
    """Tensor.resize_: x takes ``size`` (contiguous, or channels-last by ``memory_format``) over
    its own data, which keeps its elements; a buffer too small is replaced by a larger copy."""
    size = tuple(int(n) for n in size)
    if any(n < 0 for n in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {list(size)}")
    if memory_format in (torch.channels_last, torch.channels_last_3d) and len(size) in (4, 5):
        stride = infer(aten.empty.memory_format, (size,), {"memory_format": memory_format, "device": "meta"}).stride()
    else:
        stride = contiguous_strides(size)
    item = x.dtype.itemsize
    need = (x.storage_offset() * item + storage_bytes(size, stride, item)) if math.prod(size) else 0
    buf = x._buf
    if need > buf.nbytes:
        grown = runtime.device(x._index).alloc(need)
        if buf.nbytes:
            buf.copy_to(grown, buf.nbytes)
        buf = grown
    return rebind(x, buf, size, stride, x.storage_offset())


@register(aten.resize_as_.default)
def resize_as_(x, template, *, memory_format=None):
    """Tensor.resize_as_: resize_ to the template's shape."""
    return resize_(x, template.shape, memory_format)


@register(aten.arange.start_out)
def arange_out(start, end, step=1, *, out):
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (step > 0 and start > end) or (step < 0 and start < end):
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    if out.dtype.is_floating_point or any(isinstance(v, float) for v in (start, end, step)):
        n = math.ceil((end - start) / step)
    else:
        n = (end - start + step - (1 if step > 0 else -1)) // step
    n = max(int(n), 0)
    if out.numel() != n:  # (torch resizes by element count: an out of shape (n, 1) keeps it)
        if out.numel():
            warnings.warn(f"The number of elements in the out tensor of shape {list(out.shape)} is {out.numel()} "
                          f"which does not match the computed number of elements {n}. Note that this may occur "
                          f"as a result of rounding error. The out tensor will be resized to a tensor of shape "
                          f"({n},).", UserWarning, stacklevel=3)
        resize_out(out, (n,), warn=False)
    return pointwise.run("arange", out, [0], (step, start))


@register(aten.arange.out)
def arange_end_out(end, *, out):
    return arange_out(0, end, 1, out=out)


@register(aten.linspace.out)
def linspace_out(start, end, steps, *, out):
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    if out.numel() != steps:
        resize_out(out, (steps,), warn=False)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    if steps == 1:
        return fill_(out, start)
    return pointwise.run("linspace", out, [0], (start, end, step))


@register(aten.eye.m_out)
def eye_m_out(n, m, *, out):
    if n < 0 or m < 0:
        raise RuntimeError(f"n must be greater or equal to 0, got {min(n, m)}")
    resize_out(out, (n, m), warn=False)
    return pointwise.run("eye", out, [0], (m,)) if m else out


@register(aten.eye.out)
def eye_out(n, *, out):
    return eye_m_out(n, n, out=out)


@register(aten.randperm.generator_out)
def randperm_out(n, *, generator=None, out):
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    resize_out(out, (n,), warn=False)
    return randperm_into(out, n, generator)
