"""aten.convolution and aten.convolution_backward on oclcore.conv, and the
custom op ``torch.ops.oclcore.conv2d`` (convolution + bias + activation).

1-D convolutions run as 2-D ones with H = 1; transposed convolutions run
through the data-gradient path; only the gradients in output_mask are
computed. float32 runs natively, float16/bfloat16 in float32; 3-D convolutions
(transposed too) run as 2-D ones over stacked depth taps (oclcore.ops.conv3d);
float64 takes the CPU fallback."""

import torch

from .. import conv as _conv
from ..torch.dispatch import cpu_fallback, register
from ..torch.tensor import empty, wrap
from . import conv3d, pointwise
from ..gemm import database as _gemm_database
from ..gemm import planner as _gemm_planner
from .linalg import ACTIVATIONS, device_context
from .memo import Memo
from .meta import call_key, infer

aten = torch.ops.aten
_contexts = {}


def conv_context(index):
    """The convolution layer's view of ocl:index (cached)."""
    c = _contexts.get(index)
    if c is None:
        dev = device_context(index)
        gemm = _gemm_for(dev)
        c = _contexts[index] = _conv.ConvContext(
            dev.get_kernel, dev.alloc, gemm, synchronize=dev.dev.synchronize, device_name=dev.info["name"])
    return c


def _gemm_for(dev):
    from ..gemm import planner

    def gemm(A, a_off, a_rs, a_cs, B, b_off, b_rs, b_cs, C, c_off, c_rs, c_cs, M, N, K, alpha=1.0, beta=0.0,
             batch=1, a_bs=0, b_bs=0, c_bs=0, **epilogue):
        return planner.gemm(dev.get_kernel, dev.info, A, a_off, a_rs, a_cs, B, b_off, b_rs, b_cs, C, c_off,
                            c_rs, c_cs, M, N, K, alpha=alpha, beta=beta, batch=batch, a_bs=a_bs, b_bs=b_bs,
                            c_bs=c_bs, alloc=dev.alloc, **epilogue)
    return gemm


def _desc(t):
    if t is None:
        return None
    return _conv.TensorDesc(t._buf, t.storage_offset(), tuple(t.shape), t.stride(), "float32")


def _tensor(d, index):
    if d is None:
        return None
    return wrap(d.buf, d.shape, d.strides, d.offset, torch.float32, index)


def _float32(t):
    if t is None or t.dtype == torch.float32:
        return t
    out = empty(t.shape, torch.float32, t._index)
    pointwise.run("copy", out, [t])
    return out


def _cast(t, dtype):
    if t is None or t.dtype == dtype:
        return t
    out = empty(t.shape, dtype, t._index)
    pointwise.run("copy", out, [t])
    return out


def _supported(x, w):
    return (x.dim() in (3, 4) and w.dim() == x.dim()
            and x.dtype in (torch.float32, torch.float16, torch.bfloat16) and w.dtype == x.dtype)


def _as2d(t):
    if t is None or t.dim() != 3:
        return t
    n, c, length = t.shape
    s0, s1, s2 = t.stride()
    return wrap(t._buf, (n, c, 1, length), (s0, s1, length * s2, s2), t.storage_offset(), t.dtype, t._index)


def _as1d(t):
    if t is None:
        return None
    n, c, _, length = t.shape
    s0, s1, _, s3 = t.stride()
    return wrap(t._buf, (n, c, length), (s0, s1, s3), t.storage_offset(), t.dtype, t._index)


def _pair(v, one_d, fill):
    v = list(v)
    return ([fill] + v) if one_d else v


# ---- per-signature call plans: torch's checks and the 2-D arguments, once per signature ----

class _Call:
    """A convolution call signature that passed torch's checks and runs on the device: the
    2-D form of its arguments, and whether the tensors need conversion (1-D, not float32)."""

    def __init__(self, tensors, x, stride, padding, dilation, output_padding):
        self.one_d = x.dim() == 3
        # descriptors of the tensors as they are
        self.direct = not self.one_d and all(t is None or t.dtype is torch.float32 for t in tensors)
        self.stride, self.padding = _pair(stride, self.one_d, 1), _pair(padding, self.one_d, 0)
        self.dilation, self.output_padding = _pair(dilation, self.one_d, 1), _pair(output_padding, self.one_d, 0)


_calls = {}  # call signature -> _Call
_CALLS_LIMIT = 4096  # distinct signatures kept; the cache starts over when full


def _plan(func, tensors, args, x, w, stride, padding, dilation, output_padding):
    """The _Call for ``func(*tensors, *args)`` (input ``x``, weight ``w``) after torch's checks, or
    None when it falls back to the CPU. Cached per signature."""
    key = call_key(tensors, args)
    call = _calls.get(key) if key is not None else None
    if call is None:
        infer(func, (*tensors, *args))
        if not _supported(x, w):
            return None
        call = _Call(tensors, x, stride, padding, dilation, output_padding)
        if key is not None:
            if len(_calls) >= _CALLS_LIMIT:
                _calls.clear()
            _calls[key] = call
    return call


_memo, _backward_memo = Memo(), Memo()


def _is_3d(x, w):
    return (x.dim() == 5 and w.dim() == 5
            and x.dtype in (torch.float32, torch.float16, torch.bfloat16) and w.dtype == x.dtype)


@register(aten.convolution.default)
def convolution(x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    if _is_3d(x, w):
        meta = infer(aten.convolution.default, (x, w, bias, stride, padding, dilation, transposed, output_padding,
                                                groups))
        if transposed:
            return conv3d.transposed_forward(x, w, bias, stride, padding, dilation, groups, meta.shape)
        return conv3d.forward(x, w, bias, stride, padding, dilation, groups)
    key = _memo_key((x, w, bias), (stride, padding, dilation, transposed, output_padding, groups))
    if key is None:
        return _convolution(x, w, bias, stride, padding, dilation, transposed, output_padding, groups)
    return _memo(key, (x, w, bias), lambda: _convolution(x, w, bias, stride, padding, dilation, transposed,
                                                          output_padding, groups))


def _memo_key(tensors, args):
    """The call's key for the launch memo, or None: the tensors' geometry and the arguments, and
    what else decides the launches: the planners' settings, database and workspace budget, and
    the planning functions themselves (so that a patched planner, as tests use, is seen)."""
    key = call_key(tensors, args)
    if key is None:
        return None
    ctx = conv_context(tensors[0]._index)
    return key + (_conv.planner.settings(), _gemm_database.generation, ctx.workspace_bytes, id(_conv.choose),
                  id(_conv.algorithms.ConvContext.kernel), id(ctx.gemm), id(_gemm_planner.plan_gemm))


def _convolution(x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    call = _plan(aten.convolution.default, (x, w, bias), (stride, padding, dilation, transposed, output_padding,
                                                          groups), x, w, stride, padding, dilation, output_padding)
    if call is None:
        return cpu_fallback(aten.convolution.default,
                            (x, w, bias, stride, padding, dilation, transposed, output_padding, groups), {})
    ctx = conv_context(x._index)
    if call.direct:
        xs, ws, bs = _desc(x), _desc(w), _desc(bias)
    else:
        xs, ws = _desc(_as2d(_float32(x))), _desc(_as2d(_float32(w)))
        bs = _desc(_float32(bias))
    if transposed:
        y = _conv.conv_transpose2d_forward(ctx, xs, ws, bs, call.stride, call.padding, call.output_padding, groups,
                                           call.dilation)
    else:
        y = _conv.conv2d_forward(ctx, xs, ws, bs, call.stride, call.padding, call.dilation, groups)
    out = _tensor(y, x._index)
    if call.direct:
        return out
    if call.one_d:
        out = _as1d(out)
    return _cast(out, x.dtype)


@register(aten.convolution_backward.default)
def convolution_backward(grad, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding,
                         groups, output_mask):
    if _is_3d(x, w):
        infer(aten.convolution_backward.default, (grad, x, w, bias_sizes, stride, padding, dilation, transposed,
                                                   output_padding, groups, output_mask))
        run = conv3d.transposed_backward if transposed else conv3d.backward
        return run(grad, x, w, stride, padding, dilation, groups, output_mask)
    args = (bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask)
    key = _memo_key((grad, x, w), args)
    if key is None:
        return _convolution_backward(grad, x, w, *args)
    return _backward_memo(key, (grad, x, w), lambda: _convolution_backward(grad, x, w, *args))


def _convolution_backward(grad, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding,
                          groups, output_mask):
    call = _plan(aten.convolution_backward.default, (grad, x, w), (bias_sizes, stride, padding, dilation,
                                                                   transposed, output_padding, groups,
                                                                   output_mask), x, w, stride, padding, dilation,
                 output_padding)
    if call is None:
        return cpu_fallback(aten.convolution_backward.default,
                            (grad, x, w, bias_sizes, stride, padding, dilation, transposed, output_padding,
                             groups, output_mask), {})
    ctx = conv_context(x._index)
    if call.direct:
        g, xs, ws = _desc(grad), _desc(x), _desc(w)
    else:
        g, xs, ws = (_desc(_as2d(_float32(t))) for t in (grad, x, w))
    mask = tuple(map(bool, output_mask))
    if transposed:
        gi, gw, gb = _conv.conv_transpose2d_backward(ctx, g, xs, ws, mask, call.stride, call.padding,
                                                     call.output_padding, groups, call.dilation)
    else:
        gi, gw, gb = _conv.conv2d_backward(ctx, g, xs, ws, mask, call.stride, call.padding, call.dilation, groups)
    index = x._index
    gi, gw, gb = _tensor(gi, index), _tensor(gw, index), _tensor(gb, index)
    if call.direct:
        return gi, gw, gb
    if call.one_d:
        gi, gw = _as1d(gi), _as1d(gw)
    dtype = x.dtype
    return _cast(gi, dtype), _cast(gw, dtype), _cast(gb, dtype)


# ---- torch.ops.oclcore.conv2d: convolution with a fused bias + activation epilogue ----

torch.library.define(
    "oclcore::conv2d",
    "(Tensor x, Tensor w, Tensor? bias=None, int[2] stride=1, int[2] padding=0, int[2] dilation=1, "
    "int groups=1, str act='none') -> Tensor")


def _check_act(act):
    torch._check(act in _conv.ACTIVATION_NAMES,
                 lambda: f"oclcore::conv2d: act must be one of {_conv.ACTIVATION_NAMES}, got {act!r}")


@torch.library.register_fake("oclcore::conv2d")
def _conv2d_fake(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, act="none"):
    _check_act(act)
    return torch.nn.functional.conv2d(x, w, bias, stride, padding, dilation, groups)


def _conv2d_reference(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, act="none"):
    _check_act(act)
    return ACTIVATIONS[act][0](torch.nn.functional.conv2d(x, w, bias, stride, padding, dilation, groups))


torch.library.impl("oclcore::conv2d", "CPU")(_conv2d_reference)


@register(torch.ops.oclcore.conv2d.default)
def conv2d_op(x, w, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, act="none"):
    """act(conv2d(x, w) + bias), bias and activation in the convolution's epilogue."""
    _check_act(act)
    if x.dtype != torch.float32 or x.dim() != 4:
        return _conv2d_reference(x, w, bias, stride, padding, dilation, groups, act)
    ctx = conv_context(x._index)
    y = _conv.conv2d_forward(ctx, _desc(x), _desc(w), _desc(bias), list(stride), list(padding), list(dilation),
                             groups, activation=act)
    return _tensor(y, x._index)


# activations whose derivative follows from their output: gradient from (grad, output); the others
# (silu, gelu, gelu_tanh) recompute the pre-activation in backward
_FROM_OUTPUT = {
    "relu": lambda g, y: aten.threshold_backward(g, y, 0),
    "relu6": lambda g, y: aten.hardtanh_backward(g, y, 0.0, 6.0),
    "sigmoid": aten.sigmoid_backward,
    "tanh": aten.tanh_backward,
}


def _conv2d_setup(ctx, inputs, output):
    x, w, bias, stride, padding, dilation, groups, act = inputs
    ctx.save_for_backward(x, w, output if act in _FROM_OUTPUT else bias if act != "none" else None)
    ctx.args = (stride, padding, dilation, groups)
    ctx.act, ctx.has_bias = act, bias is not None


def _conv2d_backward(ctx, grad):
    x, w, saved = ctx.saved_tensors
    stride, padding, dilation, groups = ctx.args
    if ctx.act in _FROM_OUTPUT:
        grad = _FROM_OUTPUT[ctx.act](grad, saved)
    elif ctx.act != "none":
        pre = torch.ops.oclcore.conv2d(x, w, saved, stride, padding, dilation, groups, "none")
        grad = ACTIVATIONS[ctx.act][1](grad, pre)
    mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
    gi, gw, gb = aten.convolution_backward(grad, x, w, [w.shape[0]], stride, padding, dilation, False,
                                           [0, 0], groups, mask)
    return gi, gw, gb, None, None, None, None, None


torch.library.register_autograd("oclcore::conv2d", _conv2d_backward, setup_context=_conv2d_setup)
