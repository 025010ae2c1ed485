"""Launching elementwise kernels: broadcasting, dimension collapsing, and the
per-type-signature programs generated from cl/pointwise.cl."""

import torch

from .. import runtime
from ..torch.tensor import OclTensor
from . import dtypes
from .pointwise_table import OPS

MAX_DIMS = 8
_INT32_MAX = 2**31 - 1
_kernels = {}


def _program_source(arity, floating):
    lines = []
    for name, (n, fexpr, iexpr) in OPS.items():
        expr = fexpr if floating else iexpr
        if n == arity and expr is not None:
            lines.append(f"POINTWISE{arity}(pw_{name}, {expr})")
    return "\n".join(lines)


def _signature(arity, ct, idx):
    s, i = dtypes.SCALAR_CHAR[ct], "l" if idx == "long" else "i"
    operands = "".join("B" + i + s for _ in range(arity))
    return "B" + i + operands + s * 3 + "i" + i + "iVV" + "V" * arity


def kernel(op, in_dtypes, out_dtype, ct, idx, dev):
    """The kernel for ``op`` with these operand storage dtypes, computing in ``ct``."""
    key = (op, in_dtypes, out_dtype, ct, idx, dev.index)
    k = _kernels.get(key)
    if k is not None:
        return k
    arity = OPS[op][0]
    floating = dtypes.is_float_compute(ct)
    if OPS[op][1 if floating else 2] is None:
        raise TypeError(f"ocl: {op} is not defined for {'floating' if floating else 'integer'} types")
    defines = {"TO": dtypes.storage(out_dtype), "STO": dtypes.store_macro(out_dtype), "CT": ct, "IDX": idx}
    for slot, dt in zip("ABC", in_dtypes):
        defines["T" + slot] = dtypes.storage(dt)
        defines["LD" + slot] = dtypes.load_macro(dt)
    if not floating:
        defines["CT_IS_INT"] = None
    if ct == "double" or torch.float64 in in_dtypes or out_dtype is torch.float64:
        defines["FP64"] = None
    k = runtime.get_kernel(("types.cl", "pointwise.cl"), defines, "pw_" + op, _signature(arity, ct, idx), dev,
                           extra_source=_program_source(arity, floating))
    _kernels[key] = k
    return k


def broadcast_strides(t, shape):
    """Strides that read ``t`` broadcast to ``shape`` (0 along broadcast dims)."""
    nd = len(shape)
    ts = t.shape
    st = t.stride()
    lead = nd - len(ts)
    return tuple(0 if d < lead or ts[d - lead] == 1 else st[d - lead] for d in range(nd))


def collapse(shape, strides):
    """Drops size-1 dims and merges dims every operand walks contiguously.
    Returns (sizes, [strides per operand]) with at most as many dims as shape."""
    sizes = []
    out = [[] for _ in strides]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if sizes and all(o[-1] == n * s[d] for o, s in zip(out, strides)):
            sizes[-1] *= n
            for o, s in zip(out, strides):
                o[-1] = s[d]
            continue
        sizes.append(n)
        for o, s in zip(out, strides):
            o.append(s[d])
    return sizes, out


def run(op, out, inputs, params=(), ct=None):
    """Computes ``out = op(*inputs)`` elementwise, broadcasting tensor inputs to out's shape.
    ``inputs`` are OclTensors or Python numbers; ``params`` up to three numbers."""
    n = out.numel()
    if n == 0:
        return out
    if ct is None:
        ct = dtypes.compute(out.dtype)
    shape = out.shape
    strides = [out.stride()]
    scalars = 0
    in_dtypes = []
    for k, x in enumerate(inputs):
        if isinstance(x, OclTensor):
            strides.append(broadcast_strides(x, shape))
            in_dtypes.append(x.dtype)
        else:
            scalars |= 1 << k
            strides.append((0,) * len(shape))
            in_dtypes.append(out.dtype)
    sizes, st = collapse(shape, strides)
    rank = len(sizes)
    if rank == 1 and st[0][0] == 1 and all(s[0] == 1 or (scalars >> j) & 1 for j, s in enumerate(st[1:])):
        rank = 0
    elif rank > MAX_DIMS:
        raise RuntimeError(f"ocl: {op} on a tensor with more than {MAX_DIMS} non-mergeable dimensions")
    big = n > _INT32_MAX or any(
        isinstance(x, OclTensor) and x._buf.nbytes // max(x.element_size(), 1) > _INT32_MAX
        for x in (out, *inputs))
    idx = "long" if big else "int"
    dev = runtime.device(out._index)
    k = kernel(op, tuple(in_dtypes), out.dtype, ct, idx, dev)
    args = [out._buf, out.storage_offset()]
    for x in inputs:
        if isinstance(x, OclTensor):
            args += (x._buf, x.storage_offset(), 0)
        else:
            args += (out._buf, 0, dtypes.py_scalar(x, ct))
    p = list(params) + [0] * (3 - len(params))
    args += (dtypes.py_scalar(p[0], ct), dtypes.py_scalar(p[1], ct), dtypes.py_scalar(p[2], ct),
             scalars, n, rank, tuple(sizes), tuple(st[0]))
    args += tuple(tuple(s) for s in st[1:])
    k.launch((n,), (256,) if n >= 256 else None, tuple(args))
    return out
