"""torch.optim's ``fused=True`` steps on ocl: aten._fused_adam_, _fused_adamw_ and _fused_sgd_
(float and tensor lr overloads) on the multi-tensor kernels of cl/fused_optim.cl.

One launch updates up to ADAM_SLOTS / SGD_SLOTS tensors of a list, whatever their sizes (the
bound is the kernel argument space: a longer list takes ceil(n / slots) launches, as torch's CUDA
multi_tensor_apply also splits long lists). Step counters, a tensor lr, grad_scale and found_inf
stay on the device and are read by the kernel: these ops only enqueue launches, so an optimizer
step can be captured by oclcore.graph. Parameters may be float32, float64, float16 or bfloat16
(the last two computed in float32, as torch's fused kernels). Dense operands that share the
parameter's layout go to the kernel as they are; others through contiguous copies written back
afterwards.

Host cost: as the foreach ops (foreach.py), a call is checked and laid out once per call
signature (per list, each tensor's dtype, shape, strides and device); later calls with that
signature read each tensor's buffer and offset and launch, each launch on a kernel handle of its
own whose unchanged arguments are not set again."""

import itertools
import math
import operator

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor
from . import dtypes, foreach, pointwise
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


def _layout(columns):
    """Per dtype of the parameters, the list positions of the non-empty ones: {dtype: [i]}; and the
    positions whose operands the kernel cannot take as they are (not dense, or laid out unlike the
    parameter), which go through contiguous copies."""
    groups, copied = {}, []
    for i, ops in enumerate(zip(*columns)):
        p = ops[0]
        if p.numel() == 0:
            continue
        if not dense_alike(*[t for t in ops if t.dim() or t is p]):  # 0-dim operands (steps) fit any layout
            copied.append(i)
        groups.setdefault(p.dtype, []).append(i)
    return groups, copied


def _picker(positions):
    """A function returning the items of a sequence at ``positions``, as a tuple."""
    if len(positions) == 1:
        i = positions[0]
        return lambda seq: (seq[i],)
    return operator.itemgetter(*positions)


class _Plan:
    """A call signature's launches: per dtype of the parameters, groups of up to ``slots`` list
    positions, each with its slots' lengths and first work-groups (the chunk table), its work-group
    count and a kernel handle of its own; and the positions that go through contiguous copies."""

    def __init__(self, name, columns, slots):
        groups, self.copied = _layout(columns)
        self.ncols = len(columns)
        self.groups = []
        for dtype, positions in groups.items():
            dev = runtime.device(columns[0][positions[0]]._index)
            k = _kernel(name, dtype, dev)
            ls = runtime.work_group_size(dev)
            chunk = ls * _ILP
            launches = []
            for start in range(0, len(positions), slots):
                part = positions[start:start + slots]
                sizes = [columns[0][i].numel() for i in part]
                firsts = list(itertools.accumulate([-(-n // chunk) for n in sizes], initial=0))
                total = firsts.pop()
                pad = (part[0], slots - len(part), total)  # unused slots: the first's buffers, length 0
                launches.append((_picker(part), sizes, firsts, pad, ((total * ls,), (ls,)), k.clone()))
            self.groups.append((dtype, launches))

    def run(self, columns, written, tail_of):
        """Launches the planned steps on these lists' current buffers; returns the contiguous
        copies of written operands as [(original, copy)], to write back after the launches."""
        cols = [_buffers(lst) for lst in columns]
        staged = []
        for i in self.copied:
            copies = {}  # a tensor standing in for an unused operand shares its copy
            for j, lst in enumerate(columns):
                t = lst[i]
                if t.dim():
                    c = copies.get(id(t))
                    if c is None:
                        c = copies[id(t)] = contiguous(t)
                        if j in written:
                            staged.append((t, c))
                    bufs, offsets = cols[j] = (list(cols[j][0]), list(cols[j][1]))
                    bufs[i], offsets[i] = c._buf, 0
        for dtype, launches in self.groups:
            tail = tail_of(dtype)
            for pick, sizes, firsts, (p, unused, total), sizes_arg, handle in launches:
                per_slot = [pick(b) for b, _ in cols] + [pick(o) for _, o in cols]
                args = list(itertools.chain.from_iterable(zip(*per_slot, sizes, firsts)))
                if unused:
                    args += ([b[p] for b, _ in cols] + [0] * self.ncols + [0, total]) * unused
                args += tail
                handle.launch(*sizes_arg, tuple(args))
        return staged


def _buffers(lst):
    """(buffers, element offsets) of the tensors of ``lst``, in list order."""
    entries = foreach._entries(lst)
    return list(map(foreach._buf_of, entries)), list(map(foreach._offset_of, entries))


def _signature(op, columns, written):
    """The plan-cache key of a call (plans share foreach.py's cache): the op, the written operands
    and each list's tensor geometry; None when a list holds tensors not on ocl, or a buffer too
    large for a cached decision (the kernels' offsets are int: whether one fits depends on the
    buffer, not only on the geometry)."""
    parts, seen = [op, frozenset(written)], {}
    for lst in columns:
        part = seen.get(id(lst))
        if part is None:
            part = seen[id(lst)] = foreach._list_sig(lst)
            if part is foreach._UNCACHED or any(map(foreach._huge_of, foreach._entries(lst))):
                return None
        parts.append(part)
    return tuple(parts)


def _run(op, name, columns, lists, steps, written, slots, flags, hyper, scalars_of):
    """Checks (for a new call signature), plans and launches a fused step; ``scalars_of(index)``
    gives the flags and trailing arguments of lr, grad_scale and found_inf (None: skip the step)."""
    key = _signature(op, columns, written)
    plan = foreach._plans.get(key) if key is not None else None
    index = _check(op, columns[0], lists, steps) if plan is None else columns[0][0]._index
    scalars = scalars_of(index)
    if scalars is None:
        return
    plan = foreach._plan(key, plan, columns, lambda: _Plan(name, columns, slots))

    def tail_of(dtype):
        ct = dtypes.compute(dtype)
        return (flags | scalars[0],) + tuple(dtypes.py_scalar(v, ct) for v in hyper) + scalars[1]

    for original, copy in plan.run(columns, written, tail_of):
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
        flags = (_MAXIMIZE if maximize else 0) | (_AMSGRAD if amsgrad else 0) | (_ADAMW if adamw else 0)
        maxes = max_exp_avg_sqs if amsgrad else params
        written = {0, 2, 3} | ({4} if amsgrad else set()) | ({1} if grad_scale is not None else set())
        hyper = (1 - beta1, beta2, 1 - beta2, _log(beta1), _log(beta2), weight_decay, eps)
        _run(op, "fused_adam", (params, grads, exp_avgs, exp_avg_sqs, maxes, state_steps), lists, state_steps,
             written, ADAM_SLOTS, flags, hyper,
             lambda index: _scalars(lr, grad_scale, found_inf, index, params[0]._buf))
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
    flags = ((_MAXIMIZE if maximize else 0) | (_MOMENTUM if momentum_buffer_list else 0)
             | (_NESTEROV if nesterov else 0) | (_FIRST if is_first_step else 0))
    buffers = momentum_buffer_list or params
    written = {0} | ({2} if momentum_buffer_list else set()) | ({1} if grad_scale is not None else set())
    _run("_fused_sgd_", "fused_sgd", (params, grads, buffers), lists, None, written, SGD_SLOTS, flags,
         (weight_decay, momentum, 1 - dampening), lambda index: _scalars(lr, grad_scale, found_inf, index, params[0]._buf))
