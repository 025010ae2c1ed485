"""Order statistics along a dimension: kthvalue, median and nanmedian, read from the stable row
sort (sort.py). NaN sorts above every number there, so the k-th value counts NaN as the largest
(as torch's kthvalue does), median gives a row's first NaN where it has one, and nanmedian skips
them. Ties may report another index than torch's CPU kernel; torch leaves that choice open."""

import torch

from ..torch.dispatch import register
from .meta import infer
from .sort import sort_along

aten = torch.ops.aten


def _select(x, dim, keepdim, position):
    """(values, indices) of ``x`` sorted along ``dim`` at ``position``: an int, or an int64
    tensor of x's shape with ``dim`` of size 1 (a position per row)."""
    values, indices = sort_along(x, dim, False)
    if x.dim() == 0:
        return values, indices
    dim %= x.dim()
    if isinstance(position, int):
        shape = list(x.shape)
        shape[dim] = 1
        position = aten.full.default(shape, position, dtype=torch.int64, device=x.device)
    values = aten.gather.default(values, dim, position)
    indices = aten.gather.default(indices, dim, position)
    if not keepdim:
        values, indices = aten.squeeze.dim(values, dim), aten.squeeze.dim(indices, dim)
    return values, indices


def _median_position(x, dim, skip_nan):
    """Where a row's (nan)median sits in its sorted order: the lower middle, or for median the
    first NaN, or for nanmedian the lower middle of the numbers (0 in a row of NaN only)."""
    n = x.shape[dim]
    if not x.dtype.is_floating_point:
        return (n - 1) // 2
    nans = aten.sum.dim_IntList(aten.isnan.default(x), [dim], True, dtype=torch.int64)
    if skip_nan:
        numbers = aten.rsub.Scalar(nans, n)
        return aten.clamp_min.default(aten.floor_divide.Scalar(aten.sub.Scalar(numbers, 1), 2), 0)
    return aten.where.self(aten.gt.Scalar(nans, 0), aten.rsub.Scalar(nans, n),
                           aten.full_like.default(nans, (n - 1) // 2))


def _check_nonempty(name, x, dim):
    if x.dim() and x.shape[dim] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {dim % x.dim()} to have non-zero size.")


@register(aten.kthvalue.default)
def kthvalue(x, k, dim=-1, keepdim=False):
    """torch.kthvalue: the k-th smallest along dim (NaN counts as the largest)."""
    infer(aten.kthvalue.default, (x, k, dim, keepdim))
    return _select(x, dim, keepdim, k - 1)


def _median_dim(name, skip_nan):
    def impl(x, dim, keepdim=False):
        infer(getattr(aten, name).dim, (x, dim, keepdim))
        _check_nonempty(name, x, dim)
        return _select(x, dim, keepdim, _median_position(x, dim, skip_nan) if x.dim() else 0)
    impl.__doc__ = f"torch.{name} along a dimension: (values, indices)."
    return impl


def _median_all(name, skip_nan):
    def impl(x):
        infer(getattr(aten, name).default, (x,))
        if x.numel() == 0:  # (torch's CPU result: NaN, as integers the NaN's conversion)
            fill = float("nan") if x.dtype.is_floating_point else torch.iinfo(x.dtype).min
            return aten.full.default([], fill, dtype=x.dtype, device=x.device)
        flat = aten.reshape.default(x, [-1])
        return _select(flat, 0, False, _median_position(flat, 0, skip_nan))[0]
    impl.__doc__ = f"torch.{name} of every element: a 0-dim tensor."
    return impl


for _name, _skip in (("median", False), ("nanmedian", True)):
    register(getattr(aten, _name).dim)(_median_dim(_name, _skip))
    register(getattr(aten, _name).default)(_median_all(_name, _skip))


@register(aten.mode.default)
def mode(x, dim=-1, keepdim=False):
    """torch.mode: the most frequent value along dim (the smallest among equally frequent ones)
    and the position of its last occurrence, from runs of equal values in the sorted rows. Each
    NaN counts as a value of its own (torch's CPU order of NaN ties is unspecified)."""
    infer(aten.mode.default, (x, dim, keepdim))
    _check_nonempty("mode", x, dim)
    if x.dim() == 0:
        return _select(x, 0, keepdim, 0)
    dim %= x.dim()
    values, order = sort_along(x, dim, False)
    n = x.shape[dim]
    first = aten.ones_like.default(aten.slice.Tensor(values, dim, 0, 1), dtype=torch.bool)
    starts = aten.cat.default([first, aten.ne.Tensor(aten.slice.Tensor(values, dim, 1),
                                                     aten.slice.Tensor(values, dim, 0, n - 1))], dim)
    run = aten.sub.Scalar(aten.cumsum.default(starts, dim, dtype=torch.int64), 1)
    counts = aten.scatter_add.default(aten.zeros_like.default(run), dim, run, aten.ones_like.default(run))
    best = aten.argmax.default(counts, dim, True)  # the first (smallest) of the most frequent runs
    members = aten.eq.Tensor(run, best)
    head = aten.argmax.default(aten._to_copy.default(members, dtype=torch.int32), dim, True)
    value = aten.gather.default(values, dim, head)
    last = aten.amax.default(aten.where.ScalarOther(members, order, -1), [dim], True)
    if not keepdim:
        value, last = aten.squeeze.dim(value, dim), aten.squeeze.dim(last, dim)
    return value, last
