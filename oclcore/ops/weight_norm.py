"""The backward of torch's weight normalisation (nn.utils.weight_norm and its parametrization,
w = g * v / ||v|| with the norm over every dimension but ``dim``), composed of device ops."""

import torch

from ..torch.dispatch import register

aten = torch.ops.aten


@register(aten._weight_norm_interface_backward.default)
def weight_norm_backward(grad_w, v, g, norms, dim):
    """(grad_v, grad_g): with a = sum(grad_w * v) per slice, grad_g = a / ||v|| and
    grad_v = g / ||v|| * (grad_w - v * a / ||v||^2)."""
    dim %= v.dim()
    others = [d for d in range(v.dim()) if d != dim]
    a = aten.sum.dim_IntList(aten.mul.Tensor(grad_w, v), others, True)
    norms = aten.reshape.default(norms, list(a.shape))
    grad_g = aten.reshape.default(aten.div.Tensor(a, norms), list(g.shape))
    projection = aten.mul.Tensor(v, aten.div.Tensor(a, aten.mul.Tensor(norms, norms)))
    grad_v = aten.mul.Tensor(aten.div.Tensor(aten.reshape.default(g, list(a.shape)), norms),
                             aten.sub.Tensor(grad_w, projection))
    return grad_v, grad_g
