"""Whole-tensor comparisons that return a Python bool (torch.equal, torch.allclose): computed on
the device, one element read back, so they wait for the device as .item() does."""

import torch

from ..torch.dispatch import register
from .dtypes import type_name

aten = torch.ops.aten


@register(aten.equal.default)
def equal(a, b):
    """True when a and b have the same shape and elements (NaN equals nothing; dtypes may differ)."""
    if tuple(a.shape) != tuple(b.shape):
        return False
    return bool(aten.all.default(aten.eq.Tensor(a, b)).item())


@register(aten.allclose.default)
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element of a is close to b's (broadcast) within atol + rtol * |b|."""
    if a.dtype != b.dtype:  # torch's check and wording
        raise RuntimeError(f"{type_name(a.dtype)} did not match {type_name(b.dtype)}")
    return bool(aten.all.default(aten.isclose.default(a, b, rtol, atol, equal_nan)).item())
