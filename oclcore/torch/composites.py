"""Composite aten ops overridden for the ``ocl`` device at its autograd key.

A CompositeImplicitAutograd op is decomposed before ``__torch_dispatch__`` sees it, and for
tensor subclasses such as ours torch takes the decomposition meant for them, which can mix
devices where the regular one would not. Each override here computes the op through another
public overload that stays on one device; autograd then follows the ops it calls."""

import torch

_lib = None


def _ctc_loss_tensor_lengths(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1,
                             zero_infinity=False):
    # torch's subclass path divides the per-sample losses (on ocl) by target_lengths as given,
    # usually a CPU tensor; the regular path reads the lengths on the host, as this one does.
    return torch.ctc_loss(log_probs, targets, input_lengths.tolist(), target_lengths.tolist(), blank, reduction,
                          zero_infinity)


def install():
    """Registers the overrides (once)."""
    global _lib
    if _lib is not None:
        return
    _lib = torch.library.Library("aten", "IMPL")
    _lib.impl("ctc_loss.Tensor", _ctc_loss_tensor_lengths, "AutogradPrivateUse1")
