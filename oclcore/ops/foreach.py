"""The multi-tensor ops (aten._foreach_*) that torch.optim and clip_grad_norm_
use, on the kernels of cl/foreach.cl.

One launch handles up to ``slots(device)`` tensors of a list: OpenCL 1.2
cannot pass an array of buffers, so the kernel takes that many sets of buffer
arguments (8, 16 or 32, as many as the device's argument space holds: each
launch costs the driver several microseconds) and a list of n tensors costs
ceil(n / slots) launches. The element
expressions are those of pointwise_table.py, so a foreach op computes exactly
what the single-tensor op computes on ocl. Tensors the kernels cannot take
(not dense, operands laid out differently, integer dtypes, mixed dtypes,
CPU operands) go through the single-tensor op, still on the device.

Host cost: what a call does with each tensor depends only on the tensors'
dtypes, shapes, strides and devices, so it is planned (and checked by torch's
meta kernels) once per call signature; later calls read each tensor's buffer
and offset and launch (see "call plans" below).

Also makes torch treat OclTensor as a foreach-capable type, so optimizers and
clip_grad_norm_ choose the multi-tensor path on ocl by default, as on CUDA."""

import itertools
import math
import operator

import torch
import torch.optim.optimizer as _optimizer
import torch.utils._foreach_utils as _foreach_utils

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import ENTRY, OclTensor, alias, contiguous_strides, empty, entry
from . import dtypes, pointwise
from .copy import dense_strides
from .elementwise import scalar_value
from .meta import _sig, infer
from .pointwise_table import OPS as _EXPRESSIONS

aten = torch.ops.aten
SLOT_CHOICES = (32, 16, 8)  # the FE_EACH lists of cl/foreach.cl
_SLOT_BYTES, _TAIL_BYTES = 64, 64  # argument bytes per slot (4 pointers, 5 ints, a scalar) and after them, rounded up
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



_slots = {}


def slots(dev):
    """Tensors per launch on ``dev``: the most of SLOT_CHOICES whose arguments fit its parameter space."""
    n = _slots.get(dev.index)
    if n is None:
        n = _slots[dev.index] = next((s for s in SLOT_CHOICES if s * _SLOT_BYTES + _TAIL_BYTES
                                      <= dev.max_parameter_size), SLOT_CHOICES[-1])
    return n


def _kernel(name, in_dtype, out_dtype, dev, signature):
    key = (name, in_dtype, out_dtype, dev.index, slots(dev))
    k = _kernels.get(key)
    if k is None:
        defines = dict(dtypes.kernel_defines(in_dtype, out_dtype), LS=runtime.work_group_size(dev),
                       SLOTS=slots(dev))
        k = runtime.get_kernel(("types.cl", "pointwise.cl", "foreach.cl"), defines, name, signature, dev,
                               extra_source=_extra_source)
        _kernels[key] = k
    return k


def _elementwise_signature(sc, n):
    return ("BiBiBiBii" + sc) * n + "i" + sc * 3 + "Biii"


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


# ---------------------------------------------------------------- call plans
#
# A plan says which tensors go through the kernel and which through the single-tensor op, the
# geometry of the outputs and of every launch. It is cached under the call's signature: per list
# tensor (dtype, shape, strides, device), other arguments as meta.infer keys them. Plans hold no
# tensors or buffers: a re-bound tensor shows its new buffer at the next call, and a freed one
# is kept alive by nothing. Only a buffer too large for the kernels' int offsets (decided per
# buffer, not per geometry) makes a call plan afresh.

_plans = {}
_PLAN_LIMIT = 2048  # distinct call signatures kept; the cache starts over when full
_UNCACHED = object()
# tensor attributes read faster with torch-function checks off for subclasses (OclTensor has none)
_NoSubclassChecks = torch._C.DisableTorchFunctionSubclass


_entry = operator.attrgetter(ENTRY)
_sig_of, _buf_of, _offset_of, _huge_of = (operator.itemgetter(k) for k in range(4))


def _entries(lst):
    """Per tensor of ``lst`` (all OclTensors) its tensor.entry: an optimizer passes the same
    parameters and states every step, so reading them costs one attribute per tensor."""
    try:
        return list(map(_entry, lst))
    except AttributeError:
        return [entry(t) for t in lst]


def _list_sig(lst):
    """Cache-key part of a list argument: per ocl tensor (dtype, shape, strides, device); the value
    types of a list of floats; _UNCACHED when it holds tensors of other types."""
    if lst and isinstance(lst[0], torch.Tensor):
        try:
            return tuple(map(_sig_of, _entries(lst)))
        except AttributeError:  # a tensor that is not on ocl
            return _UNCACHED
    if all(type(v) is float for v in lst):
        return (float, len(lst))
    return _sig(lst, False)


def _planned(func, args, kwargs=None, floats=False):
    """(plan-cache key, its cached plan or None) of ``func(*args, **kwargs)``; the key is None when
    the call is planned afresh. A planned signature has passed torch's checks. ``floats``: float
    scalars count by value (by default by type: their values change no plan and no check)."""
    key = _key(func, args, kwargs, floats)
    return key, (_plans.get(key) if key is not None else None)


def _key(func, args, kwargs, floats):
    parts = [func]
    seen = {}  # a list passed twice (addcmul_(v, g, g)) is read once
    with _NoSubclassChecks():
        for name, a in list(enumerate(args)) + list(kwargs.items() if kwargs else ()):
            if type(a) is list or type(a) is tuple:
                part = seen.get(id(a))
                if part is None:
                    part = seen[id(a)] = _list_sig(a)
            else:
                part = _sig(a, floats)
            if part is _UNCACHED:
                return None
            parts += (name, part)
    return tuple(parts)


def _plan(key, plan, lists, make):
    """``plan`` (the cached plan for ``key``, or None) or ``make()``, cached unless ``key`` is None
    or a tensor of ``lists[0]`` sits in a buffer too large for a cached decision to hold."""
    if key is None:
        return make()
    if any(map(_huge_of, _entries(lists[0]))):
        return make()
    if plan is None:
        plan = make()
        if len(_plans) >= _PLAN_LIMIT:
            _plans.clear()
        _plans[key] = plan
    return plan


class _Plan:
    """How a call runs: the indices that go through the single-tensor op, the outputs to allocate
    (functional ops), the order in which the other tensors fill kernel slots and, per dtype pair,
    the kernel and its launches (ranges of that order). ``split``: each launch takes consecutive
    list indices only (slot j then reads the device scalar of index first + j)."""

    def __init__(self, op, outs, lists, same_dtype, split, src):
        self.singles, self.allocs, groups = [], [], {}
        single_elements = {k for k, bit in ((1, _YB), (2, _ZB)) if src & bit}  # lists of 0-dim operands
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
                        and all(ops[k].numel() == 1 for k in single_elements)
                        and dense_alike(a, *[t for k, t in enumerate(ops) if k and k not in single_elements],
                                        *([o] if o is not None else [])))
            if not fast:
                self.singles.append(i)
                continue
            if o is None:  # (contiguous outputs are made without strides: faster)
                shape, stride = tuple(a.shape), a.stride()
                stride = None if stride == contiguous_strides(shape) else stride
                self.allocs.append((i, shape, a.dtype, a._index, stride))
            if a.numel():
                groups.setdefault((a.dtype, a.dtype if o is None else o.dtype), []).append(i)
        order, sizes, self.groups = [], [], []
        for (in_dtype, out_dtype), members in groups.items():
            index = lists[0][members[0]]._index
            ct = dtypes.compute(in_dtype)
            dev = runtime.device(index)
            n = slots(dev)
            k = _kernel("fe_" + op, in_dtype, out_dtype, dev, _elementwise_signature(dtypes.SCALAR_CHAR[ct], n))
            launches, begin = [], len(order)
            for i in members:
                m = len(order) - begin  # slots taken in the open launch
                if m == n or (m and split and order[-1] != i - 1):
                    launches.append(self._launch_geometry(sizes, begin, k, n))
                    begin = len(order)
                order.append(i)
                sizes.append(lists[0][i].numel())
            launches.append(self._launch_geometry(sizes, begin, k, n))
            self.groups.append((in_dtype, ct, k, launches))
        self.order, self.sizes = tuple(order), tuple(sizes)
        self.in_order = self.order == tuple(range(len(order)))  # every tensor, in list order

    @staticmethod
    def _launch_geometry(sizes, begin, k, n):
        """(first, last + 1 position in the slot order, global size, local size, unused slots, kernel):
        each launch has a kernel handle of its own, whose arguments stay set from one call to the
        next (a step's parameters fill the same slots every time: only changed ones are set again)."""
        m = len(sizes) - begin
        items = max(1, min(max(sizes[begin:]), _MAX_ITEMS))
        return begin, len(sizes), (items, m), (64 if items >= 64 else 1, 1), n - m, k.clone()

    def run(self, outs, lists, scalar, src, params, single):
        """Computes the call into ``outs``, or in place into ``lists[0]`` when ``outs`` is None
        (entries the plan allocates may be None)."""
        for i in self.singles:
            result = single(i)
            if outs is not None:
                outs[i] = result
        for i, shape, dtype, index, stride in self.allocs:
            outs[i] = empty(shape, dtype, index, stride)
        if not self.groups:
            return
        order = self.order
        with _NoSubclassChecks():
            columns = {}  # id(list) -> its buffers and offsets in slot order; a list repeated is read once

            def column(lst):
                c = columns.get(id(lst))
                if c is None:
                    picked = lst if self.in_order and len(lst) == len(order) else [lst[i] for i in order]
                    entries = _entries(picked)
                    c = columns[id(lst)] = (list(map(_buf_of, entries)), list(map(_offset_of, entries)))
                return c

            l0 = lists[0]
            o = column(l0 if outs is None else outs)
            a = column(l0)
            b = column(lists[1]) if len(lists) > 1 else a
            c = column(lists[2]) if len(lists) > 2 else a
            values, step = scalar.values, scalar.step
            for in_dtype, ct, k, launches in self.groups:
                sv, sv_off, dev_flag = o[0][launches[0][0]], 0, 0
                if scalar.device is not None:
                    s = scalar.device
                    if s.dtype != in_dtype:
                        converted = empty(s.shape, in_dtype, s._index)
                        pointwise.run("copy", converted, [s])
                        s = converted
                    sv, sv_off, dev_flag = s._buf, s.storage_offset(), 1
                conv = float if dtypes.is_float_compute(ct) else int  # (what dtypes.py_scalar does)
                zero = conv(0)
                p = [conv(v) for v in params] + [zero] * (3 - len(params))
                if isinstance(values, (list, tuple)):
                    s = [conv(values[i]) for i in order]
                else:
                    s = itertools.repeat(conv(0.0 if values is None else values))
                # slot arguments of the group, in slot order: o, its offset, a, b, c likewise, numel, scalar
                begin, end = launches[0][0], launches[-1][1]
                slots = list(itertools.chain.from_iterable(zip(
                    o[0][begin:end], o[1][begin:end], a[0][begin:end], a[1][begin:end], b[0][begin:end],
                    b[1][begin:end], c[0][begin:end], c[1][begin:end], self.sizes[begin:end],
                    s[begin:end] if type(s) is list else s)))
                for first, last, gsize, lsize, pad, handle in launches:
                    args = slots[(first - begin) * 10:(last - begin) * 10]
                    if pad:
                        ob = args[0]
                        args += (ob, 0, ob, 0, ob, 0, ob, 0, 0, zero) * pad
                    args += (src, p[0], p[1], p[2], sv, sv_off + order[first] * step, step, dev_flag)
                    handle.launch(gsize, lsize, tuple(args))


def _run(key, plan, op, outs, lists, scalar, src, params, single, same_dtype=True):
    """Computes ``outs[i] = op(lists[0][i], ...)`` for every i (in place into ``lists[0]`` when
    ``outs`` is None): the dense float tensors through the multi-tensor kernel, the others through
    ``single(i)`` (which returns the result tensor). ``outs`` entries may be None for functional
    ops: they are allocated here. ``plan``: the cached plan for ``key`` or None. Returns outs."""
    plan = _plan(key, plan, lists, lambda: _Plan(op, lists[0] if outs is None else outs, lists, same_dtype,
                                                 scalar.device is not None and scalar.step != 0, src))
    plan.run(outs, lists, scalar, src, params, single)
    return outs


# ---------------------------------------------------------------- op families

_X, _Y, _Z, _P0 = 1, 2, 4, 8  # `src` bits: operand taken from the slot's scalar
_YB, _ZB = 16, 32  # `src` bits: operand y / z is the single element of a 0-dim tensor


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
        key, plan = _planned(func, args, kwargs)
        if plan is None:
            _check(func, overload, args, kwargs)
        op, lists, scalar, src, params, single = build(overload, inplace, *args, **kwargs)
        outs = None if inplace else [None] * len(lists[0])
        return _run(key, plan, op, outs, lists, scalar, src, params, single, same_dtype=op != "copy")
    return impl


def _check(func, overload, args, kwargs):
    """torch's own argument checks (list lengths, dtypes, in-place casts) on meta tensors."""
    if overload == "Tensor" and func._schema.name.split("::")[1].startswith(("_foreach_addc",)):
        # scalars: a 1-D tensor of per-tensor values; check as the equivalent ScalarList
        scalars = args[3] if len(args) > 3 else kwargs["scalars"]
        ov = getattr(torch.ops.aten, func._schema.name.split("::")[1]).ScalarList
        infer(ov, tuple(args[:3]) + ([1.0] * scalars.numel(),))
        return
    infer(func, args, kwargs, floats=False)


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


def _checked(func, args):
    """``_planned(func, args)``, after torch's checks unless the signature is planned."""
    key, plan = _planned(func, args)
    if plan is None:
        infer(func, args, floats=False)
    return key, plan


@register(aten._foreach_copy_.default)
def foreach_copy_(dsts, srcs, non_blocking=False):
    key, plan = _checked(aten._foreach_copy_.default, (dsts, srcs, non_blocking))
    _run(key, plan, "copy", list(dsts), [srcs], _Scalar(), 0, (), lambda i: dsts[i].copy_(srcs[i]),
         same_dtype=False)


@register(aten._foreach_copy.default)
def foreach_copy(dsts, srcs, non_blocking=False):
    key, plan = _checked(aten._foreach_copy.default, (dsts, srcs, non_blocking))
    outs = [empty(d.shape, d.dtype, d._index, d.stride()) if isinstance(d, OclTensor) else None for d in dsts]
    return _run(key, plan, "copy", outs, [srcs], _Scalar(), 0, (), lambda i: dsts[i].clone().copy_(srcs[i]),
                same_dtype=False)


def _binary(op, torch_name, has_alpha=False):
    """x op y with y a tensor list (List), one scalar (Scalar), a scalar per tensor
    (ScalarList) or a 0-dim tensor (Tensor)."""
    def build(overload, inplace, xs, other, alpha=1):
        params = (alpha,) if has_alpha else ()
        kw = {"alpha": alpha} if has_alpha and alpha != 1 else {}
        fn = _torch_fn(torch_name, inplace)
        if overload == "List":
            # a list of 0-dim tensors (capturable Adam's bias corrections) is read one element per slot
            src = _YB if other and all(isinstance(t, OclTensor) and t.dim() == 0 for t in other) else 0
            return op, [xs, other], _Scalar(), src, params or (1,), lambda i: fn(xs[i], other[i], **kw)
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


class _ReducePlan:
    """How a per-tensor reduction runs: the indices that go through the single-tensor op and,
    per (dtype, result dtype, device), the members, work-groups per tensor, kernels and launches
    (ranges of the members)."""

    def __init__(self, xs, out_dtype_of):
        self.singles, groups = [], {}
        for i, x in enumerate(xs):
            # a result dtype other than the input's goes through the single-tensor op: the mixed-type
            # norm program hangs on PoCL 3.0 (not understood yet)
            if (isinstance(x, OclTensor) and x.dtype.is_floating_point and dtypes.supported(x.dtype)
                    and out_dtype_of(x) == x.dtype and dense_alike(x)):
                groups.setdefault((x.dtype, out_dtype_of(x), x._index), []).append(i)
            else:
                self.singles.append(i)
        self.groups = []
        for (in_dtype, out_dtype, index), members in groups.items():
            dev = runtime.device(index)
            ls = runtime.work_group_size(dev)
            ct = dtypes.compute(in_dtype)
            sc = dtypes.SCALAR_CHAR[ct]
            sizes = tuple(xs[i].numel() for i in members)
            g = _groups(max(sizes), ls)
            part_dtype = torch.float64 if ct == "double" else torch.float32
            n = slots(dev)
            k = _kernel("fe_norm_partial", in_dtype, out_dtype, dev, "Bii" * n + "i" + sc + "iBiBi")
            fin = _kernel("fe_norm_finish", in_dtype, out_dtype, dev, "Bii" + sc + "Bi") if g > 1 else None
            launches = [(start, min(start + n, len(members))) for start in range(0, len(members), n)]
            launches = [(s, e, (g * ls, e - s), (ls, 1), n - (e - s), k.clone()) for s, e in launches]
            self.groups.append((tuple(members), sizes, out_dtype, index, ct, ls, g, part_dtype, fin, launches))

    def run(self, xs, kind, ord, single):
        """The reductions of ``xs``: 0-dim tensors, views of one result vector per group."""
        results = [None] * len(xs)
        for i in self.singles:
            results[i] = single(i)
        for members, sizes, out_dtype, index, ct, ls, g, part_dtype, fin, launches in self.groups:
            res = empty((len(members),), out_dtype, index)
            part = empty((len(members) * g,), part_dtype, index) if g > 1 else res
            o = dtypes.py_scalar(ord, ct)
            with _NoSubclassChecks():
                slots = list(itertools.chain.from_iterable(zip(
                    [xs[i]._buf for i in members], [xs[i].storage_offset() for i in members], sizes)))
            for start, end, gsize, lsize, pad, handle in launches:
                args = slots[start * 3:end * 3] + [res._buf, 0, 0] * pad
                args += (kind, o, g, part._buf, start, res._buf, start)
                handle.launch(gsize, lsize, tuple(args))
            if fin is not None:
                fin.launch((len(members) * ls,), (ls,), (part._buf, g, kind, o, res._buf, 0))
            for j, i in enumerate(members):
                results[i] = alias(res, (), (), j)
        return results


def _reduce_lists(func, args, kind, ord, out_dtype_of, single):
    """Per-tensor reductions of kind ``kind`` (see cl/foreach.cl) of ``args[0]``, after torch's
    checks of ``func(*args)``: a list of 0-dim tensors, views of one result vector per dtype."""
    xs = args[0]
    key, plan = _planned(func, args, floats=True)  # the norm's order decides a check
    if plan is None:
        infer(func, args)
    plan = _plan(key, plan, [xs], lambda: _ReducePlan(xs, out_dtype_of))
    return plan.run(xs, kind, ord, single)


@register(aten._foreach_norm.Scalar)
def foreach_norm(xs, ord=2, dtype=None):
    ord = scalar_value(ord)
    return _reduce_lists(aten._foreach_norm.Scalar, (xs, ord, dtype), _norm_kind(ord), float(ord),
                         lambda x: dtype or x.dtype, lambda i: torch.linalg.vector_norm(xs[i], ord, dtype=dtype))


@register(aten._foreach_max.default)
def foreach_max(xs):
    return _reduce_lists(aten._foreach_max.default, (xs,), 6, 0.0, lambda x: x.dtype, lambda i: torch.amax(xs[i]))
