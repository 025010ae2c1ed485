"""Batch norm and the activation after it in one kernel.

``oclcore::batch_norm_act`` normalises and writes act(y) in the same pass, y itself only when
something else reads it (keep_y); ``oclcore::batch_norm_act_backward`` is batch norm's backward
with the activation's gradient applied to grad_out as it is read (src: the activation's input,
or relu's output). Compiled training graphs use them (oclcore/compile/rewrite.py), saving a pass
over the activation tensor each way. Activations: relu, relu6 (hardtanh(0, 6)), silu. Each op has
a CPU reference in aten ops."""

import torch

from ..torch.dispatch import register
from . import norm

aten = torch.ops.aten

torch.library.define(
    "oclcore::batch_norm_act",
    "(Tensor x, Tensor? weight, Tensor? bias, Tensor(a!)? running_mean, Tensor(b!)? running_var, bool training, "
    "float momentum, float eps, str act, bool keep_y) -> (Tensor, Tensor, Tensor, Tensor)")
torch.library.define(
    "oclcore::batch_norm_act_backward",
    "(Tensor grad_out, Tensor src, str act, Tensor x, Tensor? weight, Tensor? running_mean, Tensor? running_var, "
    "Tensor? save_mean, Tensor? save_invstd, bool train, float eps, bool[3] output_mask) -> (Tensor, Tensor, Tensor)")


def _code(act):
    code = norm.ACTIVATIONS.get(act)
    if code is None:
        raise ValueError(f"batch_norm_act: unknown activation {act!r} (one of {', '.join(norm.ACTIVATIONS)})")
    return code


def _activation(act, y):
    _code(act)
    return aten.relu(y) if act == "relu" else aten.hardtanh(y, 0.0, 6.0) if act == "relu6" else aten.silu(y)


def _activation_grad(act, grad_out, src):
    _code(act)
    if act == "relu":
        return aten.threshold_backward(grad_out, src, 0)
    if act == "relu6":
        return aten.hardtanh_backward(grad_out, src, 0.0, 6.0)
    return aten.silu_backward(grad_out, src)


def _reference(x, weight, bias, running_mean, running_var, training, momentum, eps, act, keep_y):
    y, mean, invstd = aten.native_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps)
    return (y if keep_y else y.new_empty((0,))), _activation(act, y), mean, invstd


def _backward_reference(grad_out, src, act, x, weight, running_mean, running_var, save_mean, save_invstd, train,
                        eps, output_mask):
    return aten.native_batch_norm_backward(_activation_grad(act, grad_out, src), x, weight, running_mean,
                                           running_var, save_mean, save_invstd, train, eps, output_mask)


@torch.library.register_fake("oclcore::batch_norm_act")
def _fake(x, weight, bias, running_mean, running_var, training, momentum, eps, act, keep_y):
    _code(act)
    stats = (x.shape[1],) if training else (0,)
    sdtype = norm.stats_dtype(x.dtype)
    return (torch.empty_like(x) if keep_y else x.new_empty((0,)), torch.empty_like(x),
            x.new_empty(stats, dtype=sdtype), x.new_empty(stats, dtype=sdtype))


@torch.library.register_fake("oclcore::batch_norm_act_backward")
def _backward_fake(grad_out, src, act, x, weight, running_mean, running_var, save_mean, save_invstd, train, eps,
                   output_mask):
    _code(act)
    params = weight if weight is not None else x.new_empty((x.shape[1],))
    return torch.empty_like(x), torch.empty_like(params), torch.empty_like(params)


torch.library.impl("oclcore::batch_norm_act", "CPU")(_reference)
torch.library.impl("oclcore::batch_norm_act_backward", "CPU")(_backward_reference)


@register(torch.ops.oclcore.batch_norm_act.default)
def batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, act, keep_y):
    """(y, or a 0-element tensor unless keep_y; act(y); save_mean; save_invstd) of batch norm followed
    by act, the running statistics updated in training as batch norm does."""
    return norm.batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps,
                                   _code(act), keep_y)


@register(torch.ops.oclcore.batch_norm_act_backward.default)
def batch_norm_act_backward(grad_out, src, act, x, weight, running_mean, running_var, save_mean, save_invstd,
                            train, eps, output_mask):
    """native_batch_norm_backward of act's input gradient, given act's grad_out and src (act's input;
    for relu its output serves too)."""
    code = _code(act)
    if src.shape != grad_out.shape or src.stride() != grad_out.stride() or src.dtype != grad_out.dtype:
        grad_out, code, src = _activation_grad(act, grad_out, src), 0, None   # the kernel reads both alike
    return norm.batch_norm_backward(grad_out, x, weight, running_mean, running_var, save_mean, save_invstd, train,
                                    eps, output_mask, code, src)
