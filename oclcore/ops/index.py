"""Indexing ops: gathers (index_select, gather, advanced indexing, embedding,
masked_select), scatters (scatter, scatter_add, scatter_reduce, index_add,
index_put_, embedding_dense_backward) and nonzero, on cl/index.cl.

Every gather is one kernel: out[i] = src[strided offset of i + index * stride].
Every scatter is deterministic: the destination offset of each source element
is computed, the offsets are sorted stably (oclcore.ops.sort), and each run
of equal destinations is reduced in source order by one work-item, so
duplicates always combine in the same order and no float atomics are used.

Out-of-range indices: an index tensor on the CPU is checked on the host before
the op (torch's error at once). An index tensor on the device is checked by
the kernel, which records the bad value in a per-device error flag, reads
index 0 instead (never out-of-bounds memory) and returns without waiting; the
flag is read by :func:`check_index_errors` (device_errors.py) at the next
point that waits for the device (a copy to the host, .item(), synchronize,
nonzero, masked_select, boolean indexing) and raises IndexError there.
This is torch's CUDA behaviour (an asynchronous device-side assert) without
blocking the host in every indexing op."""

import numpy as np
import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, alias, empty, resize_out
from . import copy as _copy
from . import dtypes, pointwise
from .elementwise import scalar_value
from .device_errors import check_index_errors, error_buffer
from .meta import infer

aten = torch.ops.aten

MAX_DIMS = 8
_INT32_MAX = 2**31 - 1
_MOVE_TYPE = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}
_kernels = {}


def kernel(name, dtype, signature, index):
    """Kernel ``name`` of the index/sort program for tensors of ``dtype`` on ocl:index."""
    key = (name, dtype, index)
    k = _kernels.get(key)
    if k is None:
        dtypes.check(dtype, name)
        ct = dtypes.compute(dtype)
        defines = {"TO": dtypes.storage(dtype), "CT": ct, "LDX": dtypes.load_macro(dtype),
                   "STX": dtypes.store_macro(dtype), "TM": _MOVE_TYPE[dtype.itemsize]}
        if not dtypes.is_float_compute(ct):
            defines["CT_IS_INT"] = None
        if dtype is torch.float64:
            defines["FP64"] = None
        k = runtime.get_kernel(("types.cl", "index.cl", "sort.cl"), defines, name, signature,
                               runtime.device(index))
        _kernels[key] = k
    return k




def vec8(values):
    """Up to 8 ints as a kernel int8 vector argument (raises when a value exceeds int32)."""
    values = tuple(int(v) for v in values)
    if len(values) > MAX_DIMS:
        raise RuntimeError(f"ocl: indexing supports at most {MAX_DIMS} non-mergeable dimensions")
    if any(abs(v) > _INT32_MAX for v in values):
        raise RuntimeError("ocl: indexing a tensor whose sizes or strides exceed 2**31 elements")
    return values + (0,) * (MAX_DIMS - len(values))


def geometry(shape, strides):
    """(rank, sizes, [strides per operand]) as kernel arguments, dims collapsed."""
    sizes, st = pointwise.collapse(tuple(shape), [tuple(s) for s in strides])
    return len(sizes), vec8(sizes), [vec8(s) for s in st]


def _local_size(n):
    return (256,) if n >= 256 else None


def device_index(idx, size, wrap, index, what="index"):
    """``idx`` as an int64 ocl tensor; a CPU index is checked against ``size`` here."""
    if not isinstance(idx, OclTensor):
        idx = torch.as_tensor(idx)
        if idx.numel() and size >= 0:
            lo = -size if wrap else 0
            bad = (idx < lo) | (idx >= size)
            if bool(bad.any()):
                v = int(idx[bad].flatten()[0])
                raise IndexError(f"{what} {v} is out of bounds for dimension with size {size}")
        return _copy.from_cpu(idx.long(), index)
    if idx.dtype is not torch.int64:
        return _copy.contiguous(idx, torch.int64)
    return idx


# ---- gathers ----

def gather_into(out, src, src_strides, src_offset, idx=None, idx_strides=None, dim_size=-1,
                dim_stride=0, wrap=False):
    """out[i] = src.storage[src_offset + sum(coord * src_strides) + idx[...] * dim_stride], the
    strides given over out's shape; ``idx`` an int64 ocl tensor read with ``idx_strides``."""
    n = out.numel()
    if n == 0:
        return out
    strides = [out.stride(), src_strides, idx_strides if idx is not None else (0,) * out.dim()]
    rank, sz, (so, ss, si) = geometry(out.shape, strides)
    k = kernel("gather", out.dtype, "BlBlBlilliBliVVVV", out._index)
    err = error_buffer(out._index) if idx is not None and dim_size >= 0 else out._buf
    k.launch((n,), _local_size(n), (
        out._buf, out.storage_offset(), src._buf, src_offset,
        (idx if idx is not None else out)._buf, idx.storage_offset() if idx is not None else 0,
        int(idx is not None), dim_size, dim_stride, int(wrap), err, n, rank, sz, so, ss, si))
    return out


def scatter_offsets(shape, dest_strides, idx=None, idx_strides=None, dim_size=-1, dim_stride=0,
                    wrap=False, index=0):
    """A contiguous int64 tensor of ``shape``: the destination offset of each element (strides over
    ``shape``), plus idx[...] * dim_stride."""
    out = empty(shape, torch.int64, index)
    n = out.numel()
    if n == 0:
        return out
    nd = len(shape)
    rank, sz, (sd, si) = geometry(shape, [dest_strides, idx_strides if idx is not None else (0,) * nd])
    k = kernel("scatter_offsets", torch.int64, "BlBlilliBliVVV", index)
    err = error_buffer(index) if idx is not None and dim_size >= 0 else out._buf
    k.launch((n,), _local_size(n), (
        out._buf, 0, (idx if idx is not None else out)._buf, idx.storage_offset() if idx is not None else 0,
        int(idx is not None), dim_size, dim_stride, int(wrap), err, n, rank, sz, sd, si))
    return out


def _broadcast_strides(t, shape):
    return pointwise.broadcast_strides(t, shape)


def _dim(dim, nd):
    return dim % nd if nd else 0


@register(aten.index_select.default, aten.index_select.out)
def index_select(x, dim, index, *, out=None):
    """x.index_select(dim, index)."""
    meta = infer(aten.index_select.default, (x, dim, index))
    result = empty(meta.shape, x.dtype, x._index) if out is None else out
    if result.numel() == 0:
        return result
    dim = _dim(dim, x.dim())
    size = x.shape[dim] if x.dim() else 1
    idx = device_index(index, size, False, x._index)
    src_strides = list(x.stride()) or [0]
    idx_strides = [0] * max(x.dim(), 1)
    src_strides[dim] = 0
    idx_strides[dim] = idx.stride()[0] if idx.dim() else 0
    if x.dim() == 0:
        src_strides, idx_strides = [], []
    gather_into(result, x, src_strides, x.storage_offset(), idx, idx_strides, size,
                x.stride()[dim] if x.dim() else 0)
    return result


@register(aten.gather.default, aten.gather.out)
def gather(x, dim, index, *, sparse_grad=False, out=None):
    """x.gather(dim, index)."""
    infer(aten.gather.default, (x, dim, index))
    result = empty(index.shape, x.dtype, x._index) if out is None else out
    if result.numel() == 0:
        return result
    dim = _dim(dim, x.dim())
    size = x.shape[dim] if x.dim() else 1
    idx = device_index(index, size, False, x._index)
    src_strides = list(x.stride()) + [0] * (idx.dim() - x.dim())
    if src_strides:
        src_strides[dim] = 0
    gather_into(result, x, src_strides, x.storage_offset(), idx, idx.stride(), size,
                x.stride()[dim] if x.dim() else 0)
    return result


@register(aten.embedding.default)
def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """F.embedding: rows of ``weight``."""
    infer(aten.embedding.default, (weight, indices, padding_idx, scale_grad_by_freq, sparse))
    shape = tuple(indices.shape) + (weight.shape[1],)
    out = empty(shape, weight.dtype, weight._index)
    if out.numel() == 0:
        return out
    idx = device_index(indices, weight.shape[0], False, weight._index)
    nd = idx.dim()
    gather_into(out, weight, (0,) * nd + (weight.stride(1),), weight.storage_offset(), idx,
                tuple(idx.stride()) + (0,), weight.shape[0], weight.stride(0))
    return out


# ---- advanced indexing ----

def _expand_masks(x, indices):
    """Indices with each bool/uint8 mask replaced by the long indices of its nonzero elements."""
    out = []
    for t in indices:
        if t is not None and t.dtype in (torch.bool, torch.uint8):
            d = len(out)
            for k in range(t.dim()):
                if d + k >= x.dim() or t.shape[k] != x.shape[d + k]:
                    raise IndexError(f"The shape of the mask {list(t.shape)} at index {k} does not match the "
                                     f"shape of the indexed tensor {list(x.shape)} at index {d + k}")
            if not isinstance(t, OclTensor):
                t = _copy.from_cpu(t, x._index)
            coords = nonzero(t)
            out.extend(aten.select.int(coords, 1, k) for k in range(t.dim()))
        else:
            out.append(t)
    return out


def advanced_index(x, indices):
    """The geometry of x[indices] (torch's advanced indexing): (result shape, x's strides over it,
    index tensor, its strides over it, dim size, dim stride); the index is one int64 tensor of
    element offsets (dim size -1: already checked) when several dims are indexed."""
    indices = _expand_masks(x, list(indices))
    if len(indices) > x.dim():
        raise IndexError(f"too many indices for tensor of dimension {x.dim()} (got {len(indices)})")
    indices += [None] * (x.dim() - len(indices))
    dims = [d for d, t in enumerate(indices) if t is not None]
    if not dims:
        raise RuntimeError("ocl: index with no index tensors")
    bshape = tuple(torch.broadcast_shapes(*(tuple(indices[d].shape) for d in dims)))
    tensors = [device_index(indices[d], x.shape[d], True, x._index) for d in dims]
    adjacent = dims == list(range(dims[0], dims[-1] + 1))
    rest = [d for d in range(x.dim()) if d not in dims]
    before = [d for d in rest if d < dims[0]] if adjacent else []
    after = [d for d in rest if d not in before]
    shape = tuple(x.shape[d] for d in before) + bshape + tuple(x.shape[d] for d in after)
    nb = len(bshape)
    src_strides = tuple(x.stride(d) for d in before) + (0,) * nb + tuple(x.stride(d) for d in after)

    def over_result(strides):
        return (0,) * len(before) + tuple(strides) + (0,) * len(after)

    if len(dims) == 1:
        idx = tensors[0]
        return (shape, src_strides, idx, over_result(_broadcast_strides(idx, bshape)),
                x.shape[dims[0]], x.stride(dims[0]))
    acc = empty(bshape, torch.int64, x._index)
    n = acc.numel()
    if n:
        k = kernel("index_offsets", torch.int64, "BlBlillBliVV", x._index)
        err = error_buffer(x._index)
        for j, (d, t) in enumerate(zip(dims, tensors)):
            rank, sz, (si,) = geometry(bshape, [_broadcast_strides(t, bshape)])
            k.launch((n,), _local_size(n), (acc._buf, 0, t._buf, t.storage_offset(), int(j == 0),
                                            x.shape[d], x.stride(d), err, n, rank, sz, si))
    return shape, src_strides, acc, over_result(acc.stride()), -1, 1


@register(aten.index.Tensor, aten.index.Tensor_out, aten._unsafe_index.Tensor)
def index(x, indices, *, out=None):
    """x[indices] with index tensors (int64/int32/bool), None for whole dims."""
    shape, src_strides, idx, idx_strides, size, stride = advanced_index(x, indices)
    result = empty(shape, x.dtype, x._index) if out is None else out
    gather_into(result, x, src_strides, x.storage_offset(), idx, idx_strides, size, stride, wrap=True)
    return result


@register(aten.masked_select.default, aten.masked_select.out)
def masked_select(x, mask, *, out=None):
    """x[mask] with mask broadcast against x (a 1-D result; waits for the count)."""
    if mask.dtype is not torch.bool:
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, but got {mask.dtype}")
    shape = tuple(torch.broadcast_shapes(tuple(x.shape), tuple(mask.shape)))
    xb = alias(x, shape, _broadcast_strides(x, shape), x.storage_offset())
    mb = alias(mask, shape, _broadcast_strides(mask, shape), mask.storage_offset())
    if not shape:
        xb, mb = aten.view.default(xb, (1,)), aten.view.default(mb, (1,))
    coords = nonzero(mb)
    result = index(xb, [aten.select.int(coords, 1, k) for k in range(mb.dim())])
    return result if out is None else _write_out(out, result)


def _mask_positions(mask, shape):
    """(flat bool mask broadcast to ``shape``, for each element the count of True elements before
    it: its position in a masked_scatter source)."""
    flat = aten.reshape.default(aten.expand.default(mask, list(shape)), [-1])
    before = aten.sub.Tensor(aten.cumsum.default(flat, 0, dtype=torch.int64), aten._to_copy.default(
        flat, dtype=torch.int64))
    return flat, before


@register(aten.masked_scatter.default)
def masked_scatter(x, mask, source):
    """x with its elements where mask (broadcast) is True replaced by source's first elements in
    order. Waits for the device only when source may be too small (fewer elements than the mask)."""
    meta = infer(aten.masked_scatter.default, (x, mask, source))
    shape = tuple(meta.shape)
    if meta.numel() == 0:
        return aten.clone.default(aten.expand.default(x, list(shape)))
    flat, before = _mask_positions(mask, shape)
    n = source.numel()
    if n < flat.numel() and int(aten.sum.default(flat).item()) > n:
        raise RuntimeError("Number of elements of source < number of ones in mask")
    if n == 0:  # (the mask is all False)
        return aten.clone.default(aten.expand.default(x, list(shape)))
    picked = aten.index_select.default(aten.reshape.default(source, [-1]), 0, aten.clamp.default(before, 0, n - 1))
    return aten.where.self(aten.reshape.default(flat, list(shape)), aten.reshape.default(picked, list(shape)), x)


@register(aten.masked_scatter_.default)
def masked_scatter_(x, mask, source):
    return aten.copy_.default(x, masked_scatter(x, mask, source))


@register(aten.masked_scatter_backward.default)
def masked_scatter_backward(grad, mask, sizes):
    """Gradient for masked_scatter's source: grad's elements where mask is True, in order, then zeros,
    in the source's shape (without reading the count back: the others go to a discarded slot)."""
    n = 1
    for s in sizes:
        n *= s
    flat, before = _mask_positions(mask, tuple(grad.shape))
    slots = aten.zeros.default([n + 1], dtype=grad.dtype, device=grad.device)
    target = aten.where.self(flat, aten.clamp.default(before, 0, n), aten.full_like.default(before, n))
    aten.index_put_.default(slots, [target], aten.reshape.default(grad, [-1]))
    return aten.reshape.default(aten.slice.Tensor(slots, 0, 0, n), list(sizes))


# ---- nonzero ----

_NONZERO_CHUNK = 256


@register(aten.nonzero.default, aten.nonzero.out)
def nonzero(x, *, out=None):
    """Coordinates of x's nonzero elements, (count, x.dim()) int64; waits to read the count, as
    torch does on CUDA."""
    dtypes.check(x.dtype, "nonzero")
    if x.dim() > MAX_DIMS:
        raise RuntimeError(f"ocl: nonzero supports at most {MAX_DIMS} dimensions")
    nd = x.dim()
    counts = _nonzero_chunk_counts(x)
    count = 0
    if counts.numel():
        check_index_errors(x._index)
        host = _copy.to_cpu(counts).numpy()
        starts = np.concatenate(([0], np.cumsum(host)[:-1])).astype(np.int64)
        count = int(host.sum())
    result = empty((count, nd), torch.int64, x._index)
    if count and nd:
        _nonzero_write(x, _copy.from_cpu(torch.from_numpy(starts), x._index), result)
    return result if out is None else _write_out(out, result)


def _nonzero_chunk_counts(x):
    """Nonzero elements per chunk of _NONZERO_CHUNK elements of x (in index order), int64."""
    groups = (x.numel() + _NONZERO_CHUNK - 1) // _NONZERO_CHUNK
    counts = empty((groups,), torch.int64, x._index)
    if groups:
        k = kernel("nonzero_count", x.dtype, "BllliVVBl", x._index)
        k.launch((groups,), _local_size(groups), (x._buf, x.storage_offset(), x.numel(), _NONZERO_CHUNK, x.dim(),
                                                  vec8(x.shape), vec8(x.stride()), counts._buf, 0))
    return counts


def _nonzero_write(x, starts, result):
    """Writes the coordinates of x's nonzero elements into result's rows, chunk g from row
    starts[g]; those past result's last row are dropped."""
    groups = starts.numel()
    k = kernel("nonzero_write", x.dtype, "BllliVVBlBll", x._index)
    k.launch((groups,), _local_size(groups), (x._buf, x.storage_offset(), x.numel(), _NONZERO_CHUNK, x.dim(),
                                              vec8(x.shape), vec8(x.stride()), starts._buf, starts.storage_offset(),
                                              result._buf, 0, result.shape[0]))


@register(aten.nonzero_static.default, aten.nonzero_static.out)
def nonzero_static(x, *, size, fill_value=-1, out=None):
    """The first ``size`` rows of nonzero(x), padded with ``fill_value``: a fixed shape, so
    nothing is read back (unlike nonzero)."""
    dtypes.check(x.dtype, "nonzero_static")
    if size < 0:
        raise RuntimeError("nonzero_static: 'size' must be an non-negative integer")
    if x.dim() > MAX_DIMS:
        raise RuntimeError(f"ocl: nonzero_static supports at most {MAX_DIMS} dimensions")
    result = aten.full.default([size, x.dim()], fill_value, dtype=torch.int64, device=x.device)
    if size and x.dim() and x.numel():
        counts = _nonzero_chunk_counts(x)
        starts = aten.sub.Tensor(aten.cumsum.default(counts, 0), counts)
        _nonzero_write(x, starts, result)
    return result if out is None else _write_out(out, result)


def _write_out(out, result):
    return resize_out(out, result.shape).copy_(result)


@register(aten.nonzero_numpy.default)
def nonzero_numpy(x):
    """torch.where(cond) / cond.nonzero(as_tuple=True): one index tensor per dim."""
    if x.dim() == 0:
        x = aten.view.default(x, (1,))
    coords = nonzero(x)
    return tuple(aten.select.int(coords, 1, k) for k in range(x.dim()))


# ---- scatters ----

_REDUCE_OPS = {"assign": 0, "sum": 1, "add": 1, "prod": 2, "multiply": 2, "mean": 3, "amax": 4, "amin": 5}


def reduce_into(out, offsets, values, op, include_self, inner=1, out_inner=0, values_row=1,
                values_inner=0):
    """out.storage[out.offset + offsets[p] + e * out_inner] = reduce(values rows that share an offset,
    in their order, e < inner) (op a key of _REDUCE_OPS); deterministic."""
    from .sort import sort_rows

    n = offsets.numel()
    if n == 0 or inner == 0:
        return out
    keys, pos = sort_rows(aten.view.default(offsets, (1, n)), descending=False)
    k = kernel("segment_reduce", out.dtype, "BlBlBBlllllii", out._index)
    k.launch((n, inner), None, (out._buf, out.storage_offset(), values._buf, values.storage_offset(),
                                keys._buf, pos._buf, n, inner, out_inner, values_row, values_inner,
                                _REDUCE_OPS[op], int(include_self)))
    return out


def _values_like(src, shape, dtype, index):
    """``src`` (tensor or number) as a contiguous ocl tensor of ``shape`` and ``dtype``: a tensor
    larger than shape is read over its leading part, as scatter does."""
    out = empty(shape, dtype, index)
    if out.numel() == 0:
        return out
    if isinstance(src, OclTensor):
        if src.dim() == len(shape) and tuple(src.shape) != tuple(shape):
            src = alias(src, tuple(shape), src.stride(), src.storage_offset())
        pointwise.run("copy", out, [src])
    else:
        pointwise.run("copy", out, [scalar_value(src)])
    return out


def _scatter(x, dim, index, src, op, include_self, inplace):
    out = x if inplace else _copy.clone(x)
    if index.numel() == 0:
        return out
    dim = _dim(dim, x.dim())
    size = x.shape[dim] if x.dim() else 1
    idx = device_index(index, size, False, x._index)
    dest = list(out.stride()) + [0] * (idx.dim() - out.dim())
    if dest:
        dest[dim] = 0
    offsets = scatter_offsets(tuple(idx.shape), dest, idx, idx.stride(), size,
                              out.stride()[dim] if out.dim() else 0, index=x._index)
    values = _values_like(src, tuple(idx.shape), x.dtype, x._index)
    return reduce_into(out, offsets, values, op, include_self)


def _register_scatter(name, make):
    for suffix, inplace in (("", False), ("_", True)):
        packet = getattr(aten, name + suffix)
        for ov in packet.overloads():
            if ov == "out" or ov.endswith("_out"):
                continue
            register(getattr(packet, ov))(make(getattr(packet, ov), inplace))


def _scatter_impl(func, inplace):
    def impl(x, dim, index, src, *, reduce=None):
        infer(func, (x, dim, index, src), {"reduce": reduce} if reduce is not None else None)
        return _scatter(x, dim, index, src, reduce or "assign", reduce is not None, inplace)
    return impl


def _scatter_add_impl(func, inplace):
    def impl(x, dim, index, src):
        infer(func, (x, dim, index, src))
        return _scatter(x, dim, index, src, "sum", True, inplace)
    return impl


def _scatter_reduce_impl(func, inplace):
    def impl(x, dim, index, src, reduce, *, include_self=True):
        infer(func, (x, dim, index, src, reduce), {"include_self": include_self})
        return _scatter(x, dim, index, src, reduce, include_self, inplace)
    return impl


_register_scatter("scatter", _scatter_impl)
_register_scatter("scatter_add", _scatter_add_impl)
_register_scatter("scatter_reduce", _scatter_reduce_impl)


def _index_reduce(inplace):
    def impl(x, dim, index, source, reduce, *, include_self=True):
        name = "index_reduce_" if inplace else "index_reduce"
        if reduce not in ("prod", "mean", "amax", "amin"):
            raise RuntimeError(f"{name}(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
        if index.dtype not in (torch.int32, torch.int64):
            raise RuntimeError(f"index_reduce_(): Expected dtype int32/int64 for index but got: "
                               f"{dtypes.type_name(index.dtype)}")
        if index.dim() > 1:
            raise IndexError(f"index_reduce_(): Index is supposed to be a vector, but got dim: {index.dim()} "
                             f"with type: {dtypes.type_name(index.dtype)} and size: {list(index.shape)}")
        if source.dtype != x.dtype:
            raise RuntimeError(f"index_reduce_(): self ({dtypes.type_name(x.dtype)}) and source "
                               f"({dtypes.type_name(source.dtype)}) must have the same scalar type")
        ndim = max(x.dim(), 1)
        if not -ndim <= dim < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
        dim %= ndim
        length = source.shape[dim] if source.dim() else 1
        if index.numel() != length:
            raise RuntimeError(f"index_reduce_(): Number of indices ({index.numel()}) should be equal to "
                               f"source.size(dim): ({length}), for dim: {dim}")
        # the same reduction as a scatter: index i of source's dim goes to row index[i] of x's dim
        shape = [1] * source.dim()
        if shape:
            shape[dim] = length
        spread = aten.expand.default(aten.reshape.default(index, shape), list(source.shape))
        return _scatter(x, dim, spread, source, reduce, include_self, inplace)
    impl.__doc__ = "Tensor.index_reduce: scatter_reduce with the index spread along dim."
    return impl


register(aten.index_reduce.default)(_index_reduce(False))
register(aten.index_reduce_.default)(_index_reduce(True))


def _index_add(func, inplace):
    def impl(x, dim, index, source, *, alpha=1):
        infer(func, (x, dim, index, source), {"alpha": alpha})
        out = x if inplace else _copy.clone(x)
        if index.numel() == 0 or source.numel() == 0:
            return out
        dim = _dim(dim, x.dim())
        size = x.shape[dim] if x.dim() else 1
        idx = device_index(index, size, False, x._index)
        shape = tuple(source.shape)
        dest = list(out.stride()) or [0]
        idx_strides = [0] * max(len(shape), 1)
        dest[dim] = 0
        idx_strides[dim] = idx.stride()[0] if idx.dim() else 0
        if not shape:
            dest, idx_strides = [], []
        offsets = scatter_offsets(shape, dest, idx, idx_strides, size, out.stride()[dim] if out.dim() else 0,
                                  index=x._index)
        values = _values_like(source, shape, x.dtype, x._index)
        if alpha != 1:
            pointwise.run("mul", values, [values, alpha])
        return reduce_into(out, offsets, values, "sum", True)
    return impl


for _f, _inplace in ((aten.index_add.default, False), (aten.index_add_.default, True)):
    register(_f)(_index_add(_f, _inplace))


def _whole_mask(x, indices):
    """The mask when ``indices`` is one bool ocl mask over x's leading dims, else None."""
    if len(indices) != 1 or indices[0] is None or indices[0].dtype is not torch.bool:
        return None
    m = indices[0]
    if not isinstance(m, OclTensor) or m.dim() > x.dim() or tuple(m.shape) != tuple(x.shape[:m.dim()]):
        return None
    return m


def index_put_into(x, indices, values, accumulate):
    """x[indices] = values (or += with ``accumulate``), in place; deterministic."""
    mask = _whole_mask(x, indices)
    if mask is not None and not accumulate and (not isinstance(values, torch.Tensor) or values.numel() == 1):
        # x[mask] = v is a where(): no nonzero, no wait for a count
        m = alias(mask, tuple(x.shape), tuple(mask.stride()) + (0,) * (x.dim() - mask.dim()),
                  mask.storage_offset())
        v = values if isinstance(values, OclTensor) else scalar_value(values)
        if isinstance(v, OclTensor):
            v = alias(v, (), (), v.storage_offset()) if v.dim() else v
        pointwise.run("where", x, [m, v, x])
        return x
    shape, dest_strides, idx, idx_strides, size, stride = advanced_index(x, indices)
    offsets = scatter_offsets(shape, dest_strides, idx, idx_strides, size, stride, wrap=True, index=x._index)
    if isinstance(values, OclTensor):
        torch.broadcast_shapes(tuple(values.shape), shape)
        vals = empty(shape, x.dtype, x._index)
        if vals.numel():
            pointwise.run("copy", vals, [values])
    else:
        vals = _values_like(values, shape, x.dtype, x._index)
    return reduce_into(x, offsets, vals, "sum" if accumulate else "assign", accumulate)


@register(aten.index_put_.default, aten._index_put_impl_.default)
def index_put_(x, indices, values, accumulate=False, unsafe=False):
    """x[indices] = values in place (accumulate: +=, summing duplicates in a fixed order)."""
    return index_put_into(x, indices, values, accumulate)


@register(aten.index_put.default, aten._unsafe_index_put.default)
def index_put(x, indices, values, accumulate=False):
    """Functional index_put: a copy of x with x[indices] = values."""
    return index_put_into(_copy.clone(x), indices, values, accumulate)


@register(aten.embedding_dense_backward.default)
def embedding_dense_backward(grad, indices, num_weights, padding_idx, scale_grad_by_freq):
    """Gradient of embedding's weight: rows of ``grad`` summed per index in a fixed order
    (divided by the index's count with scale_grad_by_freq); the padding row stays zero."""
    d = grad.shape[-1]
    out = empty((num_weights, d), grad.dtype, grad._index)
    if out.numel():
        pointwise.run("copy", out, [0])
    n = indices.numel()
    if n == 0 or d == 0:
        return out
    idx = device_index(indices, num_weights, False, grad._index)
    offsets = scatter_offsets(tuple(idx.shape), (0,) * idx.dim(), idx, idx.stride(), num_weights, d,
                              index=grad._index)
    rows = grad if _copy.is_contiguous(grad) else _copy.contiguous(grad)
    reduce_into(out, offsets, rows, "mean" if scale_grad_by_freq else "sum", False, inner=d, out_inner=1,
                values_row=d, values_inner=1)
    if 0 <= padding_idx < num_weights:
        pointwise.run("copy", aten.select.int(out, 0, padding_idx), [0])
    return out


@register(aten.embedding_renorm_.default)
def embedding_renorm_(weight, indices, max_norm, norm_type):
    """nn.Embedding(max_norm=...): the rows ``indices`` name whose norm exceeds max_norm are
    scaled to it (by max_norm / (norm + 1e-7), as torch), in place."""
    rows = aten._unique2.default(aten.reshape.default(indices, [-1]))[0]
    picked = aten.index_select.default(weight, 0, rows)
    norms = aten.linalg_vector_norm.default(picked, norm_type, [1], True)
    shrink = aten.mul.Scalar(aten.reciprocal.default(aten.add.Scalar(norms, 1e-7)), max_norm)
    scale = aten.where.ScalarOther(aten.gt.Scalar(norms, max_norm), shrink, 1.0)
    return aten.index_put_.default(weight, [rows], aten.mul.Tensor(picked, scale))
