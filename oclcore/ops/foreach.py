"""The multi-tensor ops (aten._foreach_*) that torch.optim and clip_grad_norm_
use, on the kernels of cl/foreach.cl.

One launch handles up to ``SLOTS`` tensors of a list: OpenCL 1.2 cannot pass
an array of buffers, so the kernel takes ``SLOTS`` sets of buffer arguments
and a list of n tensors costs ceil(n / SLOTS) launches. The element
expressions are those of pointwise_table.py, so a foreach op computes exactly
what the single-tensor op computes on ocl. Tensors the kernels cannot take
(not dense, operands laid out differently, integer dtypes, mixed dtypes,
CPU operands) go through the single-tensor op, still on the device.

Also makes torch treat OclTensor as a foreach-capable type, so optimizers and
clip_grad_norm_ choose the multi-tensor path on ocl by default, as on CUDA."""

import math

import torch
import torch.optim.optimizer as _optimizer
import torch.utils._foreach_utils as _foreach_utils

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, alias, empty
from . import dtypes, pointwise
from .copy import dense_strides
from .elementwise import scalar_value
from .meta import infer
from .pointwise_table import OPS as _EXPRESSIONS

aten = torch.ops.aten
SLOTS = 8  # tensors per launch; fixed by the FE_SLOT lists in cl/foreach.cl
_INT32_MAX = 2**31 - 1
_MAX_ITEMS = 1 << 16  # work-items per tensor slot; they stride over bigger tensors

# torch picks the multi-tensor path only for listed types (optimizers and clip_grad_norm_ keep separate lists)
for _types in (_foreach_utils._foreach_supported_types, _optimizer._foreach_supported_types):
    if OclTensor not in _types:
        _types.append(OclTensor)

# kernel ops used by the foreach families (pointwise_table names)
_UNARY = ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor",
          "frac", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt", "sigmoid",
          "sign", "sin", "sinh", "sqrt", "tan", "tanh", "trunc")
_KERNEL_OPS = _UNARY + ("copy", "add", "sub", "mul", "div", "maximum", "minimum", "pow", "lerp",
                        "addcmul", "addcdiv")
_extra_source = "\n".join(f"FOREACH(fe_{op}, {_EXPRESSIONS[op][1]})" for op in _KERNEL_OPS)
_kernels = {}


def local_size(dev):
    """The largest power-of-two work-group size up to 256 that ``dev`` allows."""
    size = 1
    while size * 2 <= min(256, dev.max_work_group_size):
        size *= 2
    return size


def _kernel(name, in_dtype, out_dtype, dev, signature):
    key = (name, in_dtype, out_dtype, dev.index)
    k = _kernels.get(key)
    if k is None:
        ct = dtypes.compute(in_dtype)
        defines = {"T": dtypes.storage(in_dtype), "LD": dtypes.load_macro(in_dtype),
                   "TO": dtypes.storage(out_dtype), "STO": dtypes.store_macro(out_dtype), "CT": ct,
                   "LS": local_size(dev)}
        if ct == "double" or torch.float64 in (in_dtype, out_dtype):
            defines["FP64"] = None
        k = runtime.get_kernel(("types.cl", "pointwise.cl", "foreach.cl"), defines, name, signature, dev,
                               extra_source=_extra_source)
        _kernels[key] = k
    return k


def _elementwise_signature(sc):
    return ("BiBiBiBii" + sc) * SLOTS + "i" + sc * 3 + "Biii"


# ---------------------------------------------------------------- launching

def dense_alike(ref, *others):
    """True when ``ref`` is dense (no gaps, no overlap) and every other operand has its layout."""
    if ref.numel() > _INT32_MAX or ref._buf.nbytes // ref.element_size() > _INT32_MAX:
        return False
    st = ref.stride()
    if ref.numel() > 1 and st != dense_strides(ref):
        return False
    shape = ref.shape
    return all(o.shape == shape and (o.stride() == st or o.numel() <= 1) for o in others)


class _Scalar:
    """Where the per-tensor scalar of a call comes from: host numbers (one for all or one per
    tensor), or a device tensor read by the kernel (``step`` 0: one value; 1: one per tensor)."""

    def __init__(self, values=None, device=None, step=0):
        self.values = values
        self.device = device
        self.step = step

    def host(self, i):
        if self.values is None:
            return 0.0
        return self.values[i] if isinstance(self.values, (list, tuple)) else self.values


def _launch(op, slots, scalar, src, params, in_dtype, out_dtype):
    """Runs FOREACH kernel ``op`` over ``slots``: [(index in the list, out, a, b, c)] of one dtype pair."""
    out0 = slots[0][1]
    dev = runtime.device(out0._index)
    ct = dtypes.compute(in_dtype)
    sc = dtypes.SCALAR_CHAR[ct]
    k = _kernel("fe_" + op, in_dtype, out_dtype, dev, _elementwise_signature(sc))
    sv, sv_off, dev_flag = out0._buf, 0, 0
    if scalar.device is not None:
        s = scalar.device
        if s.dtype != in_dtype:
            converted = empty(s.shape, in_dtype, s._index)
            pointwise.run("copy", converted, [s])
            s = converted
        sv, sv_off, dev_flag = s._buf, s.storage_offset(), 1
    p = [dtypes.py_scalar(v, ct) for v in list(params) + [0] * (3 - len(params))]
    for start in range(0, len(slots), SLOTS):
        chunk = slots[start:start + SLOTS]
        args = []
        longest = 0
        for i, o, a, b, c in chunk:
            n = o.numel()
            longest = max(longest, n)
            args += (o._buf, o.storage_offset(), a._buf, a.storage_offset(), b._buf, b.storage_offset(),
                     c._buf, c.storage_offset(), n, dtypes.py_scalar(scalar.host(i), ct))
        for _ in range(SLOTS - len(chunk)):
            args += (out0._buf, 0, out0._buf, 0, out0._buf, 0, out0._buf, 0, 0, dtypes.py_scalar(0, ct))
        first = chunk[0][0]
        args += (src, p[0], p[1], p[2], sv, sv_off + first * scalar.step, scalar.step, dev_flag)
        items = max(1, min(longest, _MAX_ITEMS))
        local = 64 if items >= 64 else 1
        k.launch((items, len(chunk)), (local, 1), tuple(args))


def _run(op, outs, lists, scalar, src, params, single, same_dtype=True):
    """Computes ``outs[i] = op(lists[0][i], ...)`` for every i: the dense float tensors through the
    multi-tensor kernel, the others through ``single(i)`` (which returns the result tensor).
    ``outs`` entries may be None for functional ops: they are allocated here. Returns outs."""
    groups = {}
    for i in range(len(lists[0])):
        ops = [lst[i] for lst in lists]
        a = ops[0]
        o = outs[i]
        fast = all(isinstance(t, OclTensor) for t in ops) and (o is None or isinstance(o, OclTensor))
        if fast:
            fast = (a.dtype.is_floating_point and dtypes.supported(a.dtype)
                    and all(t.dtype == a.dtype and t._index == a._index for t in ops)
                    and (o is None or o._index == a._index)
                    and (not same_dtype or o is None or o.dtype == a.dtype)
                    and (o is None or dtypes.supported(o.dtype))
                    and dense_alike(a, *ops[1:], *([o] if o is not None else [])))
        if not fast:
            outs[i] = single(i)
            continue
        if o is None:
            o = outs[i] = empty(a.shape, a.dtype, a._index, a.stride())
        if o.numel() == 0:
            continue
        b = ops[1] if len(ops) > 1 else a
        c = ops[2] if len(ops) > 2 else a
        groups.setdefault((a.dtype, o.dtype), []).append((i, o, a, b, c))
    for (in_dtype, out_dtype), slots in groups.items():
        _launch(op, slots, scalar, src, params, in_dtype, out_dtype)
    return outs


# ---------------------------------------------------------------- op families

_X, _Y, _Z, _P0 = 1, 2, 4, 8  # `src` bits: operand taken from the slot's scalar


def _tensor_scalar(t):
    """A _Scalar for a 0-dim ``Tensor`` argument: device-resident when it is on ocl."""
    if isinstance(t, OclTensor):
        return _Scalar(device=t, step=0)
    return _Scalar(scalar_value(t))


def _register_family(packet_name, build):
    """Registers every overload of aten ``packet_name`` and ``packet_name_`` through ``build``,
    which maps (overload, args, kwargs) to (op, lists, scalar, src, params, single)."""
    for name, inplace in ((packet_name, False), (packet_name + "_", True)):
        packet = getattr(aten, name, None)
        if packet is None:
            continue
        for ov in packet.overloads():
            if "out" in ov:
                continue
            func = getattr(packet, ov)
            register(func)(_make(func, ov, build, inplace))


def _make(func, overload, build, inplace):
    def impl(*args, **kwargs):
        _check(func, overload, args, kwargs)
        op, lists, scalar, src, params, single = build(overload, inplace, *args, **kwargs)
        outs = list(lists[0]) if inplace else [None] * len(lists[0])
        outs = _run(op, outs, lists, scalar, src, params, single, same_dtype=op != "copy")
        return None if inplace else outs
    return impl


def _check(func, overload, args, kwargs):
    """torch's own argument checks (list lengths, dtypes, in-place casts) on meta tensors."""
    if overload == "Tensor" and func._schema.name.split("::")[1].startswith(("_foreach_addc",)):
        # scalars: a 1-D tensor of per-tensor values; check as the equivalent ScalarList
        scalars = args[3] if len(args) > 3 else kwargs["scalars"]
        ov = getattr(torch.ops.aten, func._schema.name.split("::")[1]).ScalarList
        infer(ov, tuple(args[:3]) + ([1.0] * scalars.numel(),))
        return
    infer(func, args, kwargs)


def _torch_fn(name, inplace):
    if inplace:
        return lambda x, *a, **k: getattr(x, name + "_")(*a, **k)
    return getattr(torch, name)


def _unary(op, torch_name):
    def build(overload, inplace, xs):
        fn = _torch_fn(torch_name, inplace)
        return op, [xs], _Scalar(), 0, (), lambda i: fn(xs[i])
    return build


for _name in _UNARY:
    _register_family("_foreach_" + _name, _unary(_name, _name))


def _zero(overload, inplace, xs):
    single = (lambda i: xs[i].zero_()) if inplace else (lambda i: torch.zeros_like(xs[i]))
    return "copy", [xs], _Scalar(0.0), _X, (), single


_register_family("_foreach_zero", _zero)


def _clone(overload, inplace, xs, memory_format=None):
    return "copy", [xs], _Scalar(), 0, (), lambda i: xs[i].clone()


_register_family("_foreach_clone", _clone)


@register(aten._foreach_copy_.default)
def foreach_copy_(dsts, srcs, non_blocking=False):
    infer(aten._foreach_copy_.default, (dsts, srcs, non_blocking))
    _run("copy", list(dsts), [srcs], _Scalar(), 0, (), lambda i: dsts[i].copy_(srcs[i]), same_dtype=False)


@register(aten._foreach_copy.default)
def foreach_copy(dsts, srcs, non_blocking=False):
    infer(aten._foreach_copy.default, (dsts, srcs, non_blocking))
    outs = [empty(d.shape, d.dtype, d._index, d.stride()) if isinstance(d, OclTensor) else None for d in dsts]
    return _run("copy", outs, [srcs], _Scalar(), 0, (), lambda i: dsts[i].clone().copy_(srcs[i]),
                same_dtype=False)


def _binary(op, torch_name, has_alpha=False):
    """x op y with y a tensor list (List), one scalar (Scalar), a scalar per tensor
    (ScalarList) or a 0-dim tensor (Tensor)."""
    def build(overload, inplace, xs, other, alpha=1):
        params = (alpha,) if has_alpha else ()
        kw = {"alpha": alpha} if has_alpha and alpha != 1 else {}
        fn = _torch_fn(torch_name, inplace)
        if overload == "List":
            return op, [xs, other], _Scalar(), 0, params or (1,), lambda i: fn(xs[i], other[i], **kw)
        if overload == "Tensor":
            scalar = _tensor_scalar(other)
            return op, [xs], scalar, _Y, params or (1,), lambda i: fn(xs[i], other, **kw)
        scalar = _Scalar(list(other) if overload == "ScalarList" else other)
        return op, [xs], scalar, _Y, params or (1,), lambda i: fn(xs[i], scalar.host(i), **kw)
    return build


_register_family("_foreach_add", _binary("add", "add", True))
_register_family("_foreach_sub", _binary("sub", "sub", True))
_register_family("_foreach_mul", _binary("mul", "mul"))
_register_family("_foreach_div", _binary("div", "div"))
_register_family("_foreach_maximum", _binary("maximum", "clamp_min"))
_register_family("_foreach_minimum", _binary("minimum", "clamp_max"))
_register_family("_foreach_clamp_min", _binary("maximum", "clamp_min"))
_register_family("_foreach_clamp_max", _binary("minimum", "clamp_max"))


def _pow(overload, inplace, xs, exponent):
    if overload == "ScalarAndTensor":  # (Scalar self, Tensor[] exponent)
        base, exps = xs, exponent
        return "pow", [exps, exps], _Scalar(base), _X, (), lambda i: torch.pow(base, exps[i])
    return _binary("pow", "pow")(overload, inplace, xs, exponent)


_register_family("_foreach_pow", _pow)


def _pointwise_value(op, torch_name):
    """addcmul / addcdiv: x + value * y (op) z, value one scalar, one per tensor, or a tensor of them."""
    def build(overload, inplace, xs, t1, t2, value=1):
        fn = _torch_fn(torch_name, inplace)
        if overload == "Scalar":
            return op, [xs, t1, t2], _Scalar(), 0, (value,), lambda i: fn(xs[i], t1[i], t2[i], value=value)
        if overload == "Tensor" and isinstance(value, OclTensor):
            scalar = _Scalar(device=value.reshape(-1), step=1)
            return (op, [xs, t1, t2], scalar, _P0, (), lambda i: fn(xs[i], t1[i] * value.reshape(-1)[i], t2[i]))
        values = value.tolist() if isinstance(value, torch.Tensor) else list(value)
        scalar = _Scalar(values)
        return op, [xs, t1, t2], scalar, _P0, (), lambda i: fn(xs[i], t1[i], t2[i], value=values[i])
    return build


_register_family("_foreach_addcmul", _pointwise_value("addcmul", "addcmul"))
_register_family("_foreach_addcdiv", _pointwise_value("addcdiv", "addcdiv"))


def _lerp(overload, inplace, xs, ends, weight):
    fn = _torch_fn("lerp", inplace)
    if overload == "List":
        return "lerp", [xs, ends, weight], _Scalar(), 0, (), lambda i: fn(xs[i], ends[i], weight[i])
    scalar = _Scalar(list(weight) if overload == "ScalarList" else weight)
    return "lerp", [xs, ends], scalar, _Z, (), lambda i: fn(xs[i], ends[i], scalar.host(i))


_register_family("_foreach_lerp", _lerp)


# ---------------------------------------------------------------- norms

def _norm_kind(ord):
    if ord == math.inf:
        return 3
    if ord == -math.inf:
        return 4
    return {2: 2, 1: 1, 0: 5}.get(ord, 0)


def _groups(longest, ls):
    """Work-groups per tensor: enough that each sums about 16 elements per work-item."""
    return max(1, min(256, -(-longest // (ls * 16))))


def _reduce_lists(xs, kind, ord, out_dtype_of, single):
    """Per-tensor reductions of kind ``kind`` (see cl/foreach.cl): a list of 0-dim tensors, views of
    one result vector per dtype."""
    results = [None] * len(xs)
    groups = {}
    for i, x in enumerate(xs):
        # a result dtype other than the input's goes through the single-tensor op: the mixed-type
        # norm program hangs on PoCL 3.0 (not understood yet)
        if (isinstance(x, OclTensor) and x.dtype.is_floating_point and dtypes.supported(x.dtype)
                and out_dtype_of(x) == x.dtype and dense_alike(x)):
            groups.setdefault((x.dtype, out_dtype_of(x), x._index), []).append(i)
        else:
            results[i] = single(i)
    for (in_dtype, out_dtype, index), members in groups.items():
        dev = runtime.device(index)
        ls = local_size(dev)
        ct = dtypes.compute(in_dtype)
        sc = dtypes.SCALAR_CHAR[ct]
        res = empty((len(members),), out_dtype, index)
        g = _groups(max(xs[i].numel() for i in members), ls)
        part = empty((len(members) * g,), torch.float64 if ct == "double" else torch.float32, index) \
            if g > 1 else res
        k = _kernel("fe_norm_partial", in_dtype, out_dtype, dev, "Bii" * SLOTS + "i" + sc + "iBiBi")
        for start in range(0, len(members), SLOTS):
            chunk = members[start:start + SLOTS]
            args = []
            for i in chunk:
                x = xs[i]
                args += (x._buf, x.storage_offset(), x.numel())
            args += (res._buf, 0, 0) * (SLOTS - len(chunk))
            args += (kind, dtypes.py_scalar(ord, ct), g, part._buf, start, res._buf, start)
            k.launch((g * ls, len(chunk)), (ls, 1), tuple(args))
        if g > 1:
            fin = _kernel("fe_norm_finish", in_dtype, out_dtype, dev, "Bii" + sc + "Bi")
            fin.launch((len(members) * ls,), (ls,), (part._buf, g, kind, dtypes.py_scalar(ord, ct), res._buf, 0))
        for j, i in enumerate(members):
            results[i] = alias(res, (), (), j)
    return results


@register(aten._foreach_norm.Scalar)
def foreach_norm(xs, ord=2, dtype=None):
    infer(aten._foreach_norm.Scalar, (xs, ord, dtype))
    ord = scalar_value(ord)
    return _reduce_lists(xs, _norm_kind(ord), float(ord), lambda x: dtype or x.dtype,
                         lambda i: torch.linalg.vector_norm(xs[i], ord, dtype=dtype))


@register(aten._foreach_max.default)
def foreach_max(xs):
    infer(aten._foreach_max.default, (xs,))
    return _reduce_lists(xs, 6, 0.0, lambda x: x.dtype, lambda i: torch.amax(xs[i]))
