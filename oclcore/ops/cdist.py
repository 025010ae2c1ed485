"""Pairwise distances: torch.cdist's direct path (_cdist_forward / _cdist_backward), p-norm distances
between the rows of x1 (..., P, M) and x2 (..., R, M) from their broadcast differences
(..., P, R, M), and torch.pdist (_pdist_forward / _pdist_backward), the distances between the rows
of one matrix (i < j, row-major), on the reductions and pointwise kernels. (For p = 2 with more
than 25 rows cdist takes its matmul form, _euclidean_dist, which reaches the GEMM core without
these ops.)"""

import math

import torch

from ..torch.dispatch import register
from .meta import infer

aten = torch.ops.aten


def _differences(x1, x2):
    return aten.sub.Tensor(aten.unsqueeze.default(x1, -2), aten.unsqueeze.default(x2, -3))


@register(aten._cdist_forward.default)
def cdist_forward(x1, x2, p, compute_mode):
    """Distances (..., P, R): the p-norm of each pair of rows' difference."""
    meta = infer(aten._cdist_forward.default, (x1, x2, p, compute_mode))
    if meta.numel() == 0 or x1.shape[-1] == 0:
        return aten.zeros.default(list(meta.shape), dtype=meta.dtype, device=x1.device)
    return aten.linalg_vector_norm.default(_differences(x1, x2), p, [-1])


@register(aten._cdist_backward.default)
def cdist_backward(grad, x1, x2, p, dist):
    """Gradient of cdist for x1: sum over x2's rows j of grad[i, j] times d dist[i, j] / d x1[i],
    with torch's conventions where the derivative is undefined (0 at zero distance)."""
    infer(aten._cdist_backward.default, (grad, x1, x2, p, dist))
    if p == 0 or x1.numel() == 0 or x2.shape[-2] == 0:
        return aten.zeros_like.default(x1)
    diff = _differences(x1, x2)                      # (..., P, R, M)
    term = _difference_gradient(diff, aten.unsqueeze.default(grad, -1), aten.unsqueeze.default(dist, -1), p)
    return aten.sum.dim_IntList(term, [-2])


def _difference_gradient(diff, g, d, p):
    """grad * d ||diff||_p / d diff for differences ``diff`` (..., M), their norms ``d`` and the
    gradients ``g`` of those norms (both (..., 1)), with torch's conventions where the derivative
    is undefined (0 at zero distance)."""
    if p == 1:
        return aten.mul.Tensor(aten.sign.default(diff), g)
    if math.isinf(p):
        peak = aten.eq.Tensor(aten.abs.default(diff), d)  # the elements that set the maximum
        return aten.mul.Tensor(aten.mul.Tensor(aten.sign.default(diff), peak), g)
    # diff * |diff|^(p-2) / dist^(p-1), 0 where dist is 0 (and where diff is 0 for p < 2)
    scale = aten.div.Tensor(aten.pow.Tensor_Scalar(aten.abs.default(diff), p - 2),
                            aten.pow.Tensor_Scalar(d, p - 1))
    term = aten.mul.Tensor(aten.mul.Tensor(diff, scale), g)
    undefined = aten.logical_or.default(aten.eq.Scalar(d, 0), aten.eq.Scalar(diff, 0)) if p < 2 else \
        aten.eq.Scalar(d, 0)
    return aten.where.ScalarSelf(undefined, 0.0, term)


_pair_indices = {}  # (rows, device index) -> (i, j) on the device


def _pairs(x):
    """The row indices (i, j), i < j, of pdist's distances in its order, on x's device (cached)."""
    key = (x.shape[0], x.device.index)
    pair = _pair_indices.get(key)
    if pair is None:
        if len(_pair_indices) >= 64:
            _pair_indices.clear()
        rows = torch.triu_indices(x.shape[0], x.shape[0], 1)
        pair = _pair_indices[key] = (rows[0].to(x.device), rows[1].to(x.device))
    return pair


def _pair_differences(x):
    i, j = _pairs(x)
    return aten.sub.Tensor(aten.index_select.default(x, 0, i), aten.index_select.default(x, 0, j))


@register(aten._pdist_forward.default)
def pdist_forward(x, p=2.0):
    """Distances between the rows of x (N, M): the p-norm of x[i] - x[j] for i < j."""
    meta = infer(aten._pdist_forward.default, (x, p))
    if meta.numel() == 0 or x.shape[1] == 0:
        return aten.zeros.default(list(meta.shape), dtype=meta.dtype, device=x.device)
    return aten.linalg_vector_norm.default(_pair_differences(x), p, [-1])


@register(aten._pdist_backward.default)
def pdist_backward(grad, x, p, dist):
    """Gradient of pdist for x: each distance's gradient added to row i and subtracted from row j."""
    infer(aten._pdist_backward.default, (grad, x, p, dist))
    out = aten.zeros_like.default(x)
    if p == 0 or dist.numel() == 0 or x.shape[1] == 0:
        return out
    i, j = _pairs(x)
    term = _difference_gradient(_pair_differences(x), aten.unsqueeze.default(grad, -1),
                                aten.unsqueeze.default(dist, -1), p)
    aten.index_add_.default(out, 0, i, term)
    return aten.index_add_.default(out, 0, j, term, alpha=-1)
