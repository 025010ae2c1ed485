"""torch.unique (without dim): the stable sort (sort.py), the starts of runs of equal values,
then the run heads, each element's run (inverse) and the run lengths (counts). The number of
distinct values sizes the result, so it is read back, as torch does. NaNs are distinct from
one another, as on torch's CPU and CUDA paths; the result is sorted whatever ``sorted`` says
(torch's CPU and CUDA kernels sort as well). torch.unique_consecutive is the same without the
sort, along a dim too (runs of equal slices)."""

import torch

from ..torch.dispatch import register
from .sort import sort_along

aten = torch.ops.aten


@register(aten._unique2.default)
def unique(x, sorted=True, return_inverse=False, return_counts=False):
    """(distinct values, inverse or an empty tensor, counts or an empty tensor)."""
    def longs(shape):
        return aten.empty.memory_format(shape, dtype=torch.int64, device=x.device)

    flat = aten.reshape.default(x, [-1])
    none = longs([0])
    n = flat.numel()
    if n == 0:
        return aten.clone.default(flat), longs(list(x.shape)) if return_inverse else none, none
    values, order = sort_along(flat, 0, False)
    starts = _starts(aten.ne.Tensor(aten.slice.Tensor(values, 0, 1), aten.slice.Tensor(values, 0, 0, n - 1)))
    heads = aten.masked_select.default(values, starts)
    run, counts = _runs(starts, heads.shape[0], return_inverse or return_counts, return_counts)
    inverse = none
    if return_inverse:
        inverse = aten.scatter.src(longs([n]), 0, order, run)
        inverse = aten.reshape.default(inverse, list(x.shape))
    return heads, inverse, counts if return_counts else none


def _starts(differs):
    """Where runs start: True first, then ``differs`` (element i + 1 differs from element i)."""
    return aten.cat.default([aten.ones.default([1], dtype=torch.bool, device=differs.device), differs])


def _runs(starts, runs, need_run, need_counts):
    """(each element's run index or None, the run lengths or None) from the run starts."""
    run = aten.sub.Scalar(aten.cumsum.default(starts, 0, dtype=torch.int64), 1) if need_run else None
    counts = None
    if need_counts:
        counts = aten.index_add_.default(aten.zeros.default([runs], dtype=torch.int64, device=starts.device), 0, run,
                                         aten.ones.default([starts.shape[0]], dtype=torch.int64, device=starts.device))
    return run, counts


@register(aten.unique_consecutive.default)
def unique_consecutive(x, return_inverse=False, return_counts=False, dim=None):
    """(the first element (or slice along ``dim``) of each run of equal ones, each element's run
    or an empty tensor, the run lengths or an empty tensor)."""
    none = aten.empty.memory_format([0], dtype=torch.int64, device=x.device)
    if dim is None:
        flat = aten.reshape.default(x, [-1])
        n = flat.numel()
        if n == 0:
            inverse = aten.empty.memory_format(list(x.shape), dtype=torch.int64, device=x.device)
            return aten.clone.default(flat), inverse if return_inverse else none, none
        differs = aten.ne.Tensor(aten.slice.Tensor(flat, 0, 1), aten.slice.Tensor(flat, 0, 0, n - 1))
        starts = _starts(differs)
        heads = aten.masked_select.default(flat, starts)
        run, counts = _runs(starts, heads.shape[0], return_inverse or return_counts, return_counts)
        inverse = aten.reshape.default(run, list(x.shape)) if return_inverse else none
        return heads, inverse, counts if return_counts else none
    if x.dim() == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    d = dim % x.dim() if -x.dim() <= dim < x.dim() else dim
    if not 0 <= d < x.dim():
        raise IndexError(f"Dimension out of range (expected to be in range of [{-x.dim()}, {x.dim() - 1}], "
                         f"but got {dim})")
    n = x.shape[d]
    if n == 0 or x.numel() == 0:
        return _empty_along_dim(x, return_inverse, return_counts, d)
    rows = aten.reshape.default(aten.movedim.int(x, d, 0), [n, -1])
    differs = aten.any.dim(aten.ne.Tensor(aten.slice.Tensor(rows, 0, 1), aten.slice.Tensor(rows, 0, 0, n - 1)), 1)
    starts = _starts(differs)
    first = aten.reshape.default(aten.nonzero.default(starts), [-1])
    heads = aten.index_select.default(x, d, first)
    run, counts = _runs(starts, first.shape[0], return_inverse or return_counts, return_counts)
    return heads, run if return_inverse else none, counts if return_counts else none


def _empty_along_dim(x, return_inverse, return_counts, d):
    """The empty cases along a dim, shaped as torch's CPU kernel shapes them."""
    cpu = torch.ops.aten.unique_consecutive.default(torch.empty(x.shape, dtype=x.dtype), return_inverse,
                                                    return_counts, d)
    return tuple(aten.empty.memory_format(list(t.shape), dtype=t.dtype, device=x.device) for t in cpu)
