"""Moving data: host <-> device, between devices, between dtypes and layouts."""

import torch

from ..torch.dispatch import register
from ..torch.tensor import OclTensor, contiguous_strides, empty
from . import pointwise
from .device_errors import check_index_errors
from .meta import check_overlap, infer

aten = torch.ops.aten


def is_contiguous(t):
    """True when ``t`` is row-major contiguous (size-1 dims may have any stride)."""
    expected = 1
    for n, s in zip(reversed(t.shape), reversed(t.stride())):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def dense_strides(t):
    """Strides that keep ``t``'s dim order (as torch's preserve_format) if it is dense and
    non-overlapping, else contiguous strides."""
    size, stride = tuple(t.shape), t.stride()
    contiguous = contiguous_strides(size)
    if stride == contiguous:  # the common case, and what the general rule below gives for it
        return contiguous
    order = sorted(range(len(size)), key=lambda d: (stride[d], size[d]), reverse=True)
    expected = 1
    for d in reversed(order):
        if size[d] != 1 and stride[d] != expected:
            return contiguous
        expected *= size[d]
    out = [0] * len(size)
    acc = 1
    for d in reversed(order):
        out[d] = acc
        acc *= max(size[d], 1)
    return tuple(out)


def to_cpu(t):
    """A CPU tensor with ``t``'s values (waits for the device; raises an out-of-range index that a
    kernel met since the last check, as torch's CUDA device-side asserts surface at a sync)."""
    check_index_errors(t._index)
    if not is_contiguous(t):
        t = contiguous(t)
    out = torch.empty(t.shape, dtype=t.dtype)
    if out.numel():
        t._buf.read(out, t.storage_offset() * t.element_size())
    return out


def contiguous(t, dtype=None):
    """A row-major contiguous copy of ocl tensor ``t`` (optionally converted)."""
    out = empty(t.shape, dtype or t.dtype, t._index)
    pointwise.run("copy", out, [t])
    return out


def from_cpu(src, index, dtype=None, stride=None):
    """An ocl tensor holding CPU tensor ``src`` (converted to ``dtype``)."""
    if dtype is not None and src.dtype != dtype:
        src = src.to(dtype)
    out = empty(src.shape, src.dtype, index, stride)
    write_from_cpu(out, src)
    return out


def write_from_cpu(dst, src):
    """Copies CPU tensor ``src`` (broadcast and converted to dst's shape and dtype) into ocl ``dst``."""
    if dst.numel() == 0:
        return dst
    src = src.to(dst.dtype).expand(dst.shape)
    if is_contiguous(dst):
        dst._buf.write(src.contiguous(), dst.storage_offset() * dst.element_size())
        return dst
    if dst.stride() == dense_strides(dst) and src.stride() != dst.stride():
        # dense but permuted (e.g. channels-last): lay the host data out the same way
        host = torch.empty_strided(dst.shape, dst.stride(), dtype=dst.dtype)
        host.copy_(src)
        flat = host.as_strided((host.numel(),), (1,))
        staging = empty((dst.numel(),), dst.dtype, dst._index)
        staging._buf.write(flat.contiguous())
        pointwise.run("copy", dst, [OclTensor(staging._buf, dst.shape, dst.stride(), 0, dst.dtype, dst._index)])
        return dst
    staging = empty(dst.shape, dst.dtype, dst._index)
    staging._buf.write(src.contiguous())
    pointwise.run("copy", dst, [staging])
    return dst


def copy_into(dst, src):
    """``dst.copy_(src)`` for any mix of ocl and CPU tensors."""
    if isinstance(dst, OclTensor):
        if isinstance(src, OclTensor):
            if src._index == dst._index:
                if src is dst:
                    return dst
                infer(aten.copy_.default, (dst, src))
                check_overlap(dst, [src])
                pointwise.run("copy", dst, [src])
            else:
                write_from_cpu(dst, to_cpu(src))
        else:
            check_overlap(dst, ())
            write_from_cpu(dst, src)
        return dst
    # dst on the CPU, src on ocl
    dst.copy_(to_cpu(src))
    return dst


@register(aten.copy_.default)
def copy_(dst, src, non_blocking=False):
    if src.dim() > dst.dim() or any(s not in (1, d) for s, d in zip(reversed(src.shape), reversed(dst.shape))):
        raise RuntimeError(f"The size of tensor a ({tuple(dst.shape)}) must match the size of tensor b "
                           f"({tuple(src.shape)}) for copy_: src is not broadcastable to dst")
    return copy_into(dst, src)


@register(torch.ops.prims.copy_to.default)
def copy_to(dst, src):
    """prims.copy_to (torch's decompositions of the *_scatter ops end in it): copy_ by another name."""
    return copy_(dst, src)


@register(aten.copy.default)
def copy(x, src, non_blocking=False):
    """The functional copy_: a new tensor laid out like ``x`` holding ``src`` (broadcast, converted)."""
    return copy_(empty(x.shape, x.dtype, x._index, dense_strides(x)), src)


@register(aten.as_strided_scatter.default)
def as_strided_scatter(x, src, size, stride, storage_offset=None):
    """A clone of ``x`` whose ``as_strided(size, stride, storage_offset)`` view holds ``src``
    (torch's definition; functionalization writes in-place updates of views this way)."""
    out = clone(x)
    copy_(aten.as_strided.default(out, size, stride, storage_offset), src)
    return out


@register(aten._copy_from.default)
def _copy_from(src, dst, non_blocking=False):
    return copy_into(dst, src)


@register(aten._copy_from_and_resize.default)
def _copy_from_and_resize(src, dst):
    return copy_into(dst, src)


@register(aten._to_copy.default)
def _to_copy(x, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
             memory_format=None):
    dtype = dtype or x.dtype
    device = torch.device(device) if device is not None else x.device
    if device.type == "cpu":
        out = to_cpu(x)
        if out.dtype != dtype:
            out = out.to(dtype)
        if memory_format is torch.channels_last and out.dim() == 4:
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if device.type != "ocl":
        return to_cpu(x).to(device=device, dtype=dtype)
    index = device.index if device.index is not None else x._index
    if memory_format is torch.channels_last and x.dim() == 4:
        n, c, h, w = x.shape
        stride = (h * w * c, 1, w * c, c)
    elif memory_format is torch.contiguous_format:
        stride = None
    else:
        stride = dense_strides(x)
    out = empty(x.shape, dtype, index, stride)
    if index == x._index:
        pointwise.run("copy", out, [x])
    else:
        write_from_cpu(out, to_cpu(x))
    return out


@register(aten._local_scalar_dense.default)
def _local_scalar_dense(x):
    return to_cpu(x).item()


@register(aten.clone.default)
def clone(x, memory_format=None):
    if memory_format is torch.channels_last and x.dim() == 4:
        n, c, h, w = x.shape
        stride = (h * w * c, 1, w * c, c)
    elif memory_format is torch.contiguous_format:
        stride = None
    else:
        stride = dense_strides(x)
    out = empty(x.shape, x.dtype, x._index, stride)
    pointwise.run("copy", out, [x])
    return out


@register(aten.contiguous.default)
def _contiguous(x, memory_format=torch.contiguous_format):
    return clone(x, memory_format)
