"""Packed sequences (nn.utils.rnn.pack_padded_sequence / pad_packed_sequence) on ocl.

torch keeps a PackedSequence's batch_sizes, and the lengths pad_packed_sequence returns, on the
CPU whatever the data's device. Both ops run torch's own CPU kernel on the positions of the
data's leading elements (so its checks and layout rules apply, at the cost of a few integers),
then move the data on the device with one gather."""

import torch

from ..torch.dispatch import register
from ..torch.tensor import OclTensor

aten = torch.ops.aten


@register(aten._pack_padded_sequence.default)
def _pack_padded_sequence(x, lengths, batch_first):
    """(data, batch_sizes): the time steps of the (T, B, *) or (B, T, *) input packed in order,
    batch_sizes on the CPU."""
    if isinstance(lengths, OclTensor):  # torch's wording for a lengths tensor on the device
        raise RuntimeError("'lengths' argument should be a 1D CPU int64 tensor, but got 1D ocl Long tensor")
    lead = tuple(x.shape[:2])  # (a 1-D input reaches torch's own error below)
    where = torch.arange(x.shape[:2].numel(), dtype=torch.int64).view(lead)
    picked, batch_sizes = aten._pack_padded_sequence.default(where, lengths, batch_first)
    rows = aten.reshape.default(x, [-1, *x.shape[2:]])
    return aten.index_select.default(rows, 0, picked.to(x.device)), batch_sizes


@register(aten._pad_packed_sequence.default)
def _pad_packed_sequence(data, batch_sizes, batch_first, padding_value, total_length):
    """(padded, lengths): packed ``data`` laid out as (T, B, *) or (B, T, *), padding_value past each
    sequence's length; lengths on the CPU."""
    if isinstance(batch_sizes, OclTensor):
        batch_sizes = batch_sizes.cpu()
    where, lengths = aten._pad_packed_sequence.default(torch.arange(data.shape[0], dtype=torch.int64), batch_sizes,
                                                      batch_first, -1, total_length)
    valid = where >= 0
    gathered = aten.index_select.default(data, 0, where.clamp(min=0).flatten().to(data.device))
    gathered = aten.reshape.default(gathered, [*where.shape, *data.shape[1:]])
    mask = valid.view(*where.shape, *([1] * (data.dim() - 1))).to(data.device)
    return aten.where.ScalarOther(mask, gathered, padding_value), lengths
