"""torch.unique (without dim): the stable sort (sort.py), the starts of runs of equal values,
then the run heads, each element's run (inverse) and the run lengths (counts). The number of
distinct values sizes the result, so it is read back, as torch does. NaNs are distinct from
one another, as on torch's CPU and CUDA paths; the result is sorted whatever ``sorted`` says
(torch's CPU and CUDA kernels sort as well)."""

import torch

from ..torch.dispatch import register
from .sort import sort_along

aten = torch.ops.aten


@register(aten._unique2.default)
def unique(x, sorted=True, return_inverse=False, return_counts=False):
    """(distinct values, inverse or an empty tensor, counts or an empty tensor)."""
    def longs(shape):
        return aten.empty.memory_format(shape, dtype=torch.int64, device=x.device)

    flat = aten.reshape.default(x, [-1])
    none = longs([0])
    n = flat.numel()
    if n == 0:
        return aten.clone.default(flat), longs(list(x.shape)) if return_inverse else none, none
    values, order = sort_along(flat, 0, False)
    starts = aten.cat.default([aten.ones.default([1], dtype=torch.bool, device=x.device),
                               aten.ne.Tensor(aten.slice.Tensor(values, 0, 1), aten.slice.Tensor(values, 0, 0, n - 1))])
    heads = aten.masked_select.default(values, starts)
    run = None  # each sorted element's run
    if return_inverse or return_counts:
        run = aten.sub.Scalar(aten.cumsum.default(starts, 0, dtype=torch.int64), 1)
    inverse = none
    if return_inverse:
        inverse = aten.scatter.src(longs([n]), 0, order, run)
        inverse = aten.reshape.default(inverse, list(x.shape))
    counts = none
    if return_counts:
        counts = aten.index_add_.default(aten.zeros.default([heads.shape[0]], dtype=torch.int64, device=x.device),
                                         0, run, aten.ones.default([n], dtype=torch.int64, device=x.device))
    return heads, inverse, counts
