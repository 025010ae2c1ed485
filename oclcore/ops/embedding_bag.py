"""nn.EmbeddingBag on ocl (aten._embedding_bag / _embedding_bag_forward_only, the dense backward
and the per-sample-weights backward), built from gathers and scatters on the device: each index
gets its bag number (offset2bag, a cumulative count of bag starts), rows are gathered, weighted,
masked for padding_idx and reduced per bag by index_add (sum, mean) or scatter_reduce (max, whose
arg-max rows are kept for backward). scale_grad_by_freq runs on the CPU."""

import math

import torch

from ..torch.dispatch import cpu_fallback, register
from .meta import infer

aten = torch.ops.aten
_SUM, _MEAN, _MAX = 0, 1, 2


def _offset2bag(indices, offsets, bags):
    """The bag number of every index: starts of bags 1.. counted, then a running sum (empty bags
    add several starts at one place)."""
    n = indices.shape[0]
    starts = aten.clamp_max(aten.slice(offsets, 0, 1, bags), n)
    counts = aten.zeros([n + 1], dtype=torch.long, device=indices.device)
    counts.index_add_(0, starts, aten.ones_like(starts))
    return aten.cumsum(aten.slice(counts, 0, 0, n), 0)


def _valid(indices, padding_idx):
    if padding_idx is None or padding_idx < 0:
        return None
    return aten.ne(indices, padding_idx)


def _forward(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False, per_sample_weights=None,
             include_last_offset=False, padding_idx=-1):
    func = aten._embedding_bag.default
    args = (weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights, include_last_offset,
            padding_idx)
    meta = infer(func, args)
    if indices.dim() != 1 or offsets.dim() != 1:
        return cpu_fallback(func, args, {})
    bags, dim = meta[0].shape
    n = indices.shape[0]
    device = weight.device
    if n == 0:  # every bag empty
        zeros = aten.zeros([bags], dtype=torch.long, device=device)
        out = aten.zeros([bags, dim], dtype=weight.dtype, device=device)
        return out, aten.zeros([0], dtype=torch.long, device=device), zeros, \
            aten.zeros([bags, dim], dtype=torch.long, device=device) if mode == _MAX else zeros
    indices = indices.long()
    offsets = offsets.long()
    o2b = _offset2bag(indices, offsets, bags)
    valid = _valid(indices, padding_idx)
    ones = aten.ones([n], dtype=torch.long, device=device)
    bag_size = aten.zeros([bags], dtype=torch.long, device=device).index_add_(
        0, o2b, ones if valid is None else valid.long())
    rows = aten.index_select(weight, 0, indices)
    if per_sample_weights is not None:
        rows = rows * aten.unsqueeze(per_sample_weights, 1)
    if mode == _MAX:
        masked = rows if valid is None else aten.where(aten.unsqueeze(valid, 1), rows, -math.inf)
        spread = aten.expand(aten.unsqueeze(o2b, 1), [n, dim])
        out = aten.full([bags, dim], -math.inf, dtype=weight.dtype, device=device)
        out = aten.scatter_reduce(out, 0, spread, masked, "amax")
        # the first position of each bag's maximum, per column (CPU's choice on ties)
        hit = aten.eq(masked, aten.index_select(out, 0, o2b))
        positions = aten.expand(aten.unsqueeze(aten.arange(n, device=device), 1), [n, dim])
        first = aten.full([bags, dim], n, dtype=torch.long, device=device)
        first = aten.scatter_reduce(first, 0, spread, aten.where(hit, positions, n), "amin")
        found = aten.lt(first, n)
        rows_of_max = aten.view(aten.index_select(indices, 0, aten.clamp_max(first, n - 1).flatten()), [bags, dim])
        max_indices = aten.where(found, rows_of_max, 0)
        out = aten.where(found, out, 0.0)
        return out, o2b, bag_size, max_indices
    if valid is not None:
        rows = aten.where(aten.unsqueeze(valid, 1), rows, 0.0)
    out = aten.zeros([bags, dim], dtype=weight.dtype, device=device).index_add_(0, o2b, rows)
    if mode == _MEAN:
        out = out / aten.unsqueeze(aten.clamp_min(bag_size, 1), 1)
    return out, o2b, bag_size, bag_size


register(aten._embedding_bag.default)(_forward)
register(aten._embedding_bag_forward_only.default)(_forward)


@register(aten._embedding_bag_dense_backward.default)
def dense_backward(grad, indices, offset2bag, bag_size, maximum_indices, num_weights, scale_grad_by_freq, mode,
                   per_sample_weights, padding_idx=-1):
    args = (grad, indices, offset2bag, bag_size, maximum_indices, num_weights, scale_grad_by_freq, mode,
            per_sample_weights, padding_idx)
    if scale_grad_by_freq or offset2bag.numel() != indices.numel():
        return cpu_fallback(aten._embedding_bag_dense_backward.default, args, {})
    bags, dim = grad.shape
    gw = aten.zeros([num_weights, dim], dtype=grad.dtype, device=grad.device)
    if mode == _MAX:
        columns = aten.unsqueeze(aten.arange(dim, device=grad.device), 0)
        spots = aten.add(aten.mul(maximum_indices, dim), columns).flatten()
        contribution = aten.where(aten.unsqueeze(aten.gt(bag_size, 0), 1), grad, 0.0).flatten()
        gw.view(-1).index_add_(0, spots, contribution)
        return gw
    g = aten.index_select(grad, 0, offset2bag)
    if mode == _MEAN:
        g = g / aten.unsqueeze(aten.index_select(aten.clamp_min(bag_size, 1), 0, offset2bag), 1)
    if per_sample_weights is not None:
        g = g * aten.unsqueeze(per_sample_weights, 1)
    valid = _valid(indices, padding_idx)
    if valid is not None:
        g = aten.where(aten.unsqueeze(valid, 1), g, 0.0)
    gw.index_add_(0, indices.long(), g)
    return gw


@register(aten._embedding_bag_per_sample_weights_backward.default)
def per_sample_weights_backward(grad, weight, indices, offsets, offset2bag, mode, padding_idx=-1):
    torch._check(mode == _SUM, lambda: "embedding_bag_backward: per_sample_weights only supported for mode='sum'")
    dots = aten.sum(aten.index_select(grad, 0, offset2bag) * aten.index_select(weight, 0, indices.long()), [1])
    valid = _valid(indices, padding_idx)
    return dots if valid is None else aten.where(valid, dots, 0.0)


@register(aten._embedding_bag_backward.default)
def backward(grad, indices, offsets, offset2bag, bag_size, maximum_indices, num_weights, scale_grad_by_freq, mode,
             sparse, per_sample_weights, padding_idx=-1):
    if sparse:  # (no sparse tensors on ocl)
        return cpu_fallback(aten._embedding_bag_backward.default,
                            (grad, indices, offsets, offset2bag, bag_size, maximum_indices, num_weights,
                             scale_grad_by_freq, mode, sparse, per_sample_weights, padding_idx), {})
    return dense_backward(grad, indices, offset2bag, bag_size, maximum_indices, num_weights, scale_grad_by_freq,
                          mode, per_sample_weights, padding_idx)
