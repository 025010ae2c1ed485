"""Pointwise ops (oclcore/ops/elementwise.py over the cl/pointwise.cl template)
against torch CPU: forward and backward, broadcasting, scalars, 0-dim CPU
tensors, in-place and out= forms, non-contiguous and empty inputs, dtypes and
type promotion, and torch's errors.

Each distinct (operand dtypes, result dtype) is one program build (~3.5 s on
PoCL, cached on disk afterwards), so the default run keeps to a few dtype
signatures; the exhaustive sweeps are marked slow."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close
from oclcore import runtime

FLOAT_TOL = dict(rtol=1e-4, atol=1e-5)
INT_DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]
ALL_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64] + INT_DTYPES + [torch.bool]
LOW_TOL = {torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2)}


def make(shape, domain="any", dtype=torch.float32, seed=0):
    """A CPU tensor whose values suit the op's domain."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    if domain == "pos":
        x = x.abs() + 0.1
    elif domain == "unit":
        x = torch.tanh(x) * 0.9
    elif domain == "wide":
        x = x * 5
    elif domain == "gt1":
        x = x.abs() + 1.1
    return x.to(dtype)


def noncontig(x):
    """The same values as ``x`` (2-D) in a transposed layout."""
    return x.t().contiguous().t()


def to_ocl(x, requires_grad=False):
    y = x.detach().to(DEVICE)
    return y.requires_grad_(requires_grad) if requires_grad else y


# name: (function, input domain, differentiable)
UNARY = {
    "abs": (torch.abs, "any", True),
    "neg": (torch.neg, "any", True),
    "sign": (torch.sign, "any", True),
    "exp": (torch.exp, "any", True),
    "log": (torch.log, "pos", True),
    "log1p": (torch.log1p, "pos", True),
    "expm1": (torch.expm1, "any", True),
    "sqrt": (torch.sqrt, "pos", True),
    "rsqrt": (torch.rsqrt, "pos", True),
    "reciprocal": (torch.reciprocal, "pos", True),
    "sin": (torch.sin, "wide", True),
    "cos": (torch.cos, "wide", True),
    "tan": (torch.tan, "unit", True),
    "tanh": (torch.tanh, "wide", True),
    "sigmoid": (torch.sigmoid, "wide", True),
    "erf": (torch.erf, "any", True),
    "floor": (torch.floor, "wide", True),
    "ceil": (torch.ceil, "wide", True),
    "round": (torch.round, "wide", True),
    "round_decimals": (lambda x: torch.round(x, decimals=2), "wide", False),
    "trunc": (torch.trunc, "wide", True),
    "frac": (torch.frac, "wide", True),
    "square": (torch.square, "any", True),
    "exp2": (torch.exp2, "any", True),
    "log2": (torch.log2, "pos", True),
    "log10": (torch.log10, "pos", True),
    "asin": (torch.asin, "unit", True),
    "acos": (torch.acos, "unit", True),
    "atan": (torch.atan, "wide", True),
    "sinh": (torch.sinh, "any", True),
    "cosh": (torch.cosh, "any", True),
    "erfc": (torch.erfc, "any", True),
    "erfinv": (torch.erfinv, "unit", True),
    "lgamma": (torch.lgamma, "wide", True),  # (its gradient is digamma)
    "digamma": (torch.digamma, "wide", True),   # (its gradient is polygamma(1, x))
    "polygamma1": (lambda x: torch.polygamma(1, x), "wide", True),
    "polygamma3": (lambda x: torch.polygamma(3, x), "pos", True),
    "i0": (torch.i0, "wide", True),               # (its gradient is i1)
    "i1": (torch.special.i1, "wide", True),
    "relu": (torch.relu, "any", True),
    "relu6": (F.relu6, "wide", True),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), "any", True),
    "elu": (lambda x: F.elu(x, alpha=1.3), "any", True),
    "selu": (F.selu, "any", True),
    "celu": (lambda x: F.celu(x, alpha=0.7), "any", True),
    "gelu": (F.gelu, "wide", True),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), "wide", True),
    "silu": (F.silu, "wide", True),
    "mish": (F.mish, "wide", True),
    "hardswish": (F.hardswish, "wide", True),
    "hardsigmoid": (F.hardsigmoid, "wide", True),
    "hardtanh": (lambda x: F.hardtanh(x, -1.5, 2.0), "wide", True),
    "softplus": (F.softplus, "wide", True),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=4.0), "wide", True),
    "logsigmoid": (F.logsigmoid, "wide", True),
    "threshold": (lambda x: F.threshold(x, 0.3, -2.0), "any", True),
    "hardshrink": (lambda x: F.hardshrink(x, 0.4), "any", True),
    "rrelu_eval": (lambda x: F.rrelu(x, 0.1, 0.3), "any", True),
    "softshrink": (lambda x: F.softshrink(x, 0.4), "any", True),
    "nan_to_num": (lambda x: torch.nan_to_num(x / (x.abs() > 0.5)), "any", False),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_forward_backward(name, no_fallbacks):
    fn, domain, grad = UNARY[name]
    x = noncontig(make((7, 5), domain))[:, 1:].float()  # non-contiguous and offset
    g = make(x.shape, seed=1).float()
    xc = x.clone().requires_grad_(grad)
    xo = to_ocl(x)
    xo = xo.requires_grad_(grad)
    y, yo = fn(xc), fn(xo)
    assert_close(yo, y, **FLOAT_TOL)
    if grad:
        y.backward(g)
        yo.backward(g.to(DEVICE))
        assert_close(xo.grad, xc.grad, **FLOAT_TOL)


def test_rrelu_training_draws_slopes_in_range_and_backprops_them(no_fallbacks):
    torch.manual_seed(0)
    x = torch.randn(40, 50)
    xo = x.to(DEVICE).requires_grad_()
    y = F.rrelu(xo, 0.1, 0.3, training=True)
    y.backward(torch.ones_like(y))
    y, grad, neg = y.detach().cpu(), xo.grad.cpu(), x < 0
    slopes = y[neg] / x[neg]
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6 and slopes.std() > 0.03
    assert torch.equal(y[~neg], x[~neg])
    assert_close(grad, torch.where(neg, y / x, torch.ones_like(x)))


def test_gamma_functions_at_poles_signed_zeros_and_large_arguments(no_fallbacks):
    x = torch.tensor([0.0, -0.0, -1.0, -2.0, -2.5, -0.3, 1e-6, 0.5, 1.0, 2.0, 9.99, 10.0, 10.5, 1e4, 1e20,
                      math.inf, -math.inf, math.nan])
    for fn in (torch.lgamma, torch.digamma):
        assert_close(fn(x.to(DEVICE)), fn(x), rtol=2e-6, atol=1e-6)
        xd = x.double()
        if runtime.device(0).fp64:
            assert_close(fn(xd.to(DEVICE)), fn(xd), rtol=1e-12, atol=1e-12)


def test_polygamma_zeta_and_bessel_at_edges_and_to_double_precision(no_fallbacks):
    """polygamma of orders 0-5 and the Hurwitz zeta behind orders >= 2 at poles, negative
    arguments (float64 for orders >= 2), large ones, infinities and NaN; I0 and I1 across their power-series and
    asymptotic ranges up to overflow; in float32 and (where the device has it) float64."""
    x = torch.tensor([0.0, -0.0, -1.0, -2.5, -0.3, 1e-6, 0.5, 1.0, 2.0, 9.99, 10.0, 10.5, 1e4, 1e20,
                      math.inf, -math.inf, math.nan])
    s = torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0, 7.5, 2.0, 3.0, 4.0, 2.0, 30.0, math.inf, math.nan])
    q = torch.tensor([1.0, 2.0, 0.5, -1.0, -2.5, 3.0, 1e-3, 1e6, -0.5, math.inf, 1.0, 2.0, 1.0])
    b = torch.cat([torch.linspace(-100, 100, 401), torch.tensor([0.0, 14.999, 15.0, 15.001, 88.0, 89.0,
                                                                   100.0, math.inf, -math.inf, math.nan])])
    xd = torch.linspace(-20, 60, 1601, dtype=torch.float64)
    for dtype, tol in ((torch.float32, 2e-6), (torch.float64, 1e-12)):
        if dtype is torch.float64 and not runtime.device(0).fp64:
            continue
        for n in range(6):
            for v in (x, xd):
                if dtype is torch.float32 and n >= 2:
                    # zeta's sum cancels at negative arguments: torch's CPU kernel accumulates float32 in
                    # float64 there, CUDA's (and this one) in float32; float64 covers them below
                    v = v[~(v < 0)]
                v = v.to(dtype)
                got, want = torch.polygamma(n, v.to(DEVICE)).cpu(), torch.polygamma(n, v)
                tiny = want.abs() < torch.finfo(dtype).tiny   # (a device may flush subnormal results to 0)
                assert (got[tiny].abs() < torch.finfo(dtype).tiny).all()
                assert_close(got[~tiny], want[~tiny], rtol=tol * 50, atol=0)
        assert_close(torch.special.zeta(s.to(dtype).to(DEVICE), q.to(dtype).to(DEVICE)),
                     torch.special.zeta(s.to(dtype), q.to(dtype)), rtol=tol, atol=0)
        for fn in (torch.i0, torch.special.i1):
            assert_close(fn(b.to(dtype).to(DEVICE)), fn(b.to(dtype)), rtol=tol, atol=0)
    # the forms: scalar arguments of zeta, polygamma_ in place and out=, and torch's error for n < 0
    q5 = torch.tensor([0.5, 1.5, 3.0])
    assert_close(torch.special.zeta(2.0, q5.to(DEVICE)), torch.special.zeta(2.0, q5), rtol=2e-6, atol=0)
    assert_close(torch.special.zeta(q5.to(DEVICE) + 1, 2.0), torch.special.zeta(q5 + 1, 2.0), rtol=2e-6, atol=0)
    t = q5.to(DEVICE)
    t.polygamma_(2)
    assert_close(t, torch.polygamma(2, q5), rtol=2e-6, atol=0)
    out = torch.empty(3, device=DEVICE)
    torch.polygamma(1, q5.to(DEVICE), out=out)
    assert_close(out, torch.polygamma(1, q5), rtol=2e-6, atol=0)
    with pytest.raises(RuntimeError, match="polygamma\\(n, x\\) does not support negative n"):
        torch.polygamma(-1, q5.to(DEVICE))


def test_signbit_of_floats_and_integers(no_fallbacks):
    x = torch.tensor([0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan, -math.nan])
    assert torch.equal(torch.signbit(x.to(DEVICE)).cpu(), torch.signbit(x))
    i = torch.tensor([0, -3, 7], dtype=torch.int32)
    assert torch.equal(torch.signbit(i.to(DEVICE)).cpu(), torch.signbit(i))


def test_erfinv_edges_and_precision(no_fallbacks):
    """erfinv at and beyond +-1, near the ends and near 0, to float32 (and float64) precision."""
    x = torch.tensor([0.0, -0.0, 1.0, -1.0, 1.5, -2.0, math.nan, 1e-8, 0.5, -0.999999, 0.9999999])
    assert_close(torch.erfinv(x.to(DEVICE)), torch.erfinv(x), rtol=1e-6, atol=0)
    if runtime.device(0).fp64:
        xd = torch.linspace(-0.999999, 0.999999, 1001, dtype=torch.float64)
        assert_close(torch.erfinv(xd.to(DEVICE)), torch.erfinv(xd), rtol=1e-9, atol=0)


def test_activation_special_values(no_fallbacks):
    x = torch.tensor([-100.0, -20.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 6.0, 20.0, 100.0, math.inf, -math.inf, math.nan])
    xo = x.to(DEVICE)
    for fn in (torch.sigmoid, torch.tanh, F.softplus, F.logsigmoid, F.silu, F.mish, F.elu, F.relu6,
               F.hardswish, F.hardsigmoid, torch.relu, torch.sign, torch.abs, F.leaky_relu, F.hardtanh,
               lambda t: torch.threshold(t, 0.0, 1.0)):
        assert_close(fn(xo), fn(x), **FLOAT_TOL)
    finite = x[:10]  # torch's CPU gelu(inf) is nan, a quirk not worth copying
    assert_close(F.gelu(finite.to(DEVICE)), F.gelu(finite), **FLOAT_TOL)
    for fn in (torch.isnan, torch.isinf, torch.isfinite, torch.nan_to_num):
        assert_close(fn(xo), fn(x))


def test_round_half_to_even(no_fallbacks):
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
    assert_close(torch.round(x.to(DEVICE)), torch.round(x))


# name: (function, domain of the second operand, differentiable)
BINARY = {
    "add": (torch.add, "any", True),
    "add_alpha": (lambda a, b: torch.add(a, b, alpha=-2.5), "any", True),
    "sub": (torch.sub, "any", True),
    "sub_alpha": (lambda a, b: torch.sub(a, b, alpha=0.5), "any", True),
    "rsub": (lambda a, b: torch.rsub(a, b, alpha=2), "any", True),
    "mul": (torch.mul, "any", True),
    "div": (torch.div, "pos", True),
    "div_trunc": (lambda a, b: torch.div(a, b, rounding_mode="trunc"), "pos", False),
    "div_floor": (lambda a, b: torch.div(a, b, rounding_mode="floor"), "pos", False),
    "floor_divide": (torch.floor_divide, "pos", False),
    "fmod": (torch.fmod, "pos", True),
    "remainder": (torch.remainder, "pos", True),
    "pow": (lambda a, b: torch.pow(a.abs() + 0.5, b), "any", True),
    "maximum": (torch.maximum, "any", True),
    "minimum": (torch.minimum, "any", True),
    "fmax": (torch.fmax, "any", True),
    "fmin": (torch.fmin, "any", True),
    "atan2": (torch.atan2, "any", True),
    "hypot": (torch.hypot, "any", True),
    "copysign": (torch.copysign, "any", True),
    "xlogy": (torch.xlogy, "pos", True),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcast_forward_backward(name, no_fallbacks):
    fn, domain, grad = BINARY[name]
    a = make((3, 1, 5), "wide")
    b = noncontig(make((5, 4), domain, seed=2)).t()  # (4, 5), non-contiguous
    a, b = a.float(), b.float()
    ac, bc = a.clone().requires_grad_(grad), b.clone().requires_grad_(grad)
    ao, bo = to_ocl(a, grad), to_ocl(b, grad)
    y, yo = fn(ac, bc), fn(ao, bo)
    assert y.shape == (3, 4, 5)
    assert_close(yo, y, **FLOAT_TOL)
    if grad:
        g = make(y.shape, seed=3).float()
        y.backward(g)
        yo.backward(g.to(DEVICE))
        assert_close(ao.grad, ac.grad, **FLOAT_TOL)
        assert_close(bo.grad, bc.grad, **FLOAT_TOL)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "remainder", "atan2"])
@pytest.mark.parametrize("scalar", [2, -1.5, "cpu0d", "cpu0d_int"], ids=str)
def test_binary_with_scalars(name, scalar, no_fallbacks):
    fn = BINARY[name][0]
    s = {"cpu0d": torch.tensor(0.75), "cpu0d_int": torch.tensor(3)}.get(scalar, scalar)
    x = make((4, 6), "pos").float()
    xo = to_ocl(x)
    if name in ("maximum", "atan2") and not isinstance(s, torch.Tensor):
        # torch takes no Python scalar here: the same error as on the CPU
        with pytest.raises(TypeError) as cpu_error:
            fn(x, s)
        with pytest.raises(TypeError, match=re.escape(str(cpu_error.value).split("(")[0])):
            fn(xo, s)
        return
    assert_close(fn(xo, s), fn(x, s), **FLOAT_TOL)
    if name != "pow" or isinstance(s, torch.Tensor):
        assert_close(fn(s, xo), fn(s, x), **FLOAT_TOL)


def test_reflected_operators_with_scalars(no_fallbacks):
    x = make((3, 4), "pos").float()
    xo = to_ocl(x)
    for fn in (lambda t: 2 - t, lambda t: 3 / t, lambda t: 2 ** t, lambda t: 1.5 * t + 1, lambda t: -t,
               lambda t: 7 % t, lambda t: 5 // t, lambda t: t ** 0.5, lambda t: t ** 2, lambda t: t ** -1,
               lambda t: t ** 1):
        assert_close(fn(xo), fn(x), **FLOAT_TOL)


COMPARE = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
           "logical_and": torch.logical_and, "logical_or": torch.logical_or, "logical_xor": torch.logical_xor}


@pytest.mark.parametrize("name", sorted(COMPARE))
def test_comparison_and_logical(name, no_fallbacks):
    fn = COMPARE[name]
    a = torch.tensor([[0.0, 1.0, -2.0, 3.5, math.nan, 0.0]]).expand(3, 6)
    b = torch.tensor([[0.0], [1.0], [3.5]])
    assert_close(fn(a.to(DEVICE), b.to(DEVICE)), fn(a, b))
    assert_close(fn(a.to(DEVICE), torch.tensor(0.0)), fn(a, torch.tensor(0.0)))
    ints = torch.tensor([0, 3, -7, 2 ** 40])
    assert_close(fn(ints.to(DEVICE), torch.tensor(3)), fn(ints, torch.tensor(3)))
    assert_close(fn(ints.to(DEVICE), ints.flip(0).to(DEVICE)), fn(ints, ints.flip(0)))
    if not name.startswith("logical"):  # torch takes Python scalars here
        assert_close(fn(a.to(DEVICE), 1.0), fn(a, 1.0))
        assert_close(fn(ints.to(DEVICE), 3), fn(ints, 3))
        assert_close(fn(ints.to(DEVICE), 2.5), fn(ints, 2.5))


def test_logical_not_and_bool_ops(no_fallbacks):
    x = torch.tensor([0.0, 0.5, -1.0, math.nan])
    b = torch.tensor([True, False, True, False])
    assert_close(torch.logical_not(x.to(DEVICE)), torch.logical_not(x))
    assert_close(~b.to(DEVICE), ~b)
    assert_close(b.to(DEVICE) & b.flip(0).to(DEVICE), b & b.flip(0))
    assert_close(b.to(DEVICE) | b.flip(0).to(DEVICE), b | b.flip(0))
    assert_close(b.to(DEVICE) ^ True, b ^ True)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_integer_arithmetic_and_bitwise(dtype, no_fallbacks):
    lo = 0 if dtype is torch.uint8 else -50
    a = torch.arange(lo, lo + 60, dtype=dtype).view(6, 10)
    b = torch.tensor([1, 3, 7, 2, 5, 9, 4, 6, 8, 11], dtype=dtype)
    if dtype is not torch.uint8:
        b[::3] *= -1
    ao, bo = a.to(DEVICE), b.to(DEVICE)
    for fn in (torch.add, torch.sub, torch.mul, torch.floor_divide, torch.remainder, torch.fmod, torch.maximum,
               torch.minimum, torch.bitwise_and, torch.bitwise_or, torch.bitwise_xor,
               lambda x, y: torch.div(x, y, rounding_mode="trunc"), lambda x, y: torch.div(x, y, rounding_mode="floor"),
               lambda x, y: x + 3 * y, lambda x, y: x * 2 - 7, lambda x, y: x << 2, lambda x, y: x >> 1,
               lambda x, y: ~x, lambda x, y: x.abs(), lambda x, y: x.sign(), lambda x, y: torch.pow(x, 2),
               lambda x, y: x.clamp(2, 20), lambda x, y: x.relu(), lambda x, y: torch.where(x > y, x, y)):
        assert_close(fn(ao, bo), fn(a, b))
    # division of integers gives floats
    assert_close(ao / bo, a / b, **FLOAT_TOL)
    assert_close(ao.sqrt() if dtype is torch.uint8 else ao.abs().sqrt(),
                 a.sqrt() if dtype is torch.uint8 else a.abs().sqrt(), **FLOAT_TOL)


def test_integer_edge_cases(no_fallbacks):
    big = torch.tensor([2 ** 40, -(2 ** 50), 2 ** 62, -7])
    assert_close(big.to(DEVICE) + 1, big + 1)
    assert_close(big.to(DEVICE) * 3, big * 3)  # wraps like the CPU
    assert_close(big.to(DEVICE) // 3, big // 3)
    i8 = torch.tensor([100, -100, 127, -128], dtype=torch.int8)
    assert_close(i8.to(DEVICE) + 100, i8 + 100)  # wraps in int8
    u8 = torch.tensor([0, 1, 200, 255], dtype=torch.uint8)
    assert_close(u8.to(DEVICE) - 300, u8 - 300)
    ip = torch.tensor([2, 1, -1, 0, 3])
    e = torch.tensor([-1, -2, -3, 0, 3])
    assert_close(ip.to(DEVICE) ** e.to(DEVICE), ip ** e)
    assert_close(torch.remainder(torch.tensor([-7, 7, -7, 7]).to(DEVICE), torch.tensor([3, -3, -3, 3]).to(DEVICE)),
                 torch.remainder(torch.tensor([-7, 7, -7, 7]), torch.tensor([3, -3, -3, 3])))


PROMOTION_PAIRS = [
    (torch.int32, torch.float16), (torch.uint8, torch.int8), (torch.bool, torch.int64), (torch.float16, torch.bfloat16),
    (torch.int16, torch.float32), (torch.float32, torch.float64), (torch.bool, torch.float32), (torch.bool, torch.bool),
]


@pytest.mark.parametrize("da, db", PROMOTION_PAIRS, ids=lambda d: str(d).replace("torch.", ""))
def test_type_promotion_between_tensors(da, db, no_fallbacks):
    a = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]]).to(da)
    b = torch.tensor([1, 0, 3, 1]).to(db)
    for fn in (torch.add, torch.mul, torch.lt):
        assert_close(fn(a.to(DEVICE), b.to(DEVICE)), fn(a, b), **LOW_TOL.get(torch.result_type(a, b), FLOAT_TOL))


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float16, torch.uint8])
def test_type_promotion_with_scalars(dtype, no_fallbacks):
    x = torch.tensor([0, 1, 2, 5]).to(dtype)
    xo = x.to(DEVICE)
    for fn in (lambda t: t + 2.5, lambda t: t * 2, lambda t: t + torch.tensor(1.5, dtype=torch.float64),
               lambda t: t * torch.tensor(3), lambda t: t > 1.5, lambda t: torch.where(t > 1, t, 0.5)):
        ref = fn(x)
        assert_close(fn(xo), ref, **LOW_TOL.get(ref.dtype, FLOAT_TOL))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes(dtype, no_fallbacks):
    x = make((4, 8), "wide", dtype)
    xo = x.to(DEVICE)
    tol = LOW_TOL.get(dtype, dict(rtol=1e-10, atol=1e-10))
    for fn in (torch.exp, torch.sigmoid, F.gelu, F.silu, lambda t: t * 2 + 1, lambda t: t.clamp(-1, 1), torch.round,
               lambda t: torch.where(t > 0, t, -t), lambda t: t.to(torch.float32)):
        ref = fn(x)
        assert_close(fn(xo), ref, **(tol if ref.dtype == dtype else FLOAT_TOL))


def test_reduced_precision_backward(no_fallbacks):
    for dtype in (torch.float16, torch.bfloat16):
        x = make((16,), "wide", dtype)
        xc, xo = x.clone().requires_grad_(), to_ocl(x, True)
        F.gelu(xc).sum().backward() if False else (F.silu(xc) * 2).backward(torch.ones(16, dtype=dtype))
        (F.silu(xo) * 2).backward(torch.ones(16, dtype=dtype, device=DEVICE))
        assert_close(xo.grad, xc.grad, **LOW_TOL[dtype])


# ---- ternary ops ----

def test_where(no_fallbacks):
    c = torch.tensor([[True], [False], [True]])
    x = make((3, 4))
    y = make((4,), seed=5)
    xc, yc = x.clone().requires_grad_(), y.clone().requires_grad_()
    xo, yo = to_ocl(x, True), to_ocl(y, True)
    out, ref = torch.where(c.to(DEVICE), xo, yo), torch.where(c, xc, yc)
    assert_close(out, ref)
    ref.sum().backward()
    out.sum().backward()
    assert_close(xo.grad, xc.grad)
    assert_close(yo.grad, yc.grad)
    assert_close(torch.where(c.to(DEVICE), xo, 0.0), torch.where(c, x, 0.0))
    assert_close(torch.where(c.to(DEVICE), 1, torch.tensor(2.5)), torch.where(c, 1, torch.tensor(2.5)))
    ints = torch.arange(12).view(3, 4)
    assert_close(torch.where(c.to(DEVICE), ints.to(DEVICE), x.to(DEVICE)), torch.where(c, ints, x))


@pytest.mark.parametrize("form", ["scalars", "min_only", "max_only", "tensors", "tensor_min_only", "int"])
def test_clamp(form, no_fallbacks):
    x = make((5, 6), "wide")
    lo, hi = make((6,), seed=7) - 1, make((5, 1), seed=8).abs() + 0.5
    fn = {"scalars": lambda t, a, b: t.clamp(-1.0, 2.0), "min_only": lambda t, a, b: t.clamp(min=0.5),
          "max_only": lambda t, a, b: torch.clamp_max(t, 0.5), "tensors": lambda t, a, b: t.clamp(a, b),
          "tensor_min_only": lambda t, a, b: torch.clamp(t, min=a), "int": lambda t, a, b: t.long().clamp(-2, 3)}[form]
    xc = x.clone().requires_grad_(form != "int")
    xo = to_ocl(x, form != "int")
    ref, out = fn(xc, lo, hi), fn(xo, lo.to(DEVICE), hi.to(DEVICE))
    assert_close(out, ref)
    if form != "int":
        ref.sum().backward()
        out.sum().backward()
        assert_close(xo.grad, xc.grad)
    nan = torch.tensor([math.nan, 1.0, -5.0])
    assert_close(nan.to(DEVICE).clamp(-1, 1), nan.clamp(-1, 1))


@pytest.mark.parametrize("name", ["lerp_scalar", "lerp_tensor", "addcmul", "addcdiv"])
def test_lerp_addcmul_addcdiv(name, no_fallbacks):
    fn = {"lerp_scalar": lambda a, b, c: torch.lerp(a, b, 0.3), "lerp_tensor": lambda a, b, c: torch.lerp(a, b, c),
          "addcmul": lambda a, b, c: torch.addcmul(a, b, c, value=-0.5),
          "addcdiv": lambda a, b, c: torch.addcdiv(a, b, c, value=2.0)}[name]
    a, b, c = make((4, 1)), make((4, 5), seed=1), make((5,), "pos", seed=2)
    cpu = [t.clone().requires_grad_() for t in (a, b, c)]
    dev = [to_ocl(t, True) for t in (a, b, c)]
    ref, out = fn(*cpu), fn(*dev)
    assert_close(out, ref, **FLOAT_TOL)
    g = make(ref.shape, seed=4)
    ref.backward(g)
    out.backward(g.to(DEVICE))
    for t, r in zip(dev, cpu):
        if r.grad is not None:
            assert_close(t.grad, r.grad, **FLOAT_TOL)


# ---- forms: in-place, out=, empty, 0-dim, many dims ----

def test_inplace_forms(no_fallbacks):
    x = make((4, 6))
    base = to_ocl(x)
    view = base.t()  # in place through a non-contiguous view
    ref = x.clone()
    rview = ref.t()
    for op in (lambda t: t.add_(1.5), lambda t: t.mul_(torch.tensor(2.0)), lambda t: t.sub_(t),
               lambda t: t.add_(torch.arange(4.0).to(t.device)), lambda t: t.clamp_(-0.5, 0.5),
               lambda t: t.exp_(), lambda t: t.sigmoid_(), lambda t: F.relu_(t), lambda t: t.div_(3),
               lambda t: t.pow_(2), lambda t: t.lerp_(torch.ones_like(t), 0.5), lambda t: t.neg_()):
        r = op(rview)
        o = op(view)
        assert o is view and r is rview
        assert_close(base, ref, **FLOAT_TOL)
    n = torch.arange(10)
    no = n.to(DEVICE)
    no.mul_(3).remainder_(7).bitwise_xor_(5)
    n.mul_(3).remainder_(7).bitwise_xor_(5)
    assert_close(no, n)


def test_out_forms(no_fallbacks):
    a, b = make((3, 4)), make((3, 4), seed=1)
    ao, bo = a.to(DEVICE), b.to(DEVICE)
    out = torch.empty(3, 4, device=DEVICE)
    r = torch.add(ao, bo, alpha=2, out=out)
    assert r is out
    assert_close(out, torch.add(a, b, alpha=2))
    torch.exp(ao, out=out)
    assert_close(out, torch.exp(a), **FLOAT_TOL)
    t_out = torch.empty(4, 3, device=DEVICE).t()
    torch.mul(ao, bo, out=t_out)
    assert_close(t_out, a * b)
    b_out = torch.empty(3, 4, dtype=torch.bool, device=DEVICE)
    torch.gt(ao, bo, out=b_out)
    assert_close(b_out, a > b)
    f_out = torch.empty(3, 4, device=DEVICE)
    torch.gt(ao, bo, out=f_out)  # comparisons may write into a float out
    assert_close(f_out, torch.gt(a, b, out=torch.empty(3, 4)))
    d_out = torch.empty(3, 4, dtype=torch.float64, device=DEVICE)
    torch.add(ao, bo, out=d_out)
    assert_close(d_out, torch.add(a, b, out=torch.empty(3, 4, dtype=torch.float64)))


def test_out_is_resized_like_torch(no_fallbacks):
    a = make((3, 4))
    out = torch.empty(0, device=DEVICE)
    torch.mul(a.to(DEVICE), 2, out=out)
    assert out.shape == (3, 4)
    assert_close(out, a * 2)
    wrong = torch.empty(5, device=DEVICE)
    with pytest.warns(UserWarning, match="resized"):
        torch.sigmoid(a.to(DEVICE), out=wrong)
    assert_close(wrong, torch.sigmoid(a), **FLOAT_TOL)


def test_empty_and_zero_dim(no_fallbacks):
    e = torch.empty(0, 3)
    eo = e.to(DEVICE)
    for fn in (torch.exp, lambda t: t + 1, lambda t: t * t, lambda t: torch.where(t > 0, t, 1.0), F.gelu):
        assert_close(fn(eo), fn(e))
    assert_close(eo + torch.ones(3, device=DEVICE), e + torch.ones(3))
    s = torch.tensor(0.7)
    so = s.to(DEVICE)
    for fn in (torch.exp, lambda t: t + 1, lambda t: t * torch.tensor(3.0), torch.sigmoid, lambda t: t > 0.5):
        assert_close(fn(so), fn(s), **FLOAT_TOL)
    assert_close(so + make((2, 3)).to(DEVICE), s + make((2, 3)), **FLOAT_TOL)  # 0-dim ocl broadcast
    xs = s.clone().requires_grad_()
    xo = to_ocl(s, True)
    torch.tanh(xs).backward()
    torch.tanh(xo).backward()
    assert_close(xo.grad, xs.grad, **FLOAT_TOL)


def test_many_dims_and_odd_strides(no_fallbacks):
    x = make((2, 3, 2, 3, 2, 3, 2, 3, 4))
    sl = x[..., ::2].permute(8, 7, 6, 5, 4, 3, 2, 1, 0)  # 9 dims that cannot be merged
    xo = to_ocl(x)[..., ::2].permute(8, 7, 6, 5, 4, 3, 2, 1, 0)
    assert_close(xo * 2 + 1, sl * 2 + 1)
    big = make((70000,))
    assert_close(torch.sigmoid(to_ocl(big)[::3]), torch.sigmoid(big[::3]), **FLOAT_TOL)
    ex = make((1, 5)).expand(4, 5)
    assert_close(to_ocl(make((1, 5))).expand(4, 5) * 2, ex * 2)


# ---- errors ----

def test_mixing_devices_raises_like_cuda():
    x = torch.ones(3, device=DEVICE)
    c = torch.ones(3)
    for fn in (lambda: x + c, lambda: c + x, lambda: torch.where(x > 0, x, c), lambda: torch.addcmul(x, x, c),
               lambda: x.add_(c), lambda: torch.add(c, c, out=x), lambda: torch.maximum(x, c)):
        with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
            fn()
    assert_close(x + torch.tensor(2.0), torch.full((3,), 3.0))  # 0-dim CPU tensors are scalars
    assert_close(torch.tensor(2.0) * x, torch.full((3,), 2.0))


def test_shape_and_dtype_errors_like_torch():
    x = torch.ones(3, 4, device=DEVICE)
    with pytest.raises(RuntimeError, match=r"size of tensor a \(4\) must match the size of tensor b \(3\)"):
        x + torch.ones(4, 3, device=DEVICE)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        torch.ones(3, 1, device=DEVICE).add_(x)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        torch.ones(3, dtype=torch.long, device=DEVICE).add_(1.5)
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        torch.add(x, x, out=torch.empty(3, 4, dtype=torch.long, device=DEVICE))
    with pytest.raises(NotImplementedError, match="not implemented for 'Float'"):
        x & x
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        torch.lerp(torch.ones(3, dtype=torch.long, device=DEVICE), torch.ones(3, dtype=torch.long, device=DEVICE), 0.5)


def test_written_tensor_overlap_errors_like_torch():
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        torch.ones(3, device=DEVICE).expand(3, 3).add_(1)
    t = torch.arange(6.0, device=DEVICE).view(2, 3)
    with pytest.raises(RuntimeError, match="some elements of the input tensor and the written-to tensor"):
        t.add_(t[0])
    sq = torch.arange(9.0, device=DEVICE).view(3, 3)
    with pytest.raises(RuntimeError, match="some elements of the input tensor"):
        sq.add_(sq.t())
    v = torch.arange(6.0, device=DEVICE)
    with pytest.raises(RuntimeError, match="some elements of the input tensor"):
        torch.add(v[:3], 1, out=v[1:4])
    t.mul_(t)  # the same tensor in and out is fine
    assert_close(t, torch.arange(6.0).view(2, 3) ** 2)


def test_unsupported_dtype_falls_back_with_warning():
    import oclcore

    x = torch.tensor([1, 2, 3], dtype=torch.uint16)
    oclcore.reset_fallbacks()
    with pytest.raises(NotImplementedError):
        torch.abs(x.to(DEVICE))  # as on the CPU: no uint16 kernels there either
    c = torch.tensor([1 + 2j, 3 - 1j])
    with pytest.warns(UserWarning, match="runs on the CPU"):
        out = c.to(DEVICE) * 2
    assert out.device.type == "ocl"
    assert torch.equal(out.cpu(), c * 2)
    assert oclcore.fallbacks()


# ---- exhaustive sweeps (many program builds on the first run) ----

@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_every_float_dtype(name, dtype, no_fallbacks):
    fn, domain, grad = UNARY[name]
    x = make((6, 5), domain, dtype)
    ref = fn(x)
    tol = LOW_TOL.get(dtype, dict(rtol=1e-9, atol=1e-9))
    assert_close(fn(x.to(DEVICE)), ref, **tol)


@pytest.mark.slow
@pytest.mark.parametrize("da", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("db", ALL_DTYPES, ids=str)
def test_promotion_every_pair(da, db, no_fallbacks):
    a = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]]).to(da)
    b = torch.tensor([1, 0, 3, 1]).to(db)
    for fn in (torch.add, torch.mul, torch.eq, torch.maximum):
        try:
            ref = fn(a, b)
        except RuntimeError:
            continue
        assert_close(fn(a.to(DEVICE), b.to(DEVICE)), ref, **LOW_TOL.get(ref.dtype, FLOAT_TOL))


@pytest.mark.parametrize("inplace", [False, True])
def test_mixed_layouts_walk_the_output_in_memory_order(inplace):
    """A channels-last tensor plus an NCHW one (ConvNeXt's residual add): the result has torch's
    layout and values, and the launch walks the output's memory in order (innermost stride 1), as
    torch's TensorIterator does, instead of writing elements C apart."""
    from oclcore.ops import pointwise

    torch.manual_seed(3)
    a = torch.randn(2, 6, 5, 7).contiguous(memory_format=torch.channels_last)
    b = torch.randn(2, 6, 5, 7)
    ao, bo = a.to(DEVICE), b.to(DEVICE)
    if inplace:
        ao.add_(bo, alpha=0.5)
        got, want = ao, a.add(b, alpha=0.5)
    else:
        got, want = ao.mul(bo), a.mul(b)
    assert got.stride() == want.stride()
    assert torch.equal(got.cpu(), want)
    plan = pointwise.prepare("add", ao, [ao, bo], "float")
    assert plan.strides[0][-1] == 1 and plan.strides[2][-1] == 5 * 7
    assert pointwise.in_output_order((4, 3), [(1, 4), (3, 1)]) == ([3, 4], [[4, 1], [1, 3]])


@pytest.mark.parametrize("act", [F.silu, F.mish], ids=["silu", "mish"])
@pytest.mark.parametrize("inplace", [False, True], ids=["out_of_place", "inplace"])
def test_composite_activation_backward_is_one_op(act, inplace, no_fallbacks):
    """silu's and mish's backward reach oclcore whole (one kernel; torch decomposes the composite
    silu_backward into eight ops for tensor subclasses), and still decompose where autograd records
    them: second derivatives (create_graph) agree with the CPU's."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    torch.manual_seed(0)
    x = torch.randn(3, 5, 7)[:, ::2]  # (a view: not contiguous)
    grads = []
    for dev in ("cpu", DEVICE):
        xd = x.to(dev, copy=True).requires_grad_()
        y = act(xd * 1.5, inplace=inplace)
        ops = Ops()
        with ops:
            y.backward(torch.linspace(-2, 2, y.numel()).view(y.shape).to(dev))
        if dev == DEVICE:
            assert ops.names.count(f"{act.__name__}_backward.default") == 1
            assert not {"sigmoid.default", "tanh.default", "softplus.default"} & set(ops.names), ops.names
        x2 = x.to(dev, copy=True).requires_grad_()
        g, = torch.autograd.grad(act(x2).sum(), x2, create_graph=True)
        gg, = torch.autograd.grad((g * g).sum(), x2)
        grads.append((xd.grad, g, gg))
    for cpu, ocl in zip(*grads):
        assert_close(ocl, cpu, **FLOAT_TOL)


NEW_TENSORS = {
    "new_empty": lambda x, **kw: x.new_empty((2, 3), **kw),
    "new_empty_strided": lambda x, **kw: x.new_empty_strided((2, 3), (1, 2), **kw),
    "new_zeros": lambda x, **kw: x.new_zeros((4, 1, 2), **kw),
    "new_ones": lambda x, **kw: x.new_ones(5, **kw),
    "new_full": lambda x, **kw: x.new_full((3, 2), 2.5, **kw),
    "new_zeros_0d": lambda x, **kw: x.new_zeros((), **kw),
    "new_ones_empty": lambda x, **kw: x.new_ones((0, 3), **kw),
}


@pytest.mark.parametrize("name", sorted(NEW_TENSORS))
@pytest.mark.parametrize("dtype", [None, torch.int64, torch.bool, torch.float64], ids=str)
def test_new_tensor_methods_match_cpu(name, dtype, no_fallbacks):
    """x.new_empty / new_empty_strided / new_zeros / new_ones / new_full on ocl: the input's device,
    its dtype unless one is given, torch's strides and values."""
    make = NEW_TENSORS[name]
    kw = {} if dtype is None else {"dtype": dtype}
    x = torch.randn(3, 4, dtype=torch.float16)
    want, got = make(x, **kw), make(x.to(DEVICE), **kw)
    assert got.device.type == "ocl" and got.dtype == want.dtype
    assert got.shape == want.shape and got.stride() == want.stride()
    if "empty" not in name:
        assert torch.equal(got.cpu(), want)


def test_new_tensor_methods_other_devices_and_errors(no_fallbacks):
    x = torch.randn(3).to(DEVICE)
    cpu = x.new_zeros(2, device="cpu")
    assert cpu.device.type == "cpu" and torch.equal(cpu, torch.zeros(2))
    assert x.new_full((2,), 7, device="cpu").tolist() == [7.0, 7.0]
    assert x.new_empty(2, device=DEVICE).device == x.device
    for call in (lambda t: t.new_zeros(-1), lambda t: t.new_empty((2, -3)), lambda t: t.new_full((-1,), 1.0),
                 lambda t: torch.empty(-1, device=t.device), lambda t: torch.zeros((2, -1), device=t.device),
                 lambda t: torch.empty_strided((2, -1), (1, 1), device=t.device)):
        with pytest.raises(RuntimeError) as cpu_err:
            call(torch.zeros(1))
        with pytest.raises(RuntimeError) as ocl_err:
            call(x)
        assert str(ocl_err.value) == str(cpu_err.value)
