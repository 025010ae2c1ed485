"""3-D convolutions (nn.Conv3d: video networks; nn.ConvTranspose3d: 3-D U-Nets) as 2-D ones: the
kd depth taps of the kernel are stacked into the channel dimension, so forward is one 2-D
convolution over N * out_depth images with kd times the channels, and both gradients come from
that convolution's backward. Costs an input copy of kd times its size; runs on the device where
the CPU fallback copied everything. A transposed convolution is the data gradient of the direct
one whose output its input is; its gradients are that direct convolution and its weight
gradient with the roles of input and output gradient exchanged."""

import torch

aten = torch.ops.aten


def _depth_geometry(x, w, stride, padding, dilation):
    D = x.shape[2]
    kd = w.shape[2]
    od = (D + 2 * padding[0] - dilation[0] * (kd - 1) - 1) // stride[0] + 1
    return kd, od


def _taps(x, w, stride, padding, dilation, groups):
    """(the input with depth taps stacked as channels: (N * od, G * kd * Cg, H, W), kd, od)."""
    N, C, D, H, W = x.shape
    kd, od = _depth_geometry(x, w, stride, padding, dilation)
    pd = padding[0]
    xp = aten.constant_pad_nd(x, [0, 0, 0, 0, pd, pd], 0.0) if pd else x
    G, Cg = groups, C // groups
    taps = []
    for k in range(kd):
        start = k * dilation[0]
        xs = aten.slice(xp, 2, start, start + (od - 1) * stride[0] + 1, stride[0])  # (N, C, od, H, W)
        taps.append(aten.view(aten.permute(xs, [0, 2, 1, 3, 4]).contiguous(), [N, od, G, Cg, H, W]))
    stacked = aten.stack(taps, 3)  # (N, od, G, kd, Cg, H, W)
    return aten.view(stacked, [N * od, G * kd * Cg, H, W]), kd, od


def _weight2d(w):
    Co, Cg, kd, kh, kw = w.shape
    return aten.view(aten.permute(w, [0, 2, 1, 3, 4]).contiguous(), [Co, kd * Cg, kh, kw])


def forward(x, w, bias, stride, padding, dilation, groups):
    """aten.convolution for 5-D x and w (not transposed; arguments already checked)."""
    N, Co = x.shape[0], w.shape[0]
    x2, kd, od = _taps(x, w, stride, padding, dilation, groups)
    y2 = aten.convolution(x2, _weight2d(w), bias, list(stride[1:]), list(padding[1:]), list(dilation[1:]), False,
                          [0, 0], groups)  # (N * od, Co, oh, ow)
    oh, ow = y2.shape[2], y2.shape[3]
    return aten.permute(aten.view(y2, [N, od, Co, oh, ow]), [0, 2, 1, 3, 4]).contiguous()


def backward(grad, x, w, stride, padding, dilation, groups, output_mask):
    """aten.convolution_backward for 5-D tensors: (grad_input, grad_weight, grad_bias) as asked."""
    N, C, D, H, W = x.shape
    Co, Cg, kd, kh, kw = w.shape
    x2, kd, od = _taps(x, w, stride, padding, dilation, groups)
    g2 = aten.view(aten.permute(grad, [0, 2, 1, 3, 4]).contiguous(), [N * od, Co, grad.shape[3], grad.shape[4]])
    gi2, gw2, gb = aten.convolution_backward(g2, x2, _weight2d(w), [Co], list(stride[1:]), list(padding[1:]),
                                             list(dilation[1:]), False, [0, 0], groups, list(output_mask))
    gi = gw = None
    if output_mask[1]:
        gw = aten.permute(aten.view(gw2, [Co, kd, Cg, kh, kw]), [0, 2, 1, 3, 4]).contiguous()
    if output_mask[0]:
        pd = padding[0]
        gxp = aten.zeros([N, C, D + 2 * pd, H, W], dtype=x.dtype, device=x.device)
        per_group = aten.view(gxp, [N, groups, Cg, D + 2 * pd, H, W])
        taps = aten.view(gi2, [N, od, groups, kd, Cg, H, W])
        for k in range(kd):
            start = k * dilation[0]
            tap = aten.permute(aten.select(taps, 3, k), [0, 2, 3, 1, 4, 5])  # (N, G, Cg, od, H, W)
            aten.slice(per_group, 3, start, start + (od - 1) * stride[0] + 1, stride[0]).add_(tap)
        gi = (aten.slice(gxp, 2, pd, pd + D) if pd else gxp).contiguous()
    return gi, gw, gb


def transposed_forward(x, w, bias, stride, padding, dilation, groups, out_shape):
    """aten.convolution for transposed 5-D x and w, whose output has ``out_shape``."""
    shape_only = aten.zeros(list(out_shape), dtype=x.dtype, device=x.device)  # (its values are not read)
    y = backward(x, shape_only, w, stride, padding, dilation, groups, (True, False, False))[0]
    if bias is not None:
        y.add_(aten.view(bias, [1, -1, 1, 1, 1]))
    return y


def transposed_backward(grad, x, w, stride, padding, dilation, groups, output_mask):
    """aten.convolution_backward for transposed 5-D tensors."""
    gi = forward(grad, w, None, stride, padding, dilation, groups) if output_mask[0] else None
    gw = backward(x, grad, w, stride, padding, dilation, groups, (False, True, False))[1] if output_mask[1] else None
    gb = aten.sum.dim_IntList(grad, [0, 2, 3, 4]) if output_mask[2] else None
    return gi, gw, gb
