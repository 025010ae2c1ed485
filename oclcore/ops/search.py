"""torch.searchsorted and torch.bucketize: a binary search per value (cl/sort.cl), with torch's
comparisons, sorter and left/right sides."""

import torch

from ..torch.dispatch import register
from ..torch.tensor import empty
from . import copy as _copy
from .index import kernel
from .meta import infer

aten = torch.ops.aten


def _dense(t, dtype):
    """``t`` as a contiguous tensor of ``dtype`` (itself when it already is one)."""
    return t if t.dtype == dtype and _copy.is_contiguous(t) else _copy.contiguous(t, dtype)


@register(aten.searchsorted.Tensor)
def searchsorted(seq, x, *, out_int32=False, right=False, side=None, sorter=None):
    """torch.searchsorted(sorted_sequence, values): int64 (or int32) insertion positions."""
    meta = infer(aten.searchsorted.Tensor, (seq, x),
                 dict(out_int32=out_int32, right=right, side=side, sorter=sorter))
    dtype = torch.promote_types(seq.dtype, x.dtype)
    out = empty(tuple(meta.shape), meta.dtype, x._index)
    n = x.numel()
    if n == 0:
        return out
    seq, values = _dense(seq, dtype), _dense(x, dtype)
    order = _dense(sorter, torch.int64) if sorter is not None else values
    L = seq.shape[-1] if seq.dim() else 1
    inner = x.shape[-1] if x.dim() else 1
    k = kernel("search_sorted", dtype, "BliBlBlBlilliil", x._index)
    k.launch(((n + 63) // 64 * 64,), (64,),
             (out._buf, 0, int(out_int32), seq._buf, seq.storage_offset(), values._buf,
              values.storage_offset(), order._buf, order.storage_offset(), int(sorter is not None), L,
              inner, int(seq.dim() <= 1), int(right or side == "right"), n))
    return out


@register(aten.searchsorted.Scalar)
def searchsorted_scalar(seq, value, *, out_int32=False, right=False, side=None, sorter=None):
    """torch.searchsorted with a Python number as the value: a 0-dim result."""
    x = aten.scalar_tensor.default(value, dtype=torch.result_type(seq, value), device=seq.device)
    return searchsorted(seq, x, out_int32=out_int32, right=right, side=side, sorter=sorter)


@register(aten.bucketize.Tensor)
def bucketize(x, boundaries, *, out_int32=False, right=False):
    """torch.bucketize(values, boundaries): searchsorted on 1-D boundaries."""
    if boundaries.dim() != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.dim()})")
    return searchsorted(boundaries, x, out_int32=out_int32, right=right)


@register(aten.bucketize.Scalar)
def bucketize_scalar(value, boundaries, *, out_int32=False, right=False):
    """torch.bucketize with a Python number as the value."""
    x = aten.scalar_tensor.default(value, dtype=torch.result_type(boundaries, value), device=boundaries.device)
    return bucketize(x, boundaries, out_int32=out_int32, right=right)
