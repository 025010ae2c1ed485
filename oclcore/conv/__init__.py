"""oclcore convolutions: conv2d / conv1d / conv_transpose2d forward and
backward on OpenCL, over several algorithms chosen by the planner.

Tensors are `TensorDesc`s (buffer, element offset, shape, strides, dtype);
float32 only. Inputs may have any strides (NCHW, channels-last, views);
outputs are allocated with `ctx.alloc` in the input's memory format (weight
and bias gradients dense). Every call only enqueues work.

conv_transpose2d(x, w) is the input gradient of the conv2d that maps an
(N, Cout, Hout, Wout) tensor to x's shape with weight w: its forward runs the
planner's grad_input path with x in the role of grad_out, its input gradient
is that conv2d's forward applied to grad_out, and its weight gradient is that
conv2d's grad_weight with (grad_out=x, input=grad_out).
conv1d is conv2d with H = 1 (views only, no copies)."""
from ..gemm.planner import ACTIVATIONS
from .algorithms import (ALGORITHMS, FORWARD, GRAD_INPUT, GRAD_WEIGHT, ConvContext,
                         bias_act, bias_grad, fill4d, packed)
from .planner import choose, force_algorithm, set_benchmark, heuristic, candidates, cache_path
from .shapes import (ConvGeometry, TensorDesc, check_dtype, contiguous_strides,
                     conv_geometry, conv_transpose_geometry, is_channels_last, is_contiguous,
                     like_layout_strides, resolve_padding)

__all__ = ["ConvContext", "TensorDesc", "ConvGeometry", "conv2d_forward", "conv2d_backward",
           "conv_transpose2d_forward", "conv_transpose2d_backward", "conv1d_forward",
           "conv1d_backward", "force_algorithm", "set_benchmark", "conv_geometry",
           "ALGORITHMS", "ACTIVATION_NAMES"]

# the forward epilogue's activations: the GEMM epilogue's (cl/activation.cl has their codes)
ACTIVATION_NAMES = tuple(a for a in ACTIVATIONS if a is not None)


def _empty(ctx, shape, strides=None, dtype="float32"):
    n = 1
    for s in shape:
        n *= s
    strides = strides or contiguous_strides(shape)
    return TensorDesc(ctx.alloc(max(n, 1) * 4), 0, tuple(shape), tuple(strides), dtype)


def _layout(t):
    return "nhwc" if is_channels_last(t) and not is_contiguous(t) else "nchw"


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class _Dense:
    """Weights, or a bias (the kernels read bias[k] at unit stride), packed
    dense for the duration of a call (they are small); None stays None."""

    def __init__(self, ctx, t):
        self.ctx, self.t = ctx, t

    def __enter__(self):
        t = self.t
        if t is None or len(t.shape) != 1:
            self.v = t if t is None else packed(self.ctx, t)
            return self.v
        k = t.shape[0]
        v = packed(self.ctx, t.with_view((1, k, 1, 1), (k * t.strides[0], t.strides[0], 1, 1)))
        self.v = t if v.buf is t.buf else v.with_view((k,), (1,))
        return self.v

    def __exit__(self, *exc):
        if self.v is not self.t:
            self.ctx.release(self.v.buf)


def _unbatch(x):
    if len(x.shape) == 3:
        c, h, w = x.shape
        return x.with_view((1, c, h, w), (c * h * w,) + tuple(x.strides)), True
    return x, False


def _squeeze0(t):
    return t.with_view(t.shape[1:], t.strides[1:])


def _forward(ctx, g, x, w, bias, y, act, algorithm):
    if _numel(g.y_shape) == 0:
        return
    with _Dense(ctx, bias) as bd:
        if _numel(g.x_shape) == 0 or g.Cg == 0:    # no input channels: y = act(bias)
            fill4d(ctx, y, 0.0)
            bias_act(ctx, y, bd, act)
            return
        with _Dense(ctx, w) as wd:
            run = lambda a: a.forward(ctx, g, x, wd, bd, y, act)
            choose(ctx, g, FORWARD, _layout(x), run, algorithm).forward(ctx, g, x, wd, bd, y, act)


def _grad_input(ctx, g, dy, w, dx, algorithm):
    if _numel(g.x_shape) == 0:
        return
    if g.Kg == 0 or _numel(g.y_shape) == 0:
        fill4d(ctx, dx, 0.0)
        return
    with _Dense(ctx, w) as wd:
        run = lambda a: a.grad_input(ctx, g, dy, wd, dx)
        choose(ctx, g, GRAD_INPUT, _layout(dy), run, algorithm).grad_input(ctx, g, dy, wd, dx)


def _grad_weight(ctx, g, dy, x, dw, algorithm):
    if _numel(g.w_shape) == 0:
        return
    if _numel(g.y_shape) == 0 or _numel(g.x_shape) == 0:
        fill4d(ctx, dw, 0.0)
        return
    run = lambda a: a.grad_weight(ctx, g, dy, x, dw)
    choose(ctx, g, GRAD_WEIGHT, _layout(x), run, algorithm).grad_weight(ctx, g, dy, x, dw)


def _check_grad_out(dy, shape):
    if tuple(dy.shape) != tuple(shape):
        raise RuntimeError(f"Expected grad_output of size {list(shape)}, "
                           f"but got grad_output of size {list(dy.shape)}")


def conv2d_forward(ctx, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1,
                   activation=None, out=None, algorithm=None):
    """y = activation(conv2d(x, w) + bias) with torch.nn.functional.conv2d
    semantics (padding int/tuple/'same'/'valid'; x 4-D or unbatched 3-D).
    activation: None or one of ACTIVATION_NAMES, applied in the algorithm's
    epilogue. out: optional preallocated TensorDesc. algorithm: force one of
    ALGORITHMS by name. Returns the output desc."""
    check_dtype(x, w, bias)
    if activation is not None and activation not in ACTIVATION_NAMES:
        raise ValueError(f"unsupported activation {activation!r}; expected None or one of "
                         f"{', '.join(ACTIVATION_NAMES)}")
    x4, unb = _unbatch(x)
    g = conv_geometry(x4.shape, w.shape, stride, padding, dilation, groups,
                      None if bias is None else bias.shape)
    y = out if out is not None else _empty(ctx, g.y_shape, like_layout_strides(g.y_shape, x4))
    if out is not None and unb:
        y = _unbatch(out)[0]
    if tuple(y.shape) != g.y_shape:
        raise RuntimeError(f"Expected out of size {list(g.y_shape)}, got {list(y.shape)}")
    _forward(ctx, g, x4, w, bias, y, activation or "none", algorithm)
    return _squeeze0(y) if unb else y


def conv2d_backward(ctx, grad_out, x, w, output_mask=(True, True, True), stride=1, padding=0,
                    dilation=1, groups=1, algorithm=None):
    """Gradients of conv2d(x, w, bias) w.r.t. (input, weight, bias) given
    grad_out; only those flagged in output_mask are computed, others are
    None. Same argument meanings as conv2d_forward. Returns (gi, gw, gb)."""
    check_dtype(grad_out, x, w)
    x4, unb = _unbatch(x)
    dy = _unbatch(grad_out)[0] if unb else grad_out
    g = conv_geometry(x4.shape, w.shape, stride, padding, dilation, groups)
    _check_grad_out(dy, g.y_shape)
    gi = gw = gb = None
    if output_mask[0]:
        gi = _empty(ctx, g.x_shape, like_layout_strides(g.x_shape, x4))
        _grad_input(ctx, g, dy, w, gi, algorithm)
        if unb:
            gi = _squeeze0(gi)
    if output_mask[1]:
        gw = _empty(ctx, g.w_shape)
        _grad_weight(ctx, g, dy, x4, gw, algorithm)
    if output_mask[2]:
        gb = _empty(ctx, (g.K,))
        bias_grad(ctx, dy, gb)
    return gi, gw, gb


def conv_transpose2d_forward(ctx, x, w, bias=None, stride=1, padding=0, output_padding=0,
                             groups=1, dilation=1, algorithm=None):
    """torch.nn.functional.conv_transpose2d(x, w, bias, ...) for 4-D x and
    w of shape (Cin, Cout/groups, R, S): the grad_input path of the matching
    conv2d (see the module docstring)."""
    check_dtype(x, w, bias)
    g = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, groups,
                                dilation, None if bias is None else bias.shape)
    y = _empty(ctx, g.x_shape, like_layout_strides(g.x_shape, x))
    _grad_input(ctx, g, x, w, y, algorithm)
    if _numel(g.x_shape):
        with _Dense(ctx, bias) as bd:
            bias_act(ctx, y, bd)
    return y


def conv_transpose2d_backward(ctx, grad_out, x, w, output_mask=(True, True, True), stride=1,
                              padding=0, output_padding=0, groups=1, dilation=1,
                              algorithm=None):
    """Gradients of conv_transpose2d w.r.t. (input, weight, bias); those not
    in output_mask are None."""
    check_dtype(grad_out, x, w)
    g = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, groups,
                                dilation)
    _check_grad_out(grad_out, g.x_shape)
    gi = gw = gb = None
    if output_mask[0]:
        gi = _empty(ctx, g.y_shape, like_layout_strides(g.y_shape, x))
        _forward(ctx, g, grad_out, w, None, gi, "none", algorithm)
    if output_mask[1]:
        gw = _empty(ctx, g.w_shape)
        _grad_weight(ctx, g, x, grad_out, gw, algorithm)
    if output_mask[2]:
        gb = _empty(ctx, (g.C,))
        bias_grad(ctx, grad_out, gb)
    return gi, gw, gb


def _as2d(t):
    n, c, l = t.shape
    sn, sc, sl = t.strides
    return t.with_view((n, c, 1, l), (sn, sc, l * sl, sl))


def _as1d(t):
    n, c, _, l = t.shape
    return t.with_view((n, c, l), (t.strides[0], t.strides[1], t.strides[3]))


def _one(v, name):
    if isinstance(v, str):
        return v
    v = (v,) if isinstance(v, int) else tuple(v)
    if len(v) != 1:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of 1 values "
                           f"to match the convolution dimensions, but got {name}={list(v)}")
    return v[0]


def _args1d(stride, padding, dilation):
    p = _one(padding, "padding")
    pad = p if isinstance(p, str) else (0, p)
    return (1, _one(stride, "stride")), pad, (1, _one(dilation, "dilation"))


def conv1d_forward(ctx, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1,
                   activation=None, algorithm=None):
    """torch.nn.functional.conv1d for 3-D x (N, C, L) and w (K, C/groups, S),
    as conv2d with H = 1."""
    if len(x.shape) != 3 or len(w.shape) != 3:
        raise RuntimeError("Expected 3D (batched) input to conv1d with 3-D weight, but got input "
                           f"of size: {list(x.shape)}")
    s, p, d = _args1d(stride, padding, dilation)
    return _as1d(conv2d_forward(ctx, _as2d(x), _as2d(w), bias, s, p, d, groups, activation,
                                algorithm=algorithm))


def conv1d_backward(ctx, grad_out, x, w, output_mask=(True, True, True), stride=1, padding=0,
                    dilation=1, groups=1, algorithm=None):
    """Gradients of conv1d w.r.t. (input, weight, bias)."""
    s, p, d = _args1d(stride, padding, dilation)
    gi, gw, gb = conv2d_backward(ctx, _as2d(grad_out), _as2d(x), _as2d(w), output_mask,
                                 s, p, d, groups, algorithm)
    return (None if gi is None else _as1d(gi), None if gw is None else _as1d(gw), gb)
