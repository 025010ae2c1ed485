"""torch.optim's ``fused=True`` steps on ocl: aten._fused_adam_, _fused_adamw_ and _fused_sgd_
(float and tensor lr overloads) on the multi-tensor kernels of cl/fused_optim.cl.

One launch updates up to ADAM_SLOTS / SGD_SLOTS tensors of a list, whatever their sizes (the
bound is the kernel argument space: a longer list takes ceil(n / slots) launches, as torch's CUDA
multi_tensor_apply also splits long lists). Step counters, a tensor lr, grad_scale and found_inf
stay on the device and are read by the kernel: these ops only enqueue launches, so an optimizer
step can be captured by oclcore.graph. Parameters may be float32, float64, float16 or bfloat16
(the last two computed in float32, as torch's fused kernels). Dense operands that share the
parameter's layout go to the kernel as they are; others through contiguous copies written back
afterwards."""

import math

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor
from . import dtypes, pointwise
from .copy import contiguous
from .elementwise import scalar_value
from .foreach import dense_alike

aten = torch.ops.aten
ADAM_SLOTS, SGD_SLOTS = 10, 16  # tensors per launch; fixed by EACH10 / EACH16 in cl/fused_optim.cl
_ILP = 4  # elements per work-item
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

# flags, as in cl/fused_optim.cl
_MAXIMIZE, _LR_DEV, _SCALE, _SCALE_DEV, _FOUND_INF = 1, 2, 4, 8, 16
_AMSGRAD, _ADAMW = 32, 64
_MOMENTUM, _NESTEROV, _FIRST = 32, 64, 128

# per kernel: slot signature (buffers, their offsets, length, first group), slots, hyperparameters
_SLOT_SIGNATURE = {"fused_adam": ("B" * 6 + "i" * 8, ADAM_SLOTS, 7), "fused_sgd": ("B" * 3 + "i" * 5, SGD_SLOTS, 3)}
_kernels = {}


def _kernel(name, dtype, dev):
    key = (name, dtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        sc = dtypes.SCALAR_CHAR[dtypes.compute(dtype)]
        slot, slots, hyper = _SLOT_SIGNATURE[name]
        defines = dict(dtypes.kernel_defines(dtype), LS=runtime.work_group_size(dev), ILP=_ILP)
        k = runtime.get_kernel(("types.cl", "fused_optim.cl"), defines, name,
                               slot * slots + "i" + sc * hyper + "BiBiBi" + sc * 2, dev)
        _kernels[key] = k
    return k


def _device_float(t, index, what):
    """(buffer, offset) of a one-element float32 ocl tensor holding ``t``'s value (converted on
    the device when ``t`` has another dtype)."""
    if t.numel() != 1:
        raise RuntimeError(f"{what} must have one element, got shape {tuple(t.shape)}")
    if t._index != index:
        raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two devices, "
                           f"ocl:{index} and {t.device}! (when checking argument {what})")
    if t.dtype != torch.float32:
        t = contiguous(t, torch.float32)
    return t._buf, t.storage_offset()


def _scalars(lr, grad_scale, found_inf, index, any_buf):
    """The flags and the trailing kernel arguments for lr, grad_scale and found_inf, each a
    Python number, a CPU tensor (read on the host) or an ocl tensor (read by the kernel);
    None where a CPU found_inf says to skip the step."""
    flags = 0
    lr_arg = sc_arg = fi_arg = (any_buf, 0)
    lr_in = scale_in = 0.0
    if isinstance(lr, OclTensor):
        lr_arg = _device_float(lr, index, "lr")
        flags |= _LR_DEV
    else:
        lr_in = float(scalar_value(lr))
    if grad_scale is not None:
        flags |= _SCALE
        if isinstance(grad_scale, OclTensor):
            sc_arg = _device_float(grad_scale, index, "grad_scale")
            flags |= _SCALE_DEV
        else:
            scale_in = float(scalar_value(grad_scale))
    if found_inf is not None:
        if isinstance(found_inf, OclTensor):
            fi_arg = _device_float(found_inf, index, "found_inf")
            flags |= _FOUND_INF
        elif scalar_value(found_inf) != 0:
            return None
    return flags, lr_arg + sc_arg + fi_arg + (lr_in, scale_in)


def _check(op, params, lists, steps):
    """torch-style errors for lists of other lengths, devices, dtypes or shapes than ``params``."""
    n = len(params)
    for name, lst in list(lists.items()) + ([("state_steps", steps)] if steps is not None else []):
        if len(lst) != n:
            raise RuntimeError(f"{op}: expected {n} {name} (one per parameter), got {len(lst)}")
    index = None
    for i, p in enumerate(params):
        for name, t in [("params", p)] + [(name, lst[i]) for name, lst in lists.items()]:
            if not isinstance(t, OclTensor) or (index is not None and t._index != index):
                raise RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                                   f"devices, {params[0].device} and {t.device}! ({op}, {name}[{i}])")
            index = t._index
            if t.dtype != p.dtype or t.shape != p.shape:
                raise RuntimeError(f"{op}: {name}[{i}] has dtype {t.dtype} and shape {tuple(t.shape)}, expected "
                                   f"the parameter's {p.dtype} and {tuple(p.shape)}")
        if p.dtype not in _FLOATS:
            raise TypeError(f"{op}: parameters must be float32, float64, float16 or bfloat16 tensors, got {p.dtype}")
        if steps is not None:
            s = steps[i]
            if not isinstance(s, OclTensor) or s._index != index or s.dtype != torch.float32 or s.numel() != 1:
                raise RuntimeError(f"{op}: state_steps[{i}] must be a one-element float32 tensor on "
                                   f"{p.device}, got {s.dtype} on {s.device}")
    return index


def _entries(columns, written):
    """Sorts the tensors of one call by dtype: {dtype: [(operands, numel)]}, operands one tensor
    of each column. Operands the kernel cannot take as they are (not dense, or laid out unlike the
    parameter) are replaced by contiguous copies; returns the copies of ``written`` columns as
    [(original, copy)] to write back after the launches."""
    groups, staged = {}, []
    for ops in zip(*columns):
        p = ops[0]
        if p.numel() == 0:
            continue
        tensors = [t for t in ops if t.dim() or t is p]  # 0-dim operands (steps) fit any layout
        if not dense_alike(*tensors):
            copies = {}  # a tensor standing in for an unused operand shares its copy
            for j, t in enumerate(ops):
                if t.dim() and id(t) not in copies:
                    copies[id(t)] = contiguous(t)
                    if j in written:
                        staged.append((t, copies[id(t)]))
            ops = [copies.get(id(t), t) for t in ops]
        groups.setdefault(p.dtype, []).append((ops, p.numel()))
    return groups, staged


def _launch(name, dtype, entries, slots, tail):
    """Launches kernel ``name`` over ``entries`` [(operands, numel)], ``slots`` per launch: each
    slot gets its operands, its length and its first work-group (the chunk table)."""
    pad_ops = entries[0][0]
    dev = runtime.device(pad_ops[0]._index)
    k = _kernel(name, dtype, dev)
    ls = runtime.work_group_size(dev)
    chunk = ls * _ILP
    for start in range(0, len(entries), slots):
        part = entries[start:start + slots]
        args, groups = [], 0
        for ops, n in part:
            args += [t._buf for t in ops] + [t.storage_offset() for t in ops] + [n, groups]
            groups += -(-n // chunk)
        args += ([t._buf for t in pad_ops] + [0] * len(pad_ops) + [0, groups]) * (slots - len(part))
        k.launch((groups * ls,), (ls,), tuple(args) + tail)


def _run(name, columns, written, slots, flags, hyper, scalars):
    groups, staged = _entries(columns, written)
    for dtype, entries in groups.items():
        ct = dtypes.compute(dtype)
        tail = (flags | scalars[0],) + tuple(dtypes.py_scalar(v, ct) for v in hyper) + scalars[1]
        _launch(name, dtype, entries, slots, tail)
    for original, copy in staged:
        pointwise.run("copy", original, [copy])


def _log(beta):
    return math.log(beta) if beta > 0 else -math.inf


def _adam(op, adamw):
    def impl(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, *, lr, beta1, beta2,
             weight_decay, eps, amsgrad, maximize, grad_scale=None, found_inf=None):
        lists = {"grads": grads, "exp_avgs": exp_avgs, "exp_avg_sqs": exp_avg_sqs}
        if amsgrad:
            lists["max_exp_avg_sqs"] = max_exp_avg_sqs
        if not params:
            return
        index = _check(op, params, lists, state_steps)
        scalars = _scalars(lr, grad_scale, found_inf, index, params[0]._buf)
        if scalars is None:
            return
        flags = (_MAXIMIZE if maximize else 0) | (_AMSGRAD if amsgrad else 0) | (_ADAMW if adamw else 0)
        maxes = max_exp_avg_sqs if amsgrad else params
        written = {0, 2, 3} | ({4} if amsgrad else set()) | ({1} if grad_scale is not None else set())
        hyper = (1 - beta1, beta2, 1 - beta2, _log(beta1), _log(beta2), weight_decay, eps)
        _run("fused_adam", (params, grads, exp_avgs, exp_avg_sqs, maxes, state_steps), written, ADAM_SLOTS,
             flags, hyper, scalars)
    return impl


register(aten._fused_adam_.default, aten._fused_adam_.tensor_lr)(_adam("_fused_adam_", False))
register(aten._fused_adamw_.default, aten._fused_adamw_.tensor_lr)(_adam("_fused_adamw_", True))


@register(aten._fused_sgd_.default, aten._fused_sgd_.tensor_lr)
def fused_sgd_(params, grads, momentum_buffer_list, *, weight_decay, momentum, lr, dampening, nesterov,
               maximize, is_first_step, grad_scale=None, found_inf=None):
    """SGD over a list of parameters; an empty ``momentum_buffer_list`` means no momentum."""
    lists = {"grads": grads}
    if momentum_buffer_list:
        lists["momentum_buffer_list"] = momentum_buffer_list
    if not params:
        return
    index = _check("_fused_sgd_", params, lists, None)
    scalars = _scalars(lr, grad_scale, found_inf, index, params[0]._buf)
    if scalars is None:
        return
    flags = ((_MAXIMIZE if maximize else 0) | (_MOMENTUM if momentum_buffer_list else 0)
             | (_NESTEROV if nesterov else 0) | (_FIRST if is_first_step else 0))
    buffers = momentum_buffer_list or params
    written = {0} | ({2} if momentum_buffer_list else set()) | ({1} if grad_scale is not None else set())
    _run("fused_sgd", (params, grads, buffers), written, SGD_SLOTS, flags, (weight_decay, momentum, 1 - dampening),
         scalars)
