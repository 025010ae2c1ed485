"""Launching elementwise kernels: broadcasting, dimension collapsing, and the
per-type-signature programs generated from cl/pointwise.cl."""

import itertools
import math

import torch

from .. import runtime
from ..torch.tensor import OclTensor, entry
from . import dtypes
from .pointwise_table import OPS

MAX_DIMS = 8
ILP = 4  # elements per work-item of contiguous launches (cl/pointwise.cl)
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
        # torch's wording and class (NotImplementedError, which Python operators do not swallow)
        shown = out_dtype if not floating or out_dtype.is_floating_point else in_dtypes[0]
        raise NotImplementedError(f'"{op}_ocl" not implemented for \'{dtypes.type_name(shown)}\'')
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


def in_output_order(shape, strides):
    """``shape`` and the operands' ``strides`` with the dims reordered so that the output's strides
    (``strides[0]``) descend, as torch's TensorIterator orders them: a launch then walks the output's
    memory in order. Adding an NCHW tensor into a channels-last one (ConvNeXt's residuals) wrote
    its output 96 elements apart per work-item in the logical order, at a third of the bandwidth."""
    out = strides[0]
    order = sorted(range(len(shape)), key=lambda d: -out[d] if shape[d] != 1 else 0)
    if all(d == i for i, d in enumerate(order)):
        return shape, strides
    return [shape[d] for d in order], [[s[d] for d in order] for s in strides]


_plans = {}
_BIG_BYTES = 2**31  # buffers this large may need 64-bit indices: their plans are not reused


class Plan:
    """A prepared launch for one signature of operands: the kernel, the bit mask of scalar inputs,
    the collapsed geometry, whether 64-bit indices are needed, and the launch size and trailing
    arguments, which depend on the geometry only."""

    __slots__ = ("kernel", "scalars", "rank", "sizes", "strides", "big", "gsize", "lsize", "tail")

    def __init__(self, kernel, scalars, rank, sizes, strides, big, n):
        self.kernel, self.scalars, self.rank, self.sizes, self.strides, self.big = (
            kernel, scalars, rank, sizes, strides, big)
        launch_rank = rank
        if rank == 0:
            items = -(-n // ILP)
            self.gsize, self.lsize = (items,), (256,) if items >= 256 else None
        elif rank in (2, 3) and (planes := plane_launch(sizes[-1], n // sizes[-1])):
            self.gsize, self.lsize = planes
            launch_rank = -rank
        else:
            self.gsize, self.lsize = (n,), (256,) if n >= 256 else None
        self.tail = (scalars, n, launch_rank, sizes) + strides


_GRID_DIM1 = 65535  # work-groups along grid dim 1 that every driver takes (CUDA's limit)


def plane_launch(inner, outer):
    """(global, local) sizes of a 2-D launch over ``outer`` rows of ``inner`` elements, ILP
    elements per work-item along a row (cl/pointwise.cl, rank < 0); None if too many rows."""
    items = -(-inner // ILP)
    l0 = min(256, 1 << max(0, items - 1).bit_length())
    l1 = 256 // l0
    groups1 = -(-outer // l1)
    if groups1 > _GRID_DIM1:
        return None
    return (-(-items // l0) * l0, groups1 * l1), (l0, l1)


def _plan(op, out, inputs, ct):
    """Kernel and collapsed geometry for one signature of operands (cached by the caller)."""
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
    sizes, st = collapse(*in_output_order(shape, strides))
    rank = len(sizes)
    if rank == 1 and st[0][0] == 1 and all(s[0] == 1 or (scalars >> j) & 1 for j, s in enumerate(st[1:])):
        rank = 0
    n = out.numel()
    big = n > _INT32_MAX or any(
        isinstance(x, OclTensor) and x._buf.nbytes // max(x.element_size(), 1) > _INT32_MAX
        for x in (out, *inputs))
    k = kernel(op, tuple(in_dtypes), out.dtype, ct, "long" if big else "int", runtime.device(out._index))
    return Plan(k, scalars, rank, tuple(sizes), tuple(tuple(s) for s in st), big, n)


def compute_type(out, inputs):
    """The compute type for out = op(inputs): out's, except that a bool result tests its input
    for != 0 in the input's own type (0.5 is True)."""
    src = out if out.dtype is not torch.bool else next((x for x in inputs if isinstance(x, OclTensor)), out)
    return dtypes.compute(src.dtype)


def prepare(op, out, inputs, ct):
    """The launch Plan for these operands; cached by their dtypes, shapes and strides."""
    key = (op, ct, out.dtype, out.shape, out.stride(), out._index,
           tuple([(x.dtype, x.shape, x.stride()) if type(x) is OclTensor else None for x in inputs]))
    plan = _plans.get(key)
    if plan is None or out._buf.nbytes >= _BIG_BYTES or any(
            type(x) is OclTensor and x._buf.nbytes >= _BIG_BYTES for x in inputs):
        plan = _plan(op, out, inputs, ct)
        if not plan.big:  # the index width depends on buffer sizes: only small-index plans are reused
            _plans[key] = plan
    return plan


def run(op, out, inputs, params=(), ct=None):
    """Computes ``out = op(*inputs)`` elementwise, broadcasting tensor inputs to out's shape.
    ``inputs`` are OclTensors or Python numbers; ``params`` up to three numbers."""
    if out.numel() == 0:
        return out
    if ct is None:
        ct = compute_type(out, inputs)
    return launch(prepare(op, out, inputs, ct), out, inputs, params, ct)


_NO_PARAMS = (0, 0, 0)


def launch(plan, out, inputs, params, ct):
    """Enqueues a prepared plan on these operands (same geometry as when it was prepared)."""
    conv = float if ct == "float" or ct == "double" else int  # (what dtypes.py_scalar does)
    n_params = len(params)
    if n_params == 0:
        p = _NO_PARAMS
    else:
        p = (conv(params[0]), conv(params[1]) if n_params > 1 else 0, conv(params[2]) if n_params > 2 else 0)
    if plan.rank <= MAX_DIMS:
        _, buf, offset, _ = entry(out)
        args = [buf, offset]
        for x in inputs:
            if type(x) is OclTensor:
                _, b, o, _ = entry(x)
                args += (b, o, 0)
            else:
                args += (buf, 0, conv(x))
        args += p
        args += plan.tail
        plan.kernel.launch(plan.gsize, plan.lsize, tuple(args))
        return out
    rank, sizes, st = plan.rank, plan.sizes, plan.strides
    n = out.numel()
    values = [0 if isinstance(x, OclTensor) else conv(x) for x in inputs]
    bufs = [out._buf] + [x._buf if isinstance(x, OclTensor) else out._buf for x in inputs]
    offsets = [out.storage_offset()] + [x.storage_offset() if isinstance(x, OclTensor) else 0 for x in inputs]
    # More dims than the kernel walks: launch once per index of the leading dims.
    lead, inner = sizes[:rank - MAX_DIMS], sizes[rank - MAX_DIMS:]
    inner_st = [s[rank - MAX_DIMS:] for s in st]
    inner_n = n // math.prod(lead)
    for pos in itertools.product(*(range(m) for m in lead)):
        offs = [o + sum(i * s for i, s in zip(pos, sv)) for o, sv in zip(offsets, st)]
        _launch(plan.kernel, bufs, offs, values, p, plan.scalars, inner_n, MAX_DIMS, inner, inner_st)
    return out


def _launch(k, bufs, offsets, values, params, scalars, n, rank, sizes, strides):
    args = [bufs[0], offsets[0]]
    for b, o, v in zip(bufs[1:], offsets[1:], values):
        args += (b, o, v)
    args += (*params, scalars, n, rank, tuple(sizes), tuple(strides[0]))
    args += tuple(tuple(s) for s in strides[1:])
    k.launch((n,), (256,) if n >= 256 else None, tuple(args))
