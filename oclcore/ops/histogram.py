"""torch.bincount and torch.histc: bin positions on the device, then counts through the
deterministic index_add (index.py). bincount's output size and histc's range when min == max
depend on the data, so those read two values back, as torch does."""

import torch

from ..torch.dispatch import register
from . import dtypes

aten = torch.ops.aten


def _counts(size, positions, weights, dtype, device):
    """A vector of ``size`` zeros of ``dtype`` plus, at each position, its weight (or 1)."""
    out = aten.zeros.default([size], dtype=dtype, device=device)
    if weights is None:
        weights = aten.ones.default([positions.shape[0]], dtype=dtype, device=device)
    elif weights.dtype != dtype:
        weights = aten._to_copy.default(weights, dtype=dtype)
    return aten.index_add_.default(out, 0, positions, weights)


@register(aten.bincount.default)
def bincount(x, weights=None, minlength=0):
    """torch.bincount: occurrences of each value of a 1-D non-negative integer tensor (weighted)."""
    if x.dtype.is_floating_point or x.dtype is torch.bool or x.dtype.is_complex:
        raise NotImplementedError(f"\"bincount\" not implemented for '{dtypes.type_name(x.dtype)}'")
    if x.dim() != 1:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is not None and (weights.dim() != 1 or weights.shape[0] != x.shape[0]):
        raise RuntimeError("weights should be 1-d and have the same length as input")
    size = minlength
    if x.numel():
        low, high = aten.stack.default(list(aten.aminmax.default(x))).to("cpu").tolist()
        if low < 0:
            raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
        size = max(size, high + 1)
    dtype = torch.int64 if weights is None else (torch.float32 if weights.dtype is torch.float32 else torch.float64)
    return _counts(size, aten._to_copy.default(x, dtype=torch.int64), weights, dtype, x.device)


@register(aten.histc.default)
def histc(x, bins=100, min=0, max=0):
    """torch.histc: counts of x's elements in ``bins`` equal bins over [min, max] (the data's range
    when min == max); elements outside it and NaN are left out."""
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f"\"histogram\" not implemented for '{dtypes.type_name(x.dtype)}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    low, high = float(min), float(max)
    if low > high:
        raise RuntimeError("torch.histc: max must be larger than min")
    flat = aten.reshape.default(x, [-1])
    if low == high and flat.numel():
        low, high = aten.stack.default(list(aten.aminmax.default(flat))).to("cpu").tolist()
    if low == high:
        low, high = low - 1, high + 1
    if not (abs(low) < float("inf") and abs(high) < float("inf")):
        raise RuntimeError(f"torch.histc: range of [{low:g}, {high:g}] is not finite")
    # torch's bin of an element: the last edge at or below it (x == max counts in the last bin),
    # the edges laid out by torch.linspace on the CPU so that every boundary case agrees; elements
    # outside [min, max] and NaN go to an extra bin, dropped at the end (no read-back)
    edges = torch.linspace(low, high, bins + 1, dtype=x.dtype).to(x.device)
    positions = aten.sub.Scalar(aten.searchsorted.Tensor(edges, flat, right=True), 1)
    positions = aten.where.ScalarSelf(aten.eq.Scalar(flat, high), bins - 1, positions)
    positions = aten.where.ScalarSelf(aten.lt.Scalar(positions, 0), bins, positions)
    return aten.slice.Tensor(_counts(bins + 1, positions, None, x.dtype, x.device), 0, 0, bins)
