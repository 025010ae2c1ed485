"""Shape ops that move data: cat, stack, flip, roll, repeat, tril, triu.

cat and repeat are strided copies (pointwise "copy" into views of the
result); flip and the triangles are strided gathers on cl/index.cl."""

import torch

from ..torch.dispatch import register
from ..torch.tensor import alias, contiguous_strides, empty
from . import copy as _copy
from . import pointwise
from .index import gather_into, infer, kernel, vec8

aten = torch.ops.aten


def _narrow(t, dim, start, length):
    stride = t.stride()
    shape = list(t.shape)
    shape[dim] = length
    return alias(t, tuple(shape), stride, t.storage_offset() + start * stride[dim])


@register(aten.cat.default, aten.cat.out)
def cat(tensors, dim=0, *, out=None):
    """torch.cat: any dim, dtypes promoted, legacy empty 1-D tensors skipped."""
    meta = infer(aten.cat.default, (list(tensors), dim))
    index = next(t._index for t in tensors)
    if out is None:
        out = empty(meta.shape, meta.dtype, index, meta.stride())
    elif tuple(out.shape) != tuple(meta.shape):
        raise RuntimeError(f"ocl: cat cannot resize out= from {tuple(out.shape)} to {tuple(meta.shape)}")
    if out.dim() == 0 or out.numel() == 0:
        return out
    dim %= out.dim()
    start = 0
    for t in tensors:
        if t.dim() == 1 and t.shape[0] == 0 and out.dim() != 1:
            continue  # torch skips legacy (0,) tensors
        n = t.shape[dim]
        if n and t.numel():
            pointwise.run("copy", _narrow(out, dim, start, n), [t])
        start += n
    return out


@register(aten.stack.default, aten.stack.out)
def stack(tensors, dim=0, *, out=None):
    """torch.stack: cat of the tensors each unsqueezed at dim."""
    infer(aten.stack.default, (list(tensors), dim))
    nd = tensors[0].dim() + 1
    dim %= nd
    return cat([aten.unsqueeze.default(t, dim) for t in tensors], dim, out=out)


@register(aten.flip.default)
def flip(x, dims):
    """torch.flip: a copy read with the flipped dims' strides negated."""
    infer(aten.flip.default, (x, dims))
    out = empty(x.shape, x.dtype, x._index)
    if out.numel() == 0:
        return out
    strides = list(x.stride())
    offset = x.storage_offset()
    for d in {d % x.dim() for d in dims} if x.dim() else ():
        offset += (x.shape[d] - 1) * strides[d]
        strides[d] = -strides[d]
    return gather_into(out, x, strides, offset)


def _roll_dim(x, shift, dim):
    n = x.shape[dim]
    out = empty(x.shape, x.dtype, x._index)
    s = shift % n if n else 0
    if out.numel() == 0:
        return out
    if s == 0:
        pointwise.run("copy", out, [x])
        return out
    pointwise.run("copy", _narrow(out, dim, s, n - s), [_narrow(x, dim, 0, n - s)])
    pointwise.run("copy", _narrow(out, dim, 0, s), [_narrow(x, dim, n - s, s)])
    return out


@register(aten.roll.default)
def roll(x, shifts, dims=()):
    """torch.roll: two slice copies per rolled dim (the flattened tensor when dims is empty)."""
    infer(aten.roll.default, (x, shifts, dims))
    if not dims:
        flat = _copy.contiguous(x) if not _copy.is_contiguous(x) else x
        flat = alias(flat, (x.numel(),), (1,), flat.storage_offset())
        rolled = _roll_dim(flat, shifts[0], 0)
        return alias(rolled, tuple(x.shape), contiguous_strides(tuple(x.shape)), 0)
    out = x
    for shift, dim in zip(shifts, dims):
        out = _roll_dim(out, shift, dim % x.dim())
    return out if out is not x else _copy.clone(x)


@register(aten.repeat.default)
def repeat(x, repeats):
    """Tensor.repeat: one strided copy, the result viewed as (r0, s0, r1, s1, ...)."""
    meta = infer(aten.repeat.default, (x, repeats))
    out = empty(meta.shape, x.dtype, x._index)
    if out.numel() == 0:
        return out
    lead = len(repeats) - x.dim()
    sizes = (1,) * lead + tuple(x.shape)
    strides = (0,) * lead + tuple(x.stride())
    view_shape, src_strides = [], []
    for r, s, st in zip(repeats, sizes, strides):
        view_shape += [r, s]
        src_strides += [0, st]
    view_shape = tuple(view_shape)
    dst = alias(out, view_shape, contiguous_strides(view_shape), 0)
    src = alias(x, view_shape, tuple(src_strides), x.storage_offset())
    pointwise.run("copy", dst, [src])
    return out


def _triangle(x, diagonal, lower, out):
    if out.numel() == 0:
        return out
    rows, cols = x.shape[-2], x.shape[-1]
    # dims are not collapsed: the kernel reads row and column from the linear index
    n = out.numel()
    k = kernel("triangle", x.dtype, "BlBl" "lll" "i" "l" "i" "VVV", x._index)
    k.launch((n,), (256,) if n >= 256 else None, (
        out._buf, out.storage_offset(), x._buf, x.storage_offset(), rows, cols, diagonal, int(lower), n,
        x.dim(), vec8(x.shape), vec8(out.stride()), vec8(x.stride())))
    return out


def _make_triangle(func, lower, inplace):
    def impl(x, diagonal=0, *, out=None):
        if out is None:
            infer(func, (x, diagonal))
        if inplace:
            result = x
        elif out is not None:
            result = out
        else:
            result = empty(x.shape, x.dtype, x._index, _copy.dense_strides(x))
        return _triangle(x, diagonal, lower, result)
    return impl


for _f, _lower, _inplace in ((aten.tril.default, True, False), (aten.tril_.default, True, True),
                             (aten.tril.out, True, False), (aten.triu.default, False, False),
                             (aten.triu_.default, False, True), (aten.triu.out, False, False)):
    register(_f)(_make_triangle(_f, _lower, _inplace))
