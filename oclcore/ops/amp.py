"""The two ops of torch.amp.GradScaler on ocl: unscaling gradients while looking for infs and NaNs
(aten._amp_foreach_non_finite_check_and_unscale_) and updating the scale
(aten._amp_update_scale_). Both stay on the device (GradScaler reads found_inf only where the
user asks), built from multi-tensor and pointwise ops: a max-norm per gradient, one multiply."""

import math

import torch

from ..torch.dispatch import register
from ..torch.tensor import OclTensor

aten = torch.ops.aten


def _check_scalar(name, t, dtype=torch.float32):
    torch._check(isinstance(t, OclTensor) and t.numel() == 1 and t.dtype == dtype,
                 lambda: f"{name} must be a one-element {dtype} tensor on ocl, got "
                         f"{getattr(t, 'dtype', type(t))} on {getattr(t, 'device', None)}")


@register(aten._amp_foreach_non_finite_check_and_unscale_.default)
def non_finite_check_and_unscale_(grads, found_inf, inv_scale):
    """grads *= inv_scale in place; found_inf becomes 1 if any gradient held an inf or a NaN."""
    _check_scalar("found_inf", found_inf)
    _check_scalar("inv_scale", inv_scale)
    grads = [g for g in grads if g.numel()]
    if not grads:
        return
    torch._check(all(isinstance(g, OclTensor) and g.is_floating_point() for g in grads),
                 lambda: "_amp_foreach_non_finite_check_and_unscale_: gradients must be floating ocl tensors")
    # (the largest magnitude of each gradient is inf or NaN exactly when it holds one; checked
    # before the multiply, which could overflow when the scale is below 1)
    largest = torch.stack([m.float() for m in torch._foreach_norm(grads, math.inf)])
    found = torch.logical_not(torch.isfinite(largest)).any().float()
    torch.maximum(found_inf, found.view(found_inf.shape), out=found_inf)
    torch._foreach_mul_(grads, inv_scale.view(()))


@register(aten._amp_update_scale_.default)
def update_scale_(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    """GradScaler's scale update on the device: back off and restart counting after an inf or NaN,
    else grow (while the grown scale is finite) once growth_interval steps in a row were clean."""
    _check_scalar("scale", scale)
    _check_scalar("found_inf", found_inf)
    _check_scalar("growth_tracker", growth_tracker, torch.int32)
    found = found_inf.view(()) > 0
    clean_steps = growth_tracker.view(()) + 1
    grown = scale.view(()) * growth_factor
    grow = torch.logical_and(torch.logical_not(found), clean_steps >= growth_interval)
    new_scale = torch.where(found, scale.view(()) * backoff_factor,
                            torch.where(torch.logical_and(grow, torch.isfinite(grown)), grown, scale.view(())))
    new_tracker = torch.where(torch.logical_or(found, grow), torch.zeros_like(clean_steps), clean_steps)
    scale.copy_(new_scale.view(scale.shape))
    growth_tracker.copy_(new_tracker.view(growth_tracker.shape))
    return scale
