"""torch.cdist's direct path (_cdist_forward / _cdist_backward): p-norm distances between the rows
of x1 (..., P, M) and x2 (..., R, M) from their broadcast differences (..., P, R, M), on the
reductions and pointwise kernels. (For p = 2 with more than 25 rows torch takes its matmul form,
_euclidean_dist, which reaches the GEMM core without these ops.)"""

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
    g = aten.unsqueeze.default(grad, -1)             # (..., P, R, 1)
    d = aten.unsqueeze.default(dist, -1)
    if p == 1:
        term = aten.mul.Tensor(aten.sign.default(diff), g)
    elif math.isinf(p):
        peak = aten.eq.Tensor(aten.abs.default(diff), d)  # the elements that set the maximum
        term = aten.mul.Tensor(aten.mul.Tensor(aten.sign.default(diff), peak), g)
    else:
        # diff * |diff|^(p-2) / dist^(p-1), 0 where dist is 0 (and where diff is 0 for p < 2)
        scale = aten.div.Tensor(aten.pow.Tensor_Scalar(aten.abs.default(diff), p - 2),
                                aten.pow.Tensor_Scalar(d, p - 1))
        term = aten.mul.Tensor(aten.mul.Tensor(diff, scale), g)
        undefined = aten.logical_or.default(aten.eq.Scalar(d, 0), aten.eq.Scalar(diff, 0)) if p < 2 else \
            aten.eq.Scalar(d, 0)
        term = aten.where.ScalarSelf(undefined, 0.0, term)
    return aten.sum.dim_IntList(term, [-2])
