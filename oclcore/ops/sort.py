"""Sorting: sort, argsort, topk on cl/sort.cl, and the stable row sort that
the deterministic scatters (oclcore.ops.index) sort destination offsets with.

Rows are sorted stably (ties keep their order, NaN above every number as in
torch) by a bitonic sort in local memory per block of up to a few thousand
elements, then merged pairwise until a block spans the row."""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import alias, contiguous_strides, empty
from . import copy as _copy
from . import dtypes, pointwise
from .index import infer, kernel

aten = torch.ops.aten

_MAX_BLOCK = 4096


def _block_length(L, ct_size, dev):
    """The longest power-of-2 block (<= _MAX_BLOCK) whose keys and positions fit in half the local memory."""
    block = 1
    while block < L and block < _MAX_BLOCK and 2 * block * (ct_size + 8) <= dev.local_mem // 2:
        block *= 2
    return block


def sort_rows(x, descending=False):
    """Sorts each row of the 2-D ocl tensor ``x`` (rows contiguous along dim 1) stably: (values,
    positions), both contiguous (rows, L)."""
    rows, L = x.shape
    dtypes.check(x.dtype, "sort")
    keys = empty((rows, L), x.dtype, x._index)
    pos = empty((rows, L), torch.int64, x._index)
    if keys.numel() == 0:
        return keys, pos
    if x.stride(1) != 1 and L > 1:
        x = _copy.contiguous(x)
    dev = runtime.device(x._index)
    ct_size = 8 if dtypes.compute(x.dtype) in ("double", "long") else 4
    block = _block_length(L, ct_size, dev)
    nblocks = (L + block - 1) // block
    wg = max(1, min(block // 2, 256, dev.max_work_group_size))
    k = kernel("sort_blocks", x.dtype, "BlllliiBlBlZZ", x._index)
    k.launch((rows * nblocks * wg,), (wg,), (x._buf, x.storage_offset(), x.stride(0), L, block, block,
                                            int(descending), keys._buf, 0, pos._buf, 0,
                                            block * ct_size, block * 8))
    width = block
    if width < L:
        merge = kernel("merge_pass", x.dtype, "BBBBllil", x._index)
        keys2 = empty((rows, L), x.dtype, x._index)
        pos2 = empty((rows, L), torch.int64, x._index)
        n = rows * L
        while width < L:
            merge.launch((n,), (256,) if n >= 256 else None, (keys._buf, pos._buf, keys2._buf, pos2._buf, L, width,
                                                              int(descending), n))
            keys, pos, keys2, pos2 = keys2, pos2, keys, pos
            width *= 2
    return keys, pos


def sort_along(x, dim, descending):
    """(values, indices) of x sorted along ``dim``, stably; contiguous results of x's shape."""
    if x.dim() == 0:
        values = _copy.clone(x)
        indices = empty((), torch.int64, x._index)
        pointwise.run("copy", indices, [0])
        return values, indices
    dim %= x.dim()
    moved = aten.movedim.int(x, dim, -1)
    L = x.shape[dim]
    rows = x.numel() // L if L else 0
    if not _copy.is_contiguous(moved):
        moved = _copy.contiguous(moved)
    flat = alias(moved, (rows, L), (L, 1), moved.storage_offset())
    keys, pos = sort_rows(flat, descending)
    shape = tuple(moved.shape)
    values = aten.movedim.int(alias(keys, shape, contiguous_strides(shape), 0), -1, dim)
    indices = aten.movedim.int(alias(pos, shape, contiguous_strides(shape), 0), -1, dim)
    if dim != x.dim() - 1:
        values, indices = _copy.contiguous(values), _copy.contiguous(indices)
    return values, indices


@register(aten.sort.default, aten.sort.stable)
def sort(x, *args, stable=False, dim=-1, descending=False):
    """torch.sort (always stable)."""
    if args:  # sort.default(self, dim, descending)
        dim = args[0]
        descending = args[1] if len(args) > 1 else descending
    infer(aten.sort.default, (x, dim, descending))
    return sort_along(x, dim, descending)


@register(aten.argsort.default, aten.argsort.stable)
def argsort(x, *args, stable=False, dim=-1, descending=False):
    """torch.argsort (always stable)."""
    if args:
        dim = args[0]
        descending = args[1] if len(args) > 1 else descending
    infer(aten.sort.default, (x, dim, descending))
    return sort_along(x, dim, descending)[1]


@register(aten.topk.default)
def topk(x, k, dim=-1, largest=True, sorted=True):
    """torch.topk: the k largest (smallest) along dim, in order."""
    infer(aten.topk.default, (x, k, dim, largest, sorted))
    values, indices = sort_along(x, dim, largest)
    if x.dim() == 0:
        return values, indices
    dim %= x.dim()
    values = aten.slice.Tensor(values, dim, 0, k)
    indices = aten.slice.Tensor(indices, dim, 0, k)
    if k != x.shape[dim]:
        values, indices = _copy.contiguous(values), _copy.contiguous(indices)
    return values, indices
