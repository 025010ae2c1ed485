"""torch.optim's Adam, AdamW and SGD take their fused step on ocl when the user chose neither
``fused`` nor ``foreach``.

torch picks the multi-tensor (foreach) step by default, on CUDA as on ocl; the fused step
(aten._fused_adam_ and friends, oclcore/ops/fused_optim.py) does the same arithmetic in one
call per parameter list instead of seven, which halves the optimizer's host time here, and
training steps are host-bound on small networks (bench/results/h200-round18.md). So before a
param group's first step, a global optimizer pre-hook sets the group's ``fused`` to True when
the choice is still open and torch's fused step applies: every parameter an ocl floating-point
tensor, not ``differentiable``, no state yet (the step counters then live on the device, as
with ``fused=True``), every other group fused, not while torch.compile traces. ``foreach=True``
or ``fused=False`` keeps torch's choice."""

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .tensor import OclTensor

FUSED_BY_DEFAULT = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
_handle = None


def _open(group):
    return group.get("fused") is None and group.get("foreach") is None and not group.get("differentiable")


def _fusable(params, state):
    return bool(params) and all(type(p) is OclTensor and p.is_floating_point() and p not in state
                                for p in params)


def prefer_fused(optimizer, args, kwargs):
    """The pre-hook: turns on ``fused`` for the open param groups of ocl parameters without state,
    when every other group is fused already (GradScaler hands the scale to an optimizer whose step
    supports it, and torch's other steps refuse one: all groups or none)."""
    if type(optimizer) not in FUSED_BY_DEFAULT or torch.compiler.is_compiling():
        return
    groups = optimizer.param_groups
    if all(g.get("fused") for g in groups):
        return
    state = optimizer.state
    if all(g.get("fused") or (_open(g) and _fusable(g["params"], state)) for g in groups):
        for g in groups:
            g["fused"] = True
        optimizer._step_supports_amp_scaling = True


def install():
    """Registers the pre-hook (once)."""
    global _handle
    if _handle is None:
        _handle = register_optimizer_step_pre_hook(prefer_fused)
