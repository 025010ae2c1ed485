"""Composite aten ops overridden for the ``ocl`` device at its autograd key.

A CompositeImplicitAutograd op is decomposed before ``__torch_dispatch__`` sees it. For tensor
subclasses such as ours torch takes the decomposition meant for them, which can mix devices
where the regular one would not: such overrides compute the op through another public overload
that stays on one device, and autograd follows the ops they call. Other composites decompose
into many small ops where oclcore has one kernel (silu's backward: eight launches, every SiLU of
every training step): their overrides send the op, when it needs no autograd of its own, below
autograd to ``__torch_dispatch__`` whole."""

import torch

_lib = None


def _ctc_loss_tensor_lengths(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1,
                             zero_infinity=False):
    # torch's subclass path divides the per-sample losses (on ocl) by target_lengths as given,
    # usually a CPU tensor; the regular path reads the lengths on the host, as this one does.
    return torch.ctc_loss(log_probs, targets, input_lengths.tolist(), target_lengths.tolist(), blank, reduction,
                          zero_infinity)


def _whole(func):
    """An autograd-key kernel for composite ``func``: the op itself goes to __torch_dispatch__ (one
    kernel) unless autograd must record it, where torch's decomposition runs as before."""
    def kernel(*args, **kwargs):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return func.decompose(*args, **kwargs)
        with torch._C._AutoDispatchBelowAutograd():
            return func(*args, **kwargs)
    return kernel


# composites with an ocl kernel of their own (elementwise.py) whose decomposition is several ops
_WHOLE = ("silu_backward", "mish_backward")


def install():
    """Registers the overrides (once)."""
    global _lib
    if _lib is not None:
        return
    _lib = torch.library.Library("aten", "IMPL")
    _lib.impl("ctc_loss.Tensor", _ctc_loss_tensor_lengths, "AutogradPrivateUse1")
    for name in _WHOLE:
        _lib.impl(name, _whole(getattr(torch.ops.aten, name).default), "AutogradPrivateUse1")
