"""torch.repeat_interleave with a tensor of repeats (aten.repeat_interleave.Tensor, into which the
self_Tensor and self_int overloads decompose): output position j holds the index i whose run of
repeats[i] copies covers j, found by a binary search of the repeats' running sum. Without
output_size the total is read back (it decides the output's size), as on CUDA; with it, nothing
waits for the device."""

import torch

from ..torch.dispatch import register
from . import dtypes

aten = torch.ops.aten


@register(aten.repeat_interleave.Tensor)
def repeat_interleave(repeats, output_size=None):
    if repeats.dim() != 1:
        raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    if repeats.dtype not in (torch.int32, torch.int64):
        raise NotImplementedError(
            f"\"repeat_interleave_ocl\" not implemented for '{dtypes.type_name(repeats.dtype)}'")
    ends = aten.cumsum.default(repeats, 0, dtype=torch.int64)
    total = output_size
    if total is None:
        total, low = (0, 0) if repeats.numel() == 0 else aten.stack.default(
            [aten.select.int(ends, 0, -1), aten.min.default(repeats).to(torch.int64)]).tolist()
        if low < 0:
            raise RuntimeError("repeats can not be negative")
    positions = aten.arange.start(0, total, dtype=torch.int64, device=repeats.device)
    return aten.searchsorted.Tensor(ends, positions, out_int32=repeats.dtype is torch.int32, right=True)
