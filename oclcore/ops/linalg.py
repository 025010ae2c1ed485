"""Matrix products on the GEMM core: mm, addmm, bmm, baddbmm, mv, addmv, dot
(matmul and linear reach these through torch's own decompositions), and the
custom op ``torch.ops.oclcore.gemm``.

Operands go to the GEMM core with their strides and offsets, so transposed
and strided views need no copies. float32 and float64 (where the device has
it) run natively; float16/bfloat16 run in float32 and are converted back."""

import torch

from .. import runtime
from ..gemm import planner
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, empty, resize_out
from . import pointwise
from .meta import infer

aten = torch.ops.aten
_NATIVE = {torch.float32: "float32", torch.float64: "float64"}
_contexts = {}


class _Device:
    """What the GEMM core needs to know about one device."""

    def __init__(self, index):
        dev = runtime.device(index)
        self.dev = dev
        self.info = dev.info()
        self.get_kernel = lambda files, defines, name, sig: runtime.get_kernel(files, defines, name, sig, dev)
        self.alloc = dev.alloc


def device_context(index):
    """The GEMM core's view of ocl:index (cached)."""
    c = _contexts.get(index)
    if c is None:
        c = _contexts[index] = _Device(index)
    return c


def _as_float(t):
    out = empty(t.shape, torch.float32, t._index)
    pointwise.run("copy", out, [t])
    return out


def gemm_into(c, a, b, alpha=1.0, beta=0.0, bias=None, act=None):
    """c[...] = act(alpha * a @ b + beta * c + bias) for 2-D (M,K)x(K,N) or batched 3-D
    operands of one dtype; bias is a 1-D tensor over columns (N)."""
    if c.numel() == 0:
        return c
    dtype = c.dtype
    if dtype not in _NATIVE:
        tmp = _as_float(c) if beta != 0 else empty(c.shape, torch.float32, c._index)
        gemm_into(tmp, _as_float(a), _as_float(b), alpha, beta,
                  None if bias is None else _as_float(bias), act)
        pointwise.run("copy", c, [tmp])
        return c
    ctx = device_context(c._index)
    batched = c.dim() == 3
    M, N = c.shape[-2:]
    K = a.shape[-1]
    if K == 0:
        # an empty sum: beta * c (+ bias)
        if beta == 0:
            pointwise.run("fill", c, [0])
        elif beta != 1:
            pointwise.run("mul", c, [c, beta])
        if bias is not None:
            pointwise.run("add", c, [c, bias], (1,))
        return c
    sa, sb, sc = a.stride(), b.stride(), c.stride()
    if batched:
        batch = c.shape[0]
        a_bs, b_bs, c_bs = (sa[0] if a.shape[0] > 1 else 0), (sb[0] if b.shape[0] > 1 else 0), sc[0]
        sa, sb, sc = sa[1:], sb[1:], sc[1:]
    else:
        batch, a_bs, b_bs, c_bs = 1, 0, 0, 0
    planner.gemm(ctx.get_kernel, ctx.info, a._buf, a.storage_offset(), sa[0], sa[1],
                 b._buf, b.storage_offset(), sb[0], sb[1], c._buf, c.storage_offset(), sc[0], sc[1],
                 M, N, K, alpha=float(alpha), beta=float(beta), batch=batch, a_bs=a_bs, b_bs=b_bs, c_bs=c_bs,
                 bias=None if bias is None else bias._buf, bias_off=0 if bias is None else bias.storage_offset(),
                 bias_dim="col", act=act, dtype=_NATIVE[dtype], alloc=ctx.alloc)
    return c


def _dense_bias(bias, n, index, dtype):
    """bias as a contiguous 1-D tensor of n elements (broadcast if it is a scalar or 1-element)."""
    if bias.dim() == 1 and bias.shape[0] == n and bias.stride()[0] == 1 and bias.dtype == dtype:
        return bias
    out = empty((n,), dtype, index)
    pointwise.run("copy", out, [bias.reshape(-1) if bias.dim() > 1 else bias])
    return out


def _result(func, args, out=None):
    meta = infer(func, args)
    if out is not None:
        return resize_out(out, meta.shape)
    return empty(meta.shape, meta.dtype, args[0]._index if isinstance(args[0], OclTensor) else args[1]._index)


@register(aten.mm.default, aten.mm.out)
def mm(a, b, *, out=None):
    c = _result(aten.mm.default, (a, b), out)
    return gemm_into(c, a, b)


@register(aten.bmm.default, aten.bmm.out)
def bmm(a, b, *, out=None):
    c = _result(aten.bmm.default, (a, b), out)
    return gemm_into(c, a, b)


@register(aten.addmm.default, aten.addmm.out)
def addmm(bias, a, b, *, beta=1, alpha=1, out=None):
    c = _result(aten.addmm.default, (bias, a, b), out)
    n = c.shape[1]
    if beta == 1 and bias.dim() <= 1 and c.numel() and a.shape[1] > 0:
        return gemm_into(c, a, b, alpha, 0.0, _dense_bias(bias, n, c._index, c.dtype))
    if beta != 0:
        pointwise.run("copy", c, [bias])
    return gemm_into(c, a, b, alpha, beta)


@register(aten.baddbmm.default, aten.baddbmm.out)
def baddbmm(bias, a, b, *, beta=1, alpha=1, out=None):
    c = _result(aten.baddbmm.default, (bias, a, b), out)
    if beta != 0:
        pointwise.run("copy", c, [bias])
    return gemm_into(c, a, b, alpha, beta)


@register(aten.mv.default, aten.mv.out)
def mv(a, x, *, out=None):
    y = _result(aten.mv.default, (a, x), out)
    gemm_into(y.unsqueeze(1), a, x.unsqueeze(1))
    return y


@register(aten.addmv.default, aten.addmv.out)
def addmv(bias, a, x, *, beta=1, alpha=1, out=None):
    y = _result(aten.addmv.default, (bias, a, x), out)
    if beta != 0:
        pointwise.run("copy", y, [bias])
    gemm_into(y.unsqueeze(1), a, x.unsqueeze(1), alpha, beta)
    return y


@register(aten.dot.default, aten.dot.out, aten.vdot.default)
def dot(a, b, *, out=None):
    r = _result(aten.dot.default, (a, b), out)
    gemm_into(r.reshape(1, 1), a.unsqueeze(0), b.unsqueeze(1))
    return r


# ---- torch.ops.oclcore.gemm ----

_F = torch.nn.functional

# epilogue activation -> (its torch function, its gradient from (grad, pre-activation)); the GEMM
# core's epilogue computes each of them (cl/gemm_common.cl)
ACTIVATIONS = {
    "none": (lambda z: z, None),
    "relu": (torch.relu, lambda g, z: aten.threshold_backward(g, z, 0)),
    "relu6": (lambda z: _F.hardtanh(z, 0.0, 6.0), lambda g, z: aten.hardtanh_backward(g, z, 0.0, 6.0)),
    "gelu": (_F.gelu, lambda g, z: aten.gelu_backward(g, z)),
    "gelu_tanh": (lambda z: _F.gelu(z, approximate="tanh"), lambda g, z: aten.gelu_backward(g, z, approximate="tanh")),
    "silu": (_F.silu, lambda g, z: aten.silu_backward(g, z)),
    "sigmoid": (torch.sigmoid, lambda g, z: aten.sigmoid_backward(g, torch.sigmoid(z))),
    "tanh": (torch.tanh, lambda g, z: aten.tanh_backward(g, torch.tanh(z))),
}
_ACTS = tuple(ACTIVATIONS)
torch.library.define(
    "oclcore::gemm",
    "(Tensor a, Tensor b, Tensor? bias=None, float alpha=1.0, str act='none') -> Tensor")


@torch.library.register_fake("oclcore::gemm")
def _gemm_fake(a, b, bias=None, alpha=1.0, act="none"):
    torch._check(a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0],
                 lambda: f"oclcore::gemm expects (M,K) x (K,N) matrices, got {tuple(a.shape)} and {tuple(b.shape)}")
    torch._check(act in _ACTS, lambda: f"oclcore::gemm: act must be one of {_ACTS}, got {act!r}")
    return a.new_empty((a.shape[0], b.shape[1]))


def _gemm_cpu(a, b, bias=None, alpha=1.0, act="none"):
    r = alpha * (a @ b)
    if bias is not None:
        r = r + bias
    return ACTIVATIONS[act][0](r)


torch.library.impl("oclcore::gemm", "CPU")(_gemm_cpu)


@register(torch.ops.oclcore.gemm.default)
def gemm_op(a, b, bias=None, alpha=1.0, act="none"):
    """act(alpha * a @ b + bias) in one GEMM launch with a fused epilogue."""
    _gemm_fake(a, b, bias, alpha, act)
    if a.dtype != b.dtype:
        raise RuntimeError(f"oclcore::gemm: expected a and b of one dtype, got {a.dtype} and {b.dtype}")
    c = empty((a.shape[0], b.shape[1]), a.dtype, a._index)
    dense = None if bias is None else _dense_bias(bias, c.shape[1], c._index, c.dtype)
    return gemm_into(c, a, b, alpha, 0.0, dense, None if act == "none" else act)


def _gemm_setup(ctx, inputs, output):
    a, b, bias, alpha, act = inputs
    # relu's gradient needs only the output's sign; the others recompute the pre-activation
    ctx.save_for_backward(a, b, output if act == "relu" else bias)
    ctx.alpha, ctx.act, ctx.has_bias = alpha, act, bias is not None


def _gemm_backward(ctx, grad):
    a, b, saved = ctx.saved_tensors
    if ctx.act == "relu":
        grad = aten.threshold_backward(grad, saved, 0)
    elif ctx.act != "none":
        pre = torch.ops.oclcore.gemm(a, b, saved, ctx.alpha, "none")
        grad = ACTIVATIONS[ctx.act][1](grad, pre)
    ga = (grad @ b.t()) * ctx.alpha if ctx.needs_input_grad[0] else None
    gb = (a.t() @ grad) * ctx.alpha if ctx.needs_input_grad[1] else None
    gbias = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
    return ga, gb, gbias, None, None


torch.library.register_autograd("oclcore::gemm", _gemm_backward, setup_context=_gemm_setup)


@register(aten._linalg_check_errors.default)
def linalg_check_errors(info, api_name, *, is_matrix):
    """torch's error for a failed factorization (``info`` nonzero), as torch raises it: the codes
    are read back, which waits for the device (as on CUDA)."""
    aten._linalg_check_errors.default(info.to("cpu"), api_name, is_matrix=is_matrix)
