"""LSTM and GRU cells on cl/rnn.cl: aten._thnn_fused_lstm_cell / _thnn_fused_gru_cell and their
backward ops, which torch's nn.LSTM, nn.GRU, LSTMCell and GRUCell call on accelerators (CPU tensors
take another path, so these ops have no CPU kernel to fall back on). The projections before each
cell are GEMMs; the cell is one launch forward and one backward, bias gradients a column sum."""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, empty
from . import dtypes
from .copy import contiguous, is_contiguous
from .meta import infer
from .reduce import _sum_dim

aten = torch.ops.aten
_kernels = {}


def _kernel(name, dtype, index):
    key = (name, dtype, index)
    k = _kernels.get(key)
    if k is None:
        sig = {"lstm_cell_forward": "BBB" + "Bi" * 5 + "iii",
               "lstm_cell_backward": "BB" + "Bii" * 2 + "Bi" * 3 + "ii",
               "gru_cell_forward": "BB" + "Bi" * 5 + "iii",
               "gru_cell_backward": "BBB" + "Bi" * 2 + "ii"}[name]
        k = _kernels[key] = runtime.get_kernel(("types.cl", "rnn.cl"), dtypes.kernel_defines(dtype), name, sig,
                                               runtime.device(index))
    return k


def _check_dtype(op, *tensors):
    for t in tensors:
        if t is not None and (not isinstance(t, OclTensor) or not t.dtype.is_floating_point
                              or not dtypes.supported(t.dtype)):
            raise RuntimeError(f"\"{op}\" not implemented for '{dtypes.type_name(t.dtype)}'")


def _operand(t):
    """(buffer, element offset) of ``t`` as a row-major tensor (a contiguous copy when it is not)."""
    if not is_contiguous(t):
        t = contiguous(t)
    return t._buf, t.storage_offset()


def _check_sizes(op, input_gates, hidden_gates, input_bias, hidden_bias, gates, prev):
    """torch's checks of a cell's operands (``gates`` gates per hidden unit, ``prev`` the previous
    hidden or cell state), with torch-style messages."""
    torch._check(input_gates.dim() == 2, lambda: f"{op}: input_gates must be 2-D, got {input_gates.dim()}-D")
    torch._check(input_gates.shape == hidden_gates.shape,
                 lambda: f"{op}: input_gates {tuple(input_gates.shape)} and hidden_gates "
                         f"{tuple(hidden_gates.shape)} differ in shape")
    width = input_gates.shape[1]
    for name, b in (("input_bias", input_bias), ("hidden_bias", hidden_bias)):
        torch._check(b is None or (b.dim() == 1 and b.numel() == width),
                     lambda: f"{op}: {name} must have {width} elements (one per gate row), got shape "
                             f"{tuple(b.shape)}")
    torch._check(prev.dim() == 2 and prev.shape[0] == input_gates.shape[0] and prev.shape[1] * gates == width,
                 lambda: f"{op}: the previous state has shape {tuple(prev.shape)}, expected "
                         f"({input_gates.shape[0]}, {width // gates})")
    tensors = [t for t in (input_gates, hidden_gates, input_bias, hidden_bias, prev) if t is not None]
    torch._check(all(t.device == input_gates.device for t in tensors),
                 lambda: f"{op}: expected all inputs to be on the same device")


def _biases(input_bias, hidden_bias, like, width):
    """(has_bias, input bias, hidden bias) for a kernel: a missing one of two becomes zeros."""
    if input_bias is None and hidden_bias is None:
        return 0, like, like
    zeros = None
    if input_bias is None or hidden_bias is None:
        zeros = empty((width,), like.dtype, like._index)
        zeros.zero_()
    return 1, (input_bias if input_bias is not None else zeros), (hidden_bias if hidden_bias is not None else zeros)


def _cell_operands(op, gates, input_gates, hidden_gates, prev, input_bias, hidden_bias):
    """Checks a cell's inputs (``gates`` gates per hidden unit, ``prev`` the previous cell or hidden
    state); returns (B, H, dtype, device index, the forward kernel's operand arguments)."""
    _check_sizes(op, input_gates, hidden_gates, input_bias, hidden_bias, gates, prev)
    _check_dtype(op, input_gates, hidden_gates, prev, input_bias, hidden_bias)
    B, H = prev.shape
    has_bias, ib, hb = _biases(input_bias, hidden_bias, input_gates, gates * H)
    operands = (*_operand(input_gates), *_operand(hidden_gates), *_operand(prev), *_operand(ib), *_operand(hb),
                B, H, has_bias)
    return B, H, input_gates.dtype, input_gates._index, operands


def _launch(name, dtype, index, n, args):
    if n:
        _kernel(name, dtype, index).launch((n,), (64,) if n >= 64 else None, args)


@register(aten._thnn_fused_lstm_cell.default)
def lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    """(hy, cy, workspace) of one LSTM step from the gates' two projections."""
    B, H, dtype, index, operands = _cell_operands("_thnn_fused_lstm_cell", 4, input_gates, hidden_gates, cx,
                                                  input_bias, hidden_bias)
    hy, cy, ws = empty((B, H), dtype, index), empty((B, H), dtype, index), empty((B, 4 * H), dtype, index)
    _launch("lstm_cell_forward", dtype, index, B * H, (hy._buf, cy._buf, ws._buf, *operands))
    return hy, cy, ws


@register(aten._thnn_fused_lstm_cell_backward_impl.default)
def lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace, has_bias):
    """(grad of the gates, grad of cx, grad of the bias or None); absent output grads count as zeros."""
    if grad_hy is None and grad_cy is None:
        return None, None, None
    infer(aten._thnn_fused_lstm_cell_backward_impl.default, (grad_hy, grad_cy, cx, cy, workspace, has_bias))
    _check_dtype("_thnn_fused_lstm_cell_backward_impl", grad_hy, grad_cy, cx, cy, workspace)
    B, H = cx.shape
    dtype, index = workspace.dtype, workspace._index
    grad_gates, grad_cx = empty((B, 4 * H), dtype, index), empty((B, H), dtype, index)
    ghy = _operand(grad_hy) if grad_hy is not None else (workspace._buf, 0)
    gcy = _operand(grad_cy) if grad_cy is not None else (workspace._buf, 0)
    _launch("lstm_cell_backward", dtype, index, B * H,
            (grad_gates._buf, grad_cx._buf, *ghy, int(grad_hy is not None), *gcy, int(grad_cy is not None),
             *_operand(cx), *_operand(cy), *_operand(workspace), B, H))
    return grad_gates, grad_cx, (_sum_dim(grad_gates, [0]) if has_bias else None)


@register(aten._thnn_fused_gru_cell.default)
def gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    """(hy, workspace) of one GRU step from the gates' two projections."""
    B, H, dtype, index, operands = _cell_operands("_thnn_fused_gru_cell", 3, input_gates, hidden_gates, hx,
                                                  input_bias, hidden_bias)
    hy, ws = empty((B, H), dtype, index), empty((B, 5 * H), dtype, index)
    _launch("gru_cell_forward", dtype, index, B * H, (hy._buf, ws._buf, *operands))
    return hy, ws


@register(aten._thnn_fused_gru_cell_backward.default)
def gru_cell_backward(grad_hy, workspace, has_bias):
    """(grads of the input gates, of the hidden gates, of hx, of the two biases or None)."""
    _check_dtype("_thnn_fused_gru_cell_backward", grad_hy, workspace)
    torch._check(grad_hy.dim() == 2 and workspace.dim() == 2 and workspace.shape[1] == 5 * grad_hy.shape[1]
                 and workspace.shape[0] == grad_hy.shape[0],
                 lambda: f"_thnn_fused_gru_cell_backward: workspace of shape {tuple(workspace.shape)} does not "
                         f"match grad_hy of shape {tuple(grad_hy.shape)}")
    B, H = grad_hy.shape
    dtype, index = workspace.dtype, workspace._index
    grad_ig, grad_hg = empty((B, 3 * H), dtype, index), empty((B, 3 * H), dtype, index)
    grad_hx = empty((B, H), dtype, index)
    _launch("gru_cell_backward", dtype, index, B * H,
            (grad_ig._buf, grad_hg._buf, grad_hx._buf, *_operand(grad_hy), *_operand(workspace), B, H))
    if not has_bias:
        return grad_ig, grad_hg, grad_hx, None, None
    return grad_ig, grad_hg, grad_hx, _sum_dim(grad_ig, [0]), _sum_dim(grad_hg, [0])
