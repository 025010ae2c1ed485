"""Composite aten ops overridden for the ``ocl`` device at its autograd key.

A CompositeImplicitAutograd op is decomposed before ``__torch_dispatch__`` sees it, and for
tensor subclasses such as ours torch takes the decomposition meant for them, which can mix
devices where the regular one would not, or dispatch more ops than the regular one. Each
override here computes the op through other public ops (or torch's own decomposition where
it has nothing better); autograd then follows the ops it calls."""

import torch

_lib = None


def _ctc_loss_tensor_lengths(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1,
                             zero_infinity=False):
    # torch's subclass path divides the per-sample losses (on ocl) by target_lengths as given,
    # usually a CPU tensor; the regular path reads the lengths on the host, as this one does.
    return torch.ctc_loss(log_probs, targets, input_lengths.tolist(), target_lengths.tolist(), blank, reduction,
                          zero_infinity)


def _matmul(a, b):
    # a batched product of two 3-D operands is a bmm: the decomposition for subclasses spends
    # four view dispatches around it (expand, view, expand, view) and one after.
    if a.dim() == 3 and b.dim() == 3 and a.shape[0] == b.shape[0]:
        return torch.bmm(a, b)
    return torch.ops.aten.matmul.default.decompose(a, b)


def install():
    """Registers the overrides (once)."""
    global _lib
    if _lib is not None:
        return
    _lib = torch.library.Library("aten", "IMPL")
    _lib.impl("ctc_loss.Tensor", _ctc_loss_tensor_lengths, "AutogradPrivateUse1")
    _lib.impl("matmul", _matmul, "AutogradPrivateUse1")
