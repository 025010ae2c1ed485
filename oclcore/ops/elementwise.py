"""aten elementwise ops (arithmetic, comparison, logic, math, activations and
their backward ops) on the pointwise kernels.

Each aten op is described once by a function that maps its arguments to
(kernel op, inputs, params); functional, in-place and out= overloads are
derived from that one description."""

import math

import torch

from ..torch.dispatch import cpu_fallback, register
from ..torch.tensor import OclTensor, contiguous_strides, empty, entry, resize_out
from . import dtypes, pointwise
from .meta import check_input_overlap, check_overlap, infer

aten = torch.ops.aten
_INF = math.inf


def _kind(func):
    for a in func._schema.arguments:
        if a.alias_info is not None and a.alias_info.is_write:
            return "out" if a.kwarg_only else "inplace"
    return "functional"


def scalar_value(x):
    """A Python number for scalars and 0-dim CPU tensors; tensors on ocl are returned as they are."""
    if isinstance(x, torch.Tensor) and not isinstance(x, OclTensor):
        return x.item()
    return x


def _promoted_compute(inputs):
    """Compute type of the inputs' promoted dtype (comparisons compute there, store bool)."""
    if len(inputs) == 1:
        return dtypes.compute(inputs[0].dtype)
    return dtypes.compute(torch.result_type(inputs[0], inputs[1]))


def _index(args):
    for x in args:
        if isinstance(x, OclTensor):
            return x._index
    return 0


def _supported(meta, args):
    if not dtypes.supported(meta.dtype):
        return False
    for x in args:
        if isinstance(x, OclTensor) and not dtypes.supported(x.dtype):
            return False
    return True


_NUMBERS = (float, int, bool)


def _call_key(args, kwargs):
    """What decides an elementwise call's output geometry, dtype and kernel: tensor dtypes,
    shapes, strides and devices, and the types of Python numbers. None for calls with other
    arguments (CPU tensors, lists), which always take the checked path."""
    key = []
    for a in args:
        t = type(a)
        if t is OclTensor:
            key.append(entry(a)[0])
        elif t in _NUMBERS:
            key.append(t)
        else:
            return None
    for k, v in kwargs.items():
        t = type(v)
        if t in _NUMBERS:
            key.append((k, t))
        elif v is None or t is str:
            key.append((k, v))
        else:
            return None
    return tuple(key)


def _make(func, describe, compare):
    kind = _kind(func)
    checked = {}  # call key -> (output shape, stride, dtype, compute type, kernel op, launch plan)

    def impl(*args, **kwargs):
        key = _call_key(args, kwargs) if kind != "out" else None
        hit = checked.get(key) if key is not None else None
        if hit is not None:  # torch's checks passed for this signature before
            shape, stride, dtype, ct, plan_op, plan = hit
            out = args[0] if kind == "inplace" else empty(shape, dtype, args[0]._index if type(args[0]) is
                                                           OclTensor else _index(args), stride)
            op, inputs, params = describe(*args, **kwargs)
            if kind == "inplace":  # (out's own geometry passed check_overlap when this key was checked)
                check_input_overlap(out, inputs)
            if plan is not None and op == plan_op:  # (some ops pick a kernel by a scalar's value)
                return pointwise.launch(plan, out, inputs, params, ct)
            return pointwise.run(op, out, inputs, params, ct)
        meta = infer(func, args, kwargs, floats=False)
        if not _supported(meta, args):  # e.g. complex or uint16: torch's CPU kernels, with a warning
            return cpu_fallback(func, args, kwargs)
        if kind == "out":
            kwargs = dict(kwargs)
            out = kwargs.pop("out")
            resize_out(out, meta.shape)
        elif kind == "inplace":
            out = args[0]
        else:
            out = empty(meta.shape, meta.dtype, _index(args), meta.stride())
        op, inputs, params = describe(*args, **kwargs)
        if kind != "functional":
            check_overlap(out, inputs)
        inputs = [scalar_value(x) for x in inputs]
        ct = _promoted_compute(inputs) if compare else pointwise.compute_type(out, inputs)
        plan = None
        if out.numel():
            plan = pointwise.prepare(op, out, inputs, ct)
            pointwise.launch(plan, out, inputs, params, ct)
        if key is not None:
            shape, stride = tuple(meta.shape), meta.stride()
            stride = None if stride == contiguous_strides(shape) else stride  # (made without strides: faster)
            checked[key] = (shape, stride, meta.dtype, ct, op, None if plan is None or plan.big else plan)
        return out

    return impl


# functional aten overload -> (describe, compare): what graph fusion (oclcore.compile) reads
DESCRIPTIONS = {}


def define(name, describe, compare=False, inplace=True):
    """Registers every overload of aten ``name`` (and ``name_``) through ``describe``."""
    packets = [getattr(aten, name)]
    if inplace and hasattr(aten, name + "_"):
        packets.append(getattr(aten, name + "_"))
    for packet in packets:
        for ov in packet.overloads():
            func = getattr(packet, ov)
            register(func)(_make(func, describe, compare))
            if _kind(func) == "functional":
                DESCRIPTIONS[func] = (describe, compare)


# ---- unary math: the kernel op has the aten name ----
for _name in ("abs", "neg", "sign", "sgn", "exp", "exp2", "log", "log2", "log10", "log1p", "expm1",
              "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
              "cosh", "tanh", "sigmoid", "erf", "erfc", "erfinv", "lgamma", "digamma", "floor", "ceil",
              "trunc", "frac", "relu", "silu", "mish", "hardswish", "hardsigmoid", "square"):
    define(_name, lambda x, _op=_name: (_op, [x], ()))

define("i0", lambda x: ("i0", [x], ()))
define("special_i1", lambda x: ("i1", [x], ()), inplace=False)
define("polygamma", lambda n, x: ("polygamma", [x], (n,)), inplace=False)
register(aten.polygamma_.default)(_make(aten.polygamma_.default, lambda x, n: ("polygamma", [x], (n,)), False))
define("special_zeta", lambda x, q: ("zeta", [x, q], ()), inplace=False)

define("bitwise_not", lambda x: ("bool_not" if x.dtype is torch.bool else "bitwise_not", [x], ()))
# The result is bool, but the test runs in the input's type.
define("isnan", lambda x: ("isnan", [x], ()), compare=True, inplace=False)
define("isinf", lambda x: ("isinf", [x], ()), compare=True, inplace=False)
define("isfinite", lambda x: ("isfinite", [x], ()), compare=True, inplace=False)
define("signbit", lambda x: ("signbit", [x], ()), compare=True, inplace=False)
define("logical_not", lambda x: ("logical_not", [x], ()), compare=True)


def _round(x, decimals=0):
    if decimals == 0:
        return "round", [x], ()
    return "round_decimals", [x], (10.0 ** decimals,)


define("round", _round)


def _nan_to_num(x, nan=None, posinf=None, neginf=None):
    finfo = torch.finfo(x.dtype) if x.dtype.is_floating_point else None
    big = finfo.max if finfo else 0
    return ("nan_to_num", [x], (0.0 if nan is None else nan, big if posinf is None else posinf,
                                -big if neginf is None else neginf))


define("nan_to_num", _nan_to_num)

# ---- activations ----
define("leaky_relu", lambda x, negative_slope=0.01: ("leaky_relu", [x], (negative_slope,)))
define("elu", lambda x, alpha=1.0, scale=1.0, input_scale=1.0: ("elu", [x], (alpha, scale, input_scale)))
define("gelu", lambda x, approximate="none": ("gelu" if approximate == "none" else "gelu_tanh", [x], ()))
define("hardtanh", lambda x, min_val=-1.0, max_val=1.0: ("hardtanh", [x], (min_val, max_val)))
define("softplus", lambda x, beta=1.0, threshold=20.0: ("softplus", [x], (beta, threshold)))
define("threshold", lambda x, threshold, value: ("threshold", [x], (threshold, value)))
define("threshold_backward", lambda g, x, threshold: ("threshold_backward", [g, x], (threshold,)), inplace=False)
define("hardshrink_backward", lambda g, x, lambd: ("shrink_backward", [g, x], (lambd,)), inplace=False)
define("softshrink_backward", lambda g, x, lambd: ("shrink_backward", [g, x], (lambd,)), inplace=False)
define("sigmoid_backward", lambda g, y: ("sigmoid_backward", [g, y], ()), inplace=False)
define("tanh_backward", lambda g, y: ("tanh_backward", [g, y], ()), inplace=False)
define("silu_backward", lambda g, x: ("silu_backward", [g, x], ()), inplace=False)
define("mish_backward", lambda g, x: ("mish_backward", [g, x], ()), inplace=False)
define("hardswish_backward", lambda g, x: ("hardswish_backward", [g, x], ()), inplace=False)
define("hardsigmoid_backward", lambda g, x: ("hardsigmoid_backward", [g, x], ()), inplace=False)
define("gelu_backward", lambda g, x, approximate="none": (
    "gelu_backward" if approximate == "none" else "gelu_tanh_backward", [g, x], ()), inplace=False)
define("hardtanh_backward", lambda g, x, min_val, max_val: ("hardtanh_backward", [g, x], (min_val, max_val)),
       inplace=False)
define("leaky_relu_backward", lambda g, x, negative_slope, self_is_result: (
    "leaky_relu_backward", [g, x], (negative_slope,)), inplace=False)
define("elu_backward", lambda g, alpha, scale, input_scale, is_result, x: (
    "elu_backward_result" if is_result else "elu_backward_input", [g, x], (alpha, scale, input_scale)),
    inplace=False)
define("softplus_backward", lambda g, x, beta, threshold: ("softplus_backward", [g, x], (beta, threshold)),
       inplace=False)
define("log_sigmoid_backward", lambda g, x, buffer: ("log_sigmoid_backward", [g, x], ()), inplace=False)


@register(aten.log_sigmoid_forward.default)
def log_sigmoid_forward(x):
    meta = infer(aten.log_sigmoid.default, (x,))
    out = empty(meta.shape, meta.dtype, x._index, meta.stride())
    pointwise.run("log_sigmoid", out, [x])
    return out, empty((0,), x.dtype, x._index)


# ---- binary arithmetic ----
define("add", lambda x, y, alpha=1: ("add", [x, y], (alpha,)))
define("sub", lambda x, y, alpha=1: ("sub", [x, y], (alpha,)))
define("rsub", lambda x, y, alpha=1: ("rsub", [x, y], (alpha,)), inplace=False)
define("mul", lambda x, y: ("mul", [x, y], ()))


def _div(x, y, rounding_mode=None):
    op = {None: "div", "trunc": "div_trunc", "floor": "div_floor"}[rounding_mode]
    return op, [x, y], ()


define("div", _div)
define("floor_divide", lambda x, y: ("div_floor", [x, y], ()))
define("fmod", lambda x, y: ("fmod", [x, y], ()))
define("remainder", lambda x, y: ("remainder", [x, y], ()))
define("maximum", lambda x, y: ("maximum", [x, y], ()), inplace=False)
define("minimum", lambda x, y: ("minimum", [x, y], ()), inplace=False)
define("fmax", lambda x, y: ("fmax", [x, y], ()), inplace=False)
define("fmin", lambda x, y: ("fmin", [x, y], ()), inplace=False)
define("atan2", lambda x, y: ("atan2", [x, y], ()))
define("hypot", lambda x, y: ("hypot", [x, y], ()))
define("copysign", lambda x, y: ("copysign", [x, y], ()))
define("xlogy", lambda x, y: ("xlogy", [x, y], ()))


def _pow(x, exponent):
    if not isinstance(x, torch.Tensor) or (not isinstance(x, OclTensor) and x.dim() == 0
                                           and isinstance(exponent, OclTensor)):
        base = scalar_value(x)
        if isinstance(exponent, OclTensor) and exponent.dtype.is_floating_point or isinstance(base, float):
            return "pow_scalar_base", [exponent], (base,)
        return "pow", [base, exponent], ()
    e = scalar_value(exponent)
    if not isinstance(e, torch.Tensor) and x.dtype.is_floating_point:
        if e == 2:
            return "square", [x], ()
        if e == 1:
            return "copy", [x], ()
        return "pow_scalar_exp", [x], (e,)
    return "pow", [x, e], ()


define("pow", _pow)

for _name in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    define(_name, lambda x, y, _op=_name: (_op, [x, y], ()), compare=True)
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
    define(_name, lambda x, y, _op=_name: (_op, [x, y], ()))
define("bitwise_left_shift", lambda x, y: ("lshift", [x, y], ()))
define("bitwise_right_shift", lambda x, y: ("rshift", [x, y], ()))
define("__lshift__", lambda x, y: ("lshift", [x, y], ()), inplace=False)
define("__rshift__", lambda x, y: ("rshift", [x, y], ()), inplace=False)

# ---- ternary ----
define("where", lambda c, x, y: ("where", [c, x, y], ()), inplace=False)
define("lerp", lambda x, end, weight: ("lerp", [x, end, weight], ()))
define("addcmul", lambda x, t1, t2, value=1: ("addcmul", [x, t1, t2], (value,)))
define("addcdiv", lambda x, t1, t2, value=1: ("addcdiv", [x, t1, t2], (value,)))
define("masked_fill", lambda x, mask, value: ("masked_fill", [x, mask], (scalar_value(value),)))


def _clamp(x, min=None, max=None):
    lo, hi = scalar_value(min), scalar_value(max)
    if isinstance(lo, OclTensor) or isinstance(hi, OclTensor):
        return "clamp_tensor", [x, -_INF if lo is None else lo, _INF if hi is None else hi], ()
    if not x.dtype.is_floating_point:
        info = torch.iinfo(x.dtype) if x.dtype is not torch.bool else None
        lo = (info.min if info else 0) if lo is None else lo
        hi = (info.max if info else 1) if hi is None else hi
        return "clamp_scalar", [x], (lo, hi)
    return "clamp_scalar", [x], (-_INF if lo is None else lo, _INF if hi is None else hi)


define("clamp", _clamp)
define("clip", _clamp)
define("clamp_min", lambda x, m: _clamp(x, m, None))
define("clamp_max", lambda x, m: _clamp(x, None, m))
