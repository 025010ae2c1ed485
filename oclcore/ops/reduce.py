"""Reductions (sum, mean, prod, var/std, norms, logsumexp, max/min and their
indices, all/any, count_nonzero) and cumulative ops (cumsum, cumprod, logcumsumexp, cummax, cummin).

Every reduction is an implementation made by :func:`_reduction` from a
function that checks a call through torch's meta kernel and describes it; a
call signature is planned once, and later calls with it only allocate the
outputs and launch. In a plan the reduced dims and the kept dims are each
collapsed, and cl/reduce.cl gives each output element a work-group
(tree in local memory; long reductions with few outputs are split into
chunks and a second pass), or a work-item when the reductions are short or
the outputs are the contiguous side. Ops sharing a state type form a family
run by one kernel (op code as an argument); one program per (input dtype,
compute type, output dtype) holds every family, softmax and the scans."""

import math
import typing

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, empty, resize_out, storage_bytes
from . import dtypes
from .meta import infer
from .copy import copy_into
from .pointwise import collapse

aten = torch.ops.aten

MAX_DIMS = 8
_INT32_MAX = 2**31 - 1
_STATE_BYTES = 32  # room for the largest per-output state of cl/reduce.cl

# op name -> (family kernel, op code in cl/reduce.cl)
OPS = {
    "sum": ("value", 0), "nansum": ("value", 1), "prod": ("value", 2), "amax": ("value", 3),
    "amin": ("value", 4), "all": ("value", 5), "any": ("value", 6), "mean": ("value", 7),
    "norm1": ("value", 8), "norm2": ("value", 9), "normp": ("value", 10), "norminf": ("value", 11),
    "normninf": ("value", 12),
    "count_nonzero": ("count", 0), "norm0": ("count", 0),
    "max": ("arg", 0), "min": ("arg", 1), "argmax": ("arg", 2), "argmin": ("arg", 3),
    "aminmax": ("aminmax", 0),
    "var": ("moments", 0), "std": ("moments", 1), "var_mean": ("moments", 2), "std_mean": ("moments", 3),
    "logsumexp": ("lse", 0),
}
MODE_GROUP, MODE_PARTS, MODE_ITEM = 0, 1, 2
# Reductions this short run one work-item per output (MODE_ITEM) unless their elements are
# contiguous: on an H200 a mean over 14x14 or 7x7 positions of 64x672 or 64x1152 planes took
# 38 / 18 us against 102 / 55 us with a work-group per output (bench/probes/reduce_rows.py).
ITEM_MAX_NRED = 256
# Longer reductions over strided columns are cut into chunks of at least ITEM_MAX_NRED elements
# for about this many work-items (then a pass folding each output's chunks): convnext_small's
# layer-scale gradients (96 channels of 16x56x56 sums) took 2.6 ms each with a work-item per channel.
COLUMN_ITEMS = 65536
# Sums, means and norms over contiguous elements run reduce_rows: a power of two of work-items
# per output, each folding about this many elements, the rest of the work-group other outputs
# (0: never).
ROW_ELEMENTS_PER_ITEM = 32

_kernels = {}
_local_sizes = {}



def _signature(name, s, i):
    if name.startswith("reduce_"):
        return "B" + i + "B" + i + "B" + i + "B" + i + s + s + i + i + "i" + i + "iVVViVVii"
    if name == "softmax":
        return "B" + i + "B" + i + i + i + "iViVV" + i + i + "i"
    if name == "softmax_backward":
        return "B" + i + "B" + i + "B" + i + i + i + "iViVVV" + i + i + i + "i"
    return "B" + i + "B" + i + i + i + "iVVV" + i + i + "iB" + i  # scan


def kernel(name, in_dtype, ct, out_dtype, idx, dev):
    """Kernel ``name`` (reduce_<family>, softmax, softmax_backward, scan) of the program that loads
    ``in_dtype``, computes in OpenCL type ``ct`` and stores ``out_dtype``; ``idx`` is "int" or "long"."""
    key = (name, in_dtype, ct, out_dtype, idx, dev.index)
    k = _kernels.get(key)
    if k is not None:
        return k
    defines = {"TI": dtypes.storage(in_dtype), "LDI": dtypes.load_macro(in_dtype), "CT": ct,
               "TO": dtypes.storage(out_dtype), "STO": dtypes.store_macro(out_dtype), "IDX": idx,
               "WG": runtime.work_group_size(dev)}
    if not dtypes.is_float_compute(ct):
        defines["CT_IS_INT"] = None
        if ct == "long":
            defines["CT_IS_LONG"] = None
    if ct == "double" or torch.float64 in (in_dtype, out_dtype):
        defines["FP64"] = None
    sig = _signature(name, dtypes.SCALAR_CHAR[ct], "l" if idx == "long" else "i")
    k = runtime.get_kernel(("types.cl", "reduce.cl", "scan.cl"), defines, name, sig, dev)
    _kernels[key] = k
    return k


def group_size(k, dev, span):
    """Work-group size for kernel ``k`` folding ``span`` items per group: a power of two, at most
    the program's WG and what ``k`` allows, no larger than needed for ``span`` but at least 4."""
    n = _local_sizes.get(k)
    if n is None:
        n = runtime.work_group_size(dev)
        while n > k.max_work_group_size:
            n //= 2
        _local_sizes[k] = n
    while n > 4 and n // 2 >= span:  # (PoCL crashed running the tree with work-groups of 2)
        n //= 2
    return n


def normalize_dims(x, dim, empty_means_all=True):
    """Sorted, non-negative reduced dims for a ``dim`` argument (int, list or None); torch's meta
    kernel has already checked the range. A 0-dim tensor has none."""
    nd = x.dim()
    if nd == 0:
        return []
    if dim is None:
        return list(range(nd))
    if isinstance(dim, int):
        dim = [dim]
    if len(dim) == 0:
        return list(range(nd)) if empty_means_all else []
    return sorted({d % nd for d in dim})


def _check_rank(n, what):
    if n > MAX_DIMS:
        raise RuntimeError(f"ocl: {what} over a tensor with more than {MAX_DIMS} non-mergeable dimensions")


def row_geometry(shape, tensors_strides, dim):
    """For ops along one dim: (nrows, D, krank, kept sizes, [kept strides per tensor],
    [dim stride per tensor]). ``tensors_strides`` lists each tensor's strides."""
    nd = len(shape)
    if nd == 0:
        return 1, 1, 0, (), [() for _ in tensors_strides], [0 for _ in tensors_strides]
    kept = [d for d in range(nd) if d != dim]
    sizes, kst = collapse([shape[d] for d in kept], [[st[d] for d in kept] for st in tensors_strides])
    _check_rank(len(sizes), "an op along a dim")
    return (math.prod(shape[d] for d in kept), shape[dim], len(sizes), tuple(sizes),
            [tuple(s) for s in kst], [st[dim] for st in tensors_strides])


# ---- planning: once per call signature ----

ONE, TWO, SAME = 0, 1, 2  # one output; two returned as a tuple; one written as both (argmax's indices)
_PLAIN = frozenset({int, bool, float, str, type(None), torch.dtype})
_MAX_CALLS = 4096  # signatures kept per op
UNLIMITED = math.inf


class Reduction(typing.NamedTuple):
    """What a checked call reduces: kernel ``op`` over ``reduced`` dims of x into outputs of
    ``specs`` (shape, dtype, strides), computing in ``ct``; ``form`` says how outputs are returned."""
    op: str
    specs: list
    reduced: list
    ct: str
    params: tuple = (0, 0)
    keep_order: bool = False
    program_dtype: torch.dtype = None
    form: int = ONE


def call_key(x, args=(), kwargs=None):
    """Cache key of a call on ocl tensor ``x``: the dtype, shape, strides and device of x and of
    the other ocl tensors, the other arguments by value (lists as tuples). None when an argument
    is of another kind."""
    if type(x) is not OclTensor:
        return None
    key = [x.dtype, x.shape, x.stride(), x._index]
    for a in args:
        ty = type(a)
        if ty is list or ty is tuple:
            a = tuple(a)
        elif ty is OclTensor:
            a = (a.dtype, a.shape, a.stride(), a._index)
        elif ty not in _PLAIN:
            return None
        key.append(a)
    if kwargs:
        for name, v in kwargs.items():
            if type(v) not in _PLAIN:
                return None
            key += (name, v)
    return tuple(key)


def keep(calls, key, call):
    """Stores a planned call; a full cache starts over (keys with NaN values never repeat)."""
    if len(calls) >= _MAX_CALLS:
        calls.clear()
    calls[key] = call


def index_limit(t):
    """Buffer bytes from which tensor ``t`` needs 64-bit indices."""
    return (_INT32_MAX + 1) * t.element_size()


def index_type(*tensors, span=0):
    """ "long" when any tensor's buffer, or an output spanning ``span`` elements, holds more than
    2**31 - 1 elements, else "int"."""
    if span > _INT32_MAX:
        return "long"
    for t in tensors:
        if t is not None and t._buf.nbytes // max(t.element_size(), 1) > _INT32_MAX:
            return "long"
    return "int"


def _reduction(describe):
    """The aten implementation of a reduction: ``describe(x, *args, **kwargs)`` checks a call (torch's
    meta kernel, so torch's errors) and returns its :class:`Reduction`. A signature that passed is
    planned once; later calls with it only allocate the outputs and launch."""
    calls = {}

    def impl(x, *args, **kwargs):
        key = call_key(x, args, kwargs)
        call = calls.get(key)
        if call is None or x._buf.nbytes >= call[0]:
            call = _prepare(x, describe(x, *args, **kwargs))
            if key is not None and call[0]:
                keep(calls, key, call)
        return _launch(call, x)

    return impl


def _prepare(x, r):
    """(x's buffer byte limit, form, output specs, kernel, launches, chunks, outputs, p0, p1)."""
    p0, p1 = (dtypes.py_scalar(p, r.ct) for p in r.params)
    shape, dtype, stride = r.specs[0]
    nout = math.prod(shape)
    if nout == 0:
        return UNLIMITED, r.form, r.specs, None, (), 1, 0, p0, p1
    idx = index_type(x, span=storage_bytes(shape, stride, 1))
    k, chunks, launches = _plan(r.op, x, r.reduced, shape, stride, r.ct, r.keep_order,
                                r.program_dtype or dtype, idx)
    return 0 if idx == "long" else index_limit(x), r.form, r.specs, k, launches, chunks, nout, p0, p1


def _launch(call, x):
    """Allocates a prepared call's outputs and enqueues its launches on ``x``."""
    _, form, specs, k, launches, chunks, nout, p0, p1 = call
    index = x._index
    shape, dtype, stride = specs[0]
    out = empty(shape, dtype, index, stride)
    if form == ONE:
        out2 = None
    elif form == SAME:
        out2 = out
    else:
        shape2, dtype2, stride2 = specs[1]
        out2 = empty(shape2, dtype2, index, stride2)
    if launches:
        part = empty((nout * chunks * _STATE_BYTES,), torch.uint8, index) if chunks > 1 else None
        head = (out._buf, 0, None if out2 is None else out2._buf, 0, x._buf, x.storage_offset(),
                None if part is None else part._buf, 0, p0, p1)
        for gsize, lsize, tail in launches:
            k.launch(gsize, lsize, head + tail)
    return out if form != TWO else (out, out2)


def _plan(op, x, reduced, out_shape, out_stride, ct, keep_order, store_dtype, idx):
    """Kernel, chunk count and launches (global size, local size, geometry arguments) for reducing
    x over ``reduced`` into outputs of ``out_shape``/``out_stride``: they depend only on shapes,
    strides and dtypes."""
    nout = math.prod(out_shape)
    nd = x.dim()
    shape, xs = tuple(x.shape), x.stride()
    kept = [d for d in range(nd) if d not in reduced]
    ost = [out_stride[d] for d in kept] if len(out_shape) == nd else list(out_stride[:len(kept)])
    ksz, (kin, kout) = collapse([shape[d] for d in kept], [[xs[d] for d in kept], ost])
    red = list(reduced) if keep_order else sorted(reduced, key=lambda d: -abs(xs[d]))
    rsz, (rin,) = collapse([shape[d] for d in red], [[xs[d] for d in red]])
    _check_rank(len(ksz), op)
    _check_rank(len(rsz), op)
    nred = math.prod(shape[d] for d in red)
    dev = runtime.device(x._index)

    family, code = OPS[op]
    rows = (ROW_ELEMENTS_PER_ITEM > 0 and family == "value" and tuple(rin) == (1,) and nred > 4
            and (nout >= 64 or nred < 16384))
    columns = not rows and (nred <= ITEM_MAX_NRED
                            or (rin and rin[-1] != 1 and nout >= 64 and (not kin or kin[-1] == 1)))
    chunks = 1
    if not rows and not columns and nout < 64 and nred >= 16384:
        chunks = max(1, min(-(-256 // nout), nred // 4096))
    elif columns and nred > ITEM_MAX_NRED:  # few long columns (a per-channel sum over N, H, W)
        chunks = max(1, min(-(-COLUMN_ITEMS // nout), nred // ITEM_MAX_NRED))
    chunk_len = -(-nred // chunks) if nred else 0
    if chunk_len:
        chunks = -(-nred // chunk_len)

    k = kernel("reduce_rows" if rows else "reduce_" + family, x.dtype, ct, store_dtype, idx, dev)
    geometry = (nout, nred, chunks, chunk_len, len(ksz), tuple(ksz), tuple(kin), tuple(kout), len(rsz),
                tuple(rsz), tuple(rin), code)
    if rows:  # (reduce_rows takes reduce_value's arguments, its lanes per output in the chunks slot)
        g = group_size(k, dev, nout * nred)
        lanes = min(g, 1 << max(0, (-(-nred // ROW_ELEMENTS_PER_ITEM) - 1).bit_length()))
        geometry = geometry[:2] + (lanes,) + geometry[3:]
        return k, 1, (((-(-nout * lanes // g) * g,), (g,), geometry + (MODE_GROUP,)),)
    if columns:
        n = nout * chunks
        launches = [((n,), (64,) if n >= 64 else None, geometry + (MODE_ITEM,))]
    else:
        g1 = group_size(k, dev, chunk_len)
        launches = [((nout * chunks * g1,), (g1,), geometry + (MODE_GROUP,))]
    if chunks > 1:  # a second pass folds each output's chunk states
        g2 = group_size(k, dev, chunks)
        launches.append(((nout * g2,), (g2,), geometry + (MODE_PARTS,)))
    return k, chunks, tuple(launches)


def spec(meta):
    """(shape, dtype, strides) of a meta tensor: an output to allocate."""
    return tuple(meta.shape), meta.dtype, meta.stride()


def _new(meta, x):
    return empty(meta.shape, meta.dtype, x._index, meta.stride())


def _ct(dtype):
    dtypes.check(dtype, "reductions")
    return dtypes.compute(dtype)


# ---- out= overloads: compute, then copy into the given tensors ----

def _out_names(func):
    return [a.name for a in func._schema.arguments if a.kwarg_only and a.alias_info is not None
            and a.alias_info.is_write]


def _write_out(func, out, result):
    if result.dtype != out.dtype and not torch.can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"result type {result.dtype} can't be cast to the desired output type {out.dtype}")
    return copy_into(resize_out(out, result.shape), result)


def register_out(func, functional):
    """Registers out= overload ``func`` as ``functional`` followed by copies into the out tensors.
    Where ``func`` takes a dtype and none is given, the out tensor's dtype is the result's (torch's
    rule for sum and prod)."""
    names = _out_names(func)
    takes_dtype = any(a.name == "dtype" for a in func._schema.arguments)

    def impl(*args, **kwargs):
        outs = [kwargs.pop(n) for n in names]
        if takes_dtype and kwargs.get("dtype") is None and isinstance(outs[0], torch.Tensor):
            kwargs["dtype"] = outs[0].dtype
        result = functional(*args, **kwargs)
        if len(outs) == 1:
            return _write_out(func, outs[0], result)
        return tuple(_write_out(func, o, r) for o, r in zip(outs, result))

    register(func)(impl)


# ---- sum, nansum, mean, prod ----

def _sum_like(op, meta_func):
    def describe(x, dim=None, keepdim=False, *, dtype=None):
        meta = infer(meta_func, (x, dim, keepdim), {"dtype": dtype} if dtype is not None else None)
        return Reduction(op, [spec(meta)], normalize_dims(x, dim), _ct(meta.dtype))
    return describe


_describe_sum = _sum_like("sum", aten.sum.dim_IntList)
_sum_dim = _reduction(_describe_sum)
register(aten.sum.dim_IntList)(_sum_dim)
register_out(aten.sum.IntList_out, _sum_dim)
register(aten.sum.default)(_reduction(lambda x, *, dtype=None: _describe_sum(x, None, False, dtype=dtype)))

_nansum = _reduction(_sum_like("nansum", aten.nansum.default))
register(aten.nansum.default)(_nansum)
register_out(aten.nansum.out, _nansum)

_mean_dim = _reduction(_sum_like("mean", aten.mean.dim))
register(aten.mean.dim)(_mean_dim)
register_out(aten.mean.out, _mean_dim)


def _full(op, meta_func):
    """Describes ``op`` over every dim, checked by ``meta_func(x, dtype=)``."""
    def describe(x, *, dtype=None):
        meta = infer(meta_func, (x,), {"dtype": dtype} if dtype is not None else None)
        return Reduction(op, [spec(meta)], normalize_dims(x, None), _ct(meta.dtype))
    return describe


register(aten.mean.default)(_reduction(_full("mean", aten.mean.default)))
_prod_dim = _reduction(_sum_like("prod", aten.prod.dim_int))
register(aten.prod.dim_int)(_prod_dim)
register_out(aten.prod.int_out, _prod_dim)
register(aten.prod.default)(_reduction(_full("prod", aten.prod.default)))


# ---- var, std (with correction), var_mean, std_mean ----

def _moments(op, meta_func, two):
    def describe(x, dim=None, *, correction=None, keepdim=False):
        meta = infer(meta_func, (x, dim), {"correction": correction, "keepdim": keepdim})
        first = meta[0] if two else meta
        c = 1 if correction is None else correction
        return Reduction(op, [spec(first)] * (2 if two else 1), normalize_dims(x, dim), _ct(first.dtype), (c, 0),
                         form=TWO if two else ONE)
    return _reduction(describe)


_var = _moments("var", aten.var.correction, False)
_std = _moments("std", aten.std.correction, False)
register(aten.var.correction)(_var)
register(aten.std.correction)(_std)
register_out(aten.var.correction_out, _var)
register_out(aten.std.correction_out, _std)
register(aten.var_mean.correction)(_moments("var_mean", aten.var_mean.correction, True))
register(aten.std_mean.correction)(_moments("std_mean", aten.std_mean.correction, True))


# ---- amax, amin, aminmax, max/min (with indices), argmax/argmin ----

def _extreme(op, meta_func):
    def describe(x, dim=(), keepdim=False):
        meta = infer(meta_func, (x, dim, keepdim))
        return Reduction(op, [spec(meta)], normalize_dims(x, dim), _ct(x.dtype))
    return _reduction(describe)


for _name, _op in (("amax", "amax"), ("amin", "amin")):
    _impl = _extreme(_op, getattr(aten, _name).default)
    register(getattr(aten, _name).default)(_impl)
    register_out(getattr(aten, _name).out, _impl)


@_reduction
def _aminmax(x, *, dim=None, keepdim=False):
    lo, hi = infer(aten.aminmax.default, (x,), {"dim": dim, "keepdim": keepdim})
    return Reduction("aminmax", [spec(lo), spec(hi)], normalize_dims(x, dim), _ct(x.dtype), form=TWO)


register(aten.aminmax.default)(_aminmax)
register_out(aten.aminmax.out, _aminmax)


def _with_index(op, meta_func):
    def describe(x, dim, keepdim=False):
        values, indices = infer(meta_func, (x, dim, keepdim))
        specs = [spec(values), (tuple(indices.shape), torch.int64, values.stride())]
        return Reduction(op, specs, normalize_dims(x, dim), _ct(x.dtype), keep_order=True, form=TWO)
    return _reduction(describe)


_max_dim = _with_index("max", aten.max.dim)
_min_dim = _with_index("min", aten.min.dim)
register(aten.max.dim)(_max_dim)
register(aten.min.dim)(_min_dim)
register_out(aten.max.dim_max, _max_dim)
register_out(aten.min.dim_min, _min_dim)


def _full_extreme(op, name):
    def describe(x):
        if x.numel() == 0:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
                               "Specify the reduction dim with the 'dim' argument.")
        return Reduction(op, [((), x.dtype, ())], normalize_dims(x, None), _ct(x.dtype))
    return _reduction(describe)


register(aten.max.default)(_full_extreme("amax", "max"))
register(aten.min.default)(_full_extreme("amin", "min"))


def _arg(op, meta_func):
    def describe(x, dim=None, keepdim=False):
        meta = infer(meta_func, (x, dim, keepdim))
        # the kernel writes only the indices (its second output); the program is the one for x's dtype
        return Reduction(op, [spec(meta)], normalize_dims(x, dim), _ct(x.dtype), keep_order=True,
                         program_dtype=x.dtype, form=SAME)
    return _reduction(describe)


for _name in ("argmax", "argmin"):
    _impl = _arg(_name, getattr(aten, _name).default)
    register(getattr(aten, _name).default)(_impl)
    register_out(getattr(aten, _name).out, _impl)


# ---- norms, logsumexp ----

def _norm_op(ord):
    if ord == 2:
        return "norm2"
    if ord == 1:
        return "norm1"
    if ord == 0:
        return "norm0"
    if ord == math.inf:
        return "norminf"
    if ord == -math.inf:
        return "normninf"
    return "normp"


@_reduction
def _vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    meta = infer(aten.linalg_vector_norm.default, (x, ord, dim, keepdim), {"dtype": dtype} if dtype else None)
    ord = float(ord)
    return Reduction(_norm_op(ord), [spec(meta)], normalize_dims(x, dim), _ct(meta.dtype), (ord, 0))


register(aten.linalg_vector_norm.default)(_vector_norm)
register_out(aten.linalg_vector_norm.out, _vector_norm)


@_reduction
def _logsumexp(x, dim, keepdim=False):
    meta = infer(aten.logsumexp.default, (x, dim, keepdim))
    return Reduction("logsumexp", [spec(meta)], normalize_dims(x, dim), _ct(meta.dtype))


register(aten.logsumexp.default)(_logsumexp)
register_out(aten.logsumexp.out, _logsumexp)


# ---- all, any, count_nonzero ----

def _logical(op, packet):
    def reduce_dims(meta_func, empty_means_all):
        def describe(x, dim=None, keepdim=False):
            meta = infer(meta_func, (x, dim, keepdim))
            return Reduction(op, [spec(meta)], normalize_dims(x, dim, empty_means_all), _ct(x.dtype))
        return _reduction(describe)

    by_dim = reduce_dims(packet.dim, True)
    by_dims = reduce_dims(packet.dims, False)

    @_reduction
    def full(x):
        meta = infer(packet.default, (x,))
        return Reduction(op, [spec(meta)], normalize_dims(x, None), _ct(x.dtype))

    register(packet.default)(full)
    register(packet.dim)(by_dim)
    register(packet.dims)(by_dims)
    register_out(packet.out, by_dim)
    register_out(packet.dims_out, by_dims)
    register_out(packet.all_out, full)


_logical("all", aten.all)
_logical("any", aten.any)


def _count_nonzero(x, dim):
    meta = infer(aten.count_nonzero.dim_IntList, (x, dim))
    return Reduction("count_nonzero", [spec(meta)], normalize_dims(x, dim), _ct(x.dtype))


register(aten.count_nonzero.dim_IntList)(_reduction(_count_nonzero))
register(aten.count_nonzero.default)(_reduction(lambda x, dim=None: _count_nonzero(x, normalize_dims(x, dim))))


# ---- cumsum, cumprod, logcumsumexp, cummax, cummin ----

SCANS = ("cumsum", "cumprod", "logcumsumexp", "cummax", "cummin")


def scan(op, x, dim, out, ct, positions=None):
    """Inclusive scan of ``x`` along ``dim`` into ``out``: ``op`` names one of SCANS; cummax and
    cummin also write each element's source position into ``positions`` (laid out like out)."""
    if out.numel() == 0:
        return out
    dim = dim % x.dim() if x.dim() else 0
    nrows, D, krank, ksz, (kin, kout), (din, dout) = row_geometry(tuple(x.shape), [x.stride(), out.stride()], dim)
    dev = runtime.device(x._index)
    k = kernel("scan", x.dtype, ct, out.dtype, index_type(x, out), dev)
    pos, pos_off = (positions._buf, positions.storage_offset()) if positions is not None else (out._buf, 0)
    k.launch((nrows,), (64,) if nrows >= 64 else None,
             (out._buf, out.storage_offset(), x._buf, x.storage_offset(), nrows, D, krank, ksz, kin, kout,
              din, dout, SCANS.index(op), pos, pos_off))
    return out


def _scan_op(op, meta_func):
    def impl(x, dim, *, dtype=None):
        if op == "logcumsumexp" and not x.dtype.is_floating_point:
            raise RuntimeError(f"\"logcumsumexp\" not implemented for '{dtypes.type_name(x.dtype)}'")
        meta = infer(meta_func, (x, dim), {"dtype": dtype} if dtype is not None else None)
        out = _new(meta, x)
        return scan(op, x, dim, out, _ct(meta.dtype))

    def inplace(x, dim, *, dtype=None):
        infer(meta_func, (x, dim), {"dtype": dtype} if dtype is not None else None)
        return scan(op, x, dim, x, _ct(x.dtype))

    return impl, inplace


for _name in ("cumsum", "cumprod"):
    _impl, _inplace = _scan_op(_name, getattr(aten, _name).default)
    register(getattr(aten, _name).default)(_impl)
    register(getattr(aten, _name + "_").default)(_inplace)
    register_out(getattr(aten, _name).out, _impl)
register(aten.logcumsumexp.default)(_scan_op("logcumsumexp", aten.logcumsumexp.default)[0])


def _running_extreme(op):
    def impl(x, dim):
        values, indices = (_new(m, x) for m in infer(getattr(aten, op).default, (x, dim)))
        scan(op, x, dim, values, _ct(x.dtype), positions=indices)
        return values, indices
    impl.__doc__ = f"torch.{op}: running {op[3:]}imum along dim and where it came from."
    return impl


for _name in ("cummax", "cummin"):
    register(getattr(aten, _name).default)(_running_extreme(_name))
