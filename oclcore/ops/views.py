"""View ops: new sizes, strides and offset over the same device buffer.

The geometry of any view op comes from torch's meta kernel run on a meta
tensor with the input's exact geometry (storage offset included); the most
frequent views compute it directly to keep the dispatch path short."""

import math

import torch

from ..torch.dispatch import register
from ..torch.tensor import OclTensor, alias, contiguous_strides, empty, entry, rebind, wrap
from . import dtypes

aten = torch.ops.aten


def _meta_like(x):
    extent = 1
    for n, s in zip(x.shape, x.stride()):
        if n == 0:
            extent = 0
            break
        extent += (n - 1) * s
    base = torch.empty(x.storage_offset() + extent, dtype=x.dtype, device="meta")
    return base.as_strided(x.shape, x.stride(), x.storage_offset())


def _wrap(x, m):
    if isinstance(m, torch.Tensor):
        if m.dtype != x.dtype:  # view(dtype) reinterprets the same bytes
            return OclTensor(x._buf, tuple(m.shape), m.stride(), m.storage_offset(), m.dtype, x._index)
        return alias(x, tuple(m.shape), m.stride(), m.storage_offset())
    return type(m)(_wrap(x, e) for e in m)


def meta_view(func):
    """An implementation of view op ``func`` through its meta kernel."""
    def impl(x, *args, **kwargs):
        return _wrap(x, func(_meta_like(x), *args, **kwargs))
    return impl


for _f in (aten.as_strided.default, aten.diagonal.default, aten.unfold.default, aten.split.Tensor,
           aten.split_with_sizes.default, aten.unbind.int, aten.squeeze.dims, aten.narrow.default,
           aten.expand.default, aten.permute.default, aten.movedim.int, aten.view_as_real.default,
           aten.unsafe_split.Tensor, aten.unsafe_split_with_sizes.default, aten.chunk.default,
           aten.tensor_split.sections, aten.tensor_split.indices, aten.swapaxes.default,
           aten.view.dtype, aten.slice.Tensor, aten.select.int, aten.transpose.int,
           aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.default):
    register(_f)(meta_view(_f))


def _infer_size(shape, numel):
    """``shape`` with its -1 filled in for ``numel`` elements; None when torch's own checks must speak."""
    shape = list(shape)
    if shape.count(-1) > 1 or any(n < -1 for n in shape):
        return None
    if -1 in shape:
        i = shape.index(-1)
        known = 1
        for j, n in enumerate(shape):
            if j != i:
                known *= n
        if known == 0 or numel % known:
            return None
        shape[i] = numel // known
    return tuple(shape)


@register(aten.view.default, aten._unsafe_view.default)
def view(x, size):
    (dtype, old_shape, old_stride, index), buf, offset, _ = entry(x)
    numel = math.prod(old_shape)
    shape = _infer_size(size, numel)
    if shape is not None and numel and old_shape and math.prod(shape) == numel:
        if old_stride == contiguous_strides(old_shape):
            return wrap(buf, shape, contiguous_strides(shape), offset, dtype, index)
        stride = _view_strides(old_shape, old_stride, shape)
        if stride is not None:
            return wrap(buf, shape, stride, offset, dtype, index)
    return _wrap(x, aten.view.default(_meta_like(x), size))  # (and torch's errors)


def _view_strides(old_shape, old_stride, shape):
    """Strides of a view of ``shape`` over a tensor of ``old_shape``/``old_stride`` (the same
    positive number of elements), or None when no view exists: torch's computeStride. Each run of
    old dims that are contiguous with each other ("chunk") must be split or merged by new dims on
    its own."""
    stride = [0] * len(shape)
    view_d = len(shape) - 1
    base = old_stride[-1]
    chunk = view = 1
    for d in range(len(old_shape) - 1, -1, -1):
        chunk *= old_shape[d]
        if d == 0 or (old_shape[d - 1] != 1 and old_stride[d - 1] != chunk * base):
            while view_d >= 0 and (view < chunk or shape[view_d] == 1):
                stride[view_d] = view * base
                view *= shape[view_d]
                view_d -= 1
            if view != chunk:
                return None
            if d > 0:
                base = old_stride[d - 1]
                chunk = view = 1
    return tuple(stride) if view_d == -1 else None


@register(aten.t.default)
def t(x):
    (dtype, shape, stride, index), buf, offset, _ = entry(x)
    if len(shape) < 2:
        return wrap(buf, shape, stride, offset, dtype, index)
    if len(shape) > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {len(shape)}D")
    (a, b), (sa, sb) = shape, stride
    return wrap(buf, (b, a), (sb, sa), offset, dtype, index)


@register(aten.alias.default, aten.detach.default, aten.lift_fresh.default)
def same(x):
    (dtype, shape, stride, index), buf, offset, _ = entry(x)
    return wrap(buf, shape, stride, offset, dtype, index)


@register(aten.expand.default)
def expand(x, size, implicit=False):
    (dtype, xs, st, index), buf, offset, _ = entry(x)
    nd = len(size)
    lead = nd - len(xs)
    if lead < 0:
        return _wrap(x, aten.expand.default(_meta_like(x), size))
    shape, stride = [], []
    for d, n in enumerate(size):
        if d < lead:
            if n < 0:
                return _wrap(x, aten.expand.default(_meta_like(x), size))
            shape.append(n)
            stride.append(0)
        else:
            m = xs[d - lead]
            if n == -1 or n == m:
                shape.append(m)
                stride.append(st[d - lead])
            elif m == 1:
                shape.append(n)
                stride.append(0)
            else:
                return _wrap(x, aten.expand.default(_meta_like(x), size))
    return wrap(buf, tuple(shape), tuple(stride), offset, dtype, index)


@register(aten.unsqueeze.default)
def unsqueeze(x, dim):
    (dtype, shape, stride, index), buf, offset, _ = entry(x)
    nd = len(shape) + 1
    if not -nd <= dim < nd:
        return _wrap(x, aten.unsqueeze.default(_meta_like(x), dim))
    dim %= nd
    shape, stride = list(shape), list(stride)
    new_stride = stride[dim] * shape[dim] if dim < nd - 1 else 1
    shape.insert(dim, 1)
    stride.insert(dim, new_stride)
    return wrap(buf, tuple(shape), tuple(stride), offset, dtype, index)


@register(aten.permute.default)
def permute(x, dims):
    (dtype, shape, stride, index), buf, offset, _ = entry(x)
    nd = len(shape)
    if not all(-nd <= d < nd for d in dims):  # (torch's error)
        return _wrap(x, aten.permute.default(_meta_like(x), dims))
    dims = [d % nd if nd else d for d in dims]
    if sorted(dims) != list(range(nd)):
        return _wrap(x, aten.permute.default(_meta_like(x), dims))
    return wrap(buf, tuple(shape[d] for d in dims), tuple(stride[d] for d in dims), offset, dtype, index)


@register(aten.transpose.int)
def transpose(x, dim0, dim1):
    (dtype, shape, stride, index), buf, offset, _ = entry(x)
    nd = max(len(shape), 1)
    if not (-nd <= dim0 < nd and -nd <= dim1 < nd):
        return _wrap(x, aten.transpose.int(_meta_like(x), dim0, dim1))
    if not shape:
        return same(x)
    dim0 %= nd
    dim1 %= nd
    shape, stride = list(shape), list(stride)
    shape[dim0], shape[dim1] = shape[dim1], shape[dim0]
    stride[dim0], stride[dim1] = stride[dim1], stride[dim0]
    return wrap(buf, tuple(shape), tuple(stride), offset, dtype, index)


@register(aten.slice.Tensor)
def slice_(x, dim=0, start=None, end=None, step=1):
    (dtype, shape, stride, index), buf, offset, _ = entry(x)
    nd = len(shape)
    if nd == 0 or step is None or step <= 0 or not -nd <= dim < nd:
        return _wrap(x, aten.slice.Tensor(_meta_like(x), dim, start, end, step or 1))
    dim %= nd
    n = shape[dim]
    start = 0 if start is None else start
    end = n if end is None else end
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = min(max(start, 0), n)
    end = min(max(end, start), n)
    length = (end - start + step - 1) // step
    shape, stride = list(shape), list(stride)
    shape[dim] = length
    offset += start * stride[dim]
    stride[dim] *= step
    return wrap(buf, tuple(shape), tuple(stride), offset, dtype, index)


@register(aten.select.int)
def select(x, dim, index):
    (dtype, shape, stride, device), buf, offset, _ = entry(x)
    nd = len(shape)
    if nd == 0 or not -nd <= dim < nd:
        return _wrap(x, aten.select.int(_meta_like(x), dim, index))
    dim %= nd
    n = shape[dim]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {tuple(shape)} "
                         f"at dimension {dim}")
    index %= n
    shape, stride = list(shape), list(stride)
    offset += index * stride[dim]
    del shape[dim], stride[dim]
    return wrap(buf, tuple(shape), tuple(stride), offset, dtype, device)


def inplace_meta_view(func):
    """An implementation of in-place view op ``func`` (x itself takes the new geometry over its own
    buffer) through its meta kernel, which also checks the arguments."""
    def impl(x, *args, **kwargs):
        m = func(_meta_like(x), *args, **kwargs)
        return rebind(x, x._buf, tuple(m.shape), m.stride(), m.storage_offset())
    return impl


for _f in (aten.as_strided_.default, aten.transpose_.default, aten.swapaxes_.default,
           aten.swapdims_.default, aten.squeeze_.default, aten.squeeze_.dim, aten.squeeze_.dims,
           aten.unsqueeze_.default):
    register(_f)(inplace_meta_view(_f))


@register(aten.t_.default)
def t_(x):
    if x.dim() > 2:  # (torch's wording; the meta kernel raises an AssertionError)
        raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {x.dim()}D")
    v = t(x)
    return rebind(x, x._buf, tuple(v.shape), v.stride(), v.storage_offset())


@register(aten.set_.source_Tensor)
def set_(x, source):
    """``x.set_(source)``: x shares source's memory and takes its geometry."""
    if not isinstance(source, OclTensor) or source._index != x._index:
        raise RuntimeError(f"Expected a tensor on {x.device} for set_(), got one on {source.device}")
    if source.dtype != x.dtype:
        raise RuntimeError(f"Could not set tensor of type {dtypes.type_name(source.dtype).lower()} to a tensor "
                           f"of type {dtypes.type_name(x.dtype).lower()}")
    return rebind(x, source._buf, tuple(source.shape), source.stride(), source.storage_offset())


@register(aten.set_.default)
def set_empty(x):
    """``x.set_()``: x becomes an empty one-dimensional tensor."""
    return rebind(x, empty((0,), x.dtype, x._index)._buf, (0,), (1,), 0)
