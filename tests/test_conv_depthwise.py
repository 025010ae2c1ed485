"""Depthwise convolution kernels (oclcore.conv's "depthwise" algorithm) against
torch CPU in float64: forward, input and weight gradients through autograd on
ocl with the algorithm forced; kernels 3/5/7, 1x7, 7x1; stride 1/2; padding
0/1/'same'; dilation 1/2; channel multiplier 1/2; odd sizes; batch 1-3;
NCHW, channels-last and strided inputs; bias or none; the fused relu of
torch.ops.oclcore.conv2d; the weight gradient's blocking (several blocks per
channel, several images per block, column chunks) and the direct kernels
used when a tile does not fit in local memory. ``-m slow`` runs the whole
cross-product."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import oclcore.conv
from conv_check import PASSES, check, spy_kernels
from oclcore.conv import algorithms


@pytest.fixture
def kernels(monkeypatch):
    """Names of the depthwise kernels launched, and (pass, algorithm) of every pass that ran."""
    return spy_kernels(monkeypatch, "conv_depthwise.cl")


def _check(x, w, b, kw, layout="nchw", op=None, ref=None):
    """conv_check.check with the depthwise algorithm forced."""
    return check("depthwise", x, w, b, kw, layout, op, ref)


# ---- the sweep --------------------------------------------------------------------------------

KERNELS = [(3, 3), (5, 5), (7, 7), (1, 7), (7, 1)]
LAYOUTS = ["nchw", "channels_last", "strided", "transposed"]


def _case(i, R, S, stride, padding, dilation, mult):
    gen = torch.Generator().manual_seed(i)
    N, C = 1 + i % 3, 3 + i % 2
    H, W = (13, 11) if i % 2 else (11, 14)
    x = torch.randn(N, C, H, W, generator=gen)
    w = torch.randn(C * mult, 1, R, S, generator=gen)
    b = torch.randn(C * mult, generator=gen) if i % 3 else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=C)


# A default subset that still covers every value of every axis (and both the compile-time
# geometries and the runtime-geometry program); -m slow runs the cross-product.
DEFAULT = {((3, 3), 1, 1, 1, 1), ((3, 3), 2, 1, 1, 2), ((3, 3), 1, "same", 2, 1), ((5, 5), 1, 1, 1, 1),
           ((5, 5), 2, 0, 1, 1), ((7, 7), 1, "same", 1, 2), ((7, 7), 2, 1, 1, 1), ((1, 7), 1, "same", 1, 1),
           ((7, 1), 2, 1, 2, 2), ((3, 3), 2, 0, 2, 1), ((1, 7), 2, 0, 1, 2)}


def _sweep():
    params = []
    for i, cfg in enumerate(itertools.product(KERNELS, [1, 2], [0, 1, "same"], [1, 2], [1, 2])):
        (R, S), st, pad, dil, mult = cfg
        x, w, _, kw = _case(i, R, S, st, pad, dil, mult)
        try:
            F.conv2d(x, w, **kw)
        except RuntimeError:   # padding='same' with stride 2, or a kernel larger than the input
            continue
        marks = () if cfg in DEFAULT else (pytest.mark.slow,)
        params.append(pytest.param(i, cfg, marks=marks, id=f"k{R}x{S}-s{st}-p{pad}-d{dil}-m{mult}-{i}"))
    return params


def test_default_sweep_is_valid():
    assert len(DEFAULT) == sum(1 for p in _sweep() if not p.marks)


@pytest.mark.parametrize("i,cfg", _sweep())
def test_depthwise_sweep(no_fallbacks, kernels, i, cfg):
    (R, S), st, pad, dil, mult = cfg
    x, w, b, kw = _case(i, R, S, st, pad, dil, mult)
    _check(x, w, b, kw, LAYOUTS[i % len(LAYOUTS)])
    assert sorted(set(kernels["passes"])) == [(p, "depthwise") for p in sorted(PASSES)], kernels
    assert {"dw_forward", "dw_grad_input", "dw_grad_weight_part"} == set(kernels["kernels"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts(no_fallbacks, layout):
    torch.manual_seed(1)
    x, w, b = torch.randn(2, 6, 13, 11), torch.randn(6, 1, 3, 3), torch.randn(6)
    _check(x, w, b, dict(padding=1, groups=6), layout)


# ---- fused bias + relu -------------------------------------------------------------------------

@pytest.mark.parametrize("stride,padding,mult", [(1, 1, 1), (2, 2, 2)])
def test_fused_relu(no_fallbacks, stride, padding, mult):
    torch.manual_seed(2)
    x, w, b = torch.randn(2, 4, 13, 11), torch.randn(4 * mult, 1, 5, 5), torch.randn(4 * mult)
    kw = dict(stride=stride, padding=padding, groups=4)
    op = lambda x, w, b: torch.ops.oclcore.conv2d(x, w, b, [stride] * 2, [padding] * 2, [1, 1], 4, "relu")
    _check(x, w, b, kw, op=op, ref=lambda x, w, b: F.conv2d(x, w, b, **kw).relu())


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")   # torch's CPU reference
@pytest.mark.parametrize("x,w,kw", [
    ((2, 3, 13, 11), (3, 1, 3, 3), dict(stride=2, padding=4)),        # padding beyond the kernel
    ((2, 3, 9, 10), (6, 1, 2, 4), dict(padding="same")),              # even kernel: asymmetric padding
    ((1, 3, 300, 5), (3, 1, 3, 3), dict(padding=1)),                  # tall and thin
    ((2, 3, 13, 11), (3, 1, 3, 3), dict(stride=3, padding=1)),        # stride 3 (runtime geometry)
])
def test_edge_shapes(no_fallbacks, x, w, kw):
    torch.manual_seed(9)
    _check(torch.randn(x), torch.randn(w), torch.randn(w[0]), dict(kw, groups=x[1]))


def test_conv1d_depthwise(no_fallbacks, kernels):
    """A causal depthwise conv1d (kernel 4, padding 3) runs the depthwise kernels on H = 1."""
    torch.manual_seed(10)
    op = lambda x, w, b: F.conv1d(x, w, b, padding=3, groups=8)
    _check(torch.randn(2, 8, 37), torch.randn(8, 1, 4), torch.randn(8), None, op=op)
    assert {"dw_forward", "dw_grad_input", "dw_grad_weight_part"} <= set(kernels["kernels"])


# ---- weight-gradient blocking and the direct fallbacks ------------------------------------------

def _plan(x, w, **kw):
    g = oclcore.conv.conv_geometry(x.shape, w.shape, kw.get("stride", 1), kw.get("padding", 0),
                                   kw.get("dilation", 1), kw["groups"])
    return algorithms._dw_weight_blocks(g)


def test_grad_weight_several_blocks_per_channel(no_fallbacks):
    torch.manual_seed(3)
    x, w, b = torch.randn(3, 4, 40, 37), torch.randn(4, 1, 3, 3), torch.randn(4)
    kw = dict(padding=1, groups=4)
    NI, PB, BP, TQ, XR, XC, LX, LY, blocks = _plan(x, w, **kw)
    assert BP > 1 and 40 % PB and blocks == 3 * BP, (PB, BP, blocks)   # a partial last block too
    _check(x, w, b, kw)


def test_grad_weight_column_chunks(no_fallbacks):
    torch.manual_seed(4)
    x, w = torch.randn(1, 2, 3, 300), torch.randn(2, 1, 3, 3)
    kw = dict(padding=1, groups=2)
    assert _plan(x, w, **kw)[3] < 300
    _check(x, w, None, kw)


def test_grad_weight_images_per_block(no_fallbacks, monkeypatch):
    """A smaller local-memory budget splits 5 images into blocks of 2 (the last one partial)."""
    torch.manual_seed(5)
    monkeypatch.setattr(algorithms, "_DW_LOCAL", 3 << 10)
    x, w, b = torch.randn(5, 3, 9, 9), torch.randn(6, 1, 3, 3), torch.randn(6)
    kw = dict(padding=1, groups=3)
    NI, PB, BP, TQ, XR, XC, LX, LY, blocks = _plan(x, w, **kw)
    assert (NI, PB, blocks) == (2, 9, 3)
    _check(x, w, b, kw, "channels_last")


@pytest.mark.parametrize("R,stride,dilation", [(3, 1, 1), (5, 2, 2)])
def test_direct_fallback(no_fallbacks, kernels, monkeypatch, R, stride, dilation):
    """Tiles that do not fit in local memory (here: a tiny budget) take the per-element kernels
    of cl/conv_direct.cl (shared with the grouped algorithm)."""
    torch.manual_seed(6)
    monkeypatch.setattr(algorithms, "_DW_LOCAL", 64)
    direct = spy_kernels(monkeypatch, "conv_direct.cl")
    x, w, b = torch.randn(2, 3, 13, 11), torch.randn(6, 1, R, R), torch.randn(6)
    _check(x, w, b, dict(stride=stride, padding=1, dilation=dilation, groups=3), "strided")
    assert set(direct["kernels"]) == {"conv_direct_forward", "conv_direct_grad_input", "conv_direct_grad_weight"}
    assert not kernels["kernels"]


def test_conv_transpose2d_depthwise(no_fallbacks, kernels):
    """conv_transpose2d runs the grad_input kernel forward and the forward kernel backward."""
    torch.manual_seed(7)
    x, w, b = torch.randn(2, 8, 7, 6), torch.randn(8, 1, 3, 3), torch.randn(4)   # multiplier 2
    op = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=4)
    _check(x, w, b, None, "channels_last", op=op)
    assert {"dw_forward", "dw_grad_input", "dw_grad_weight_part"} <= set(kernels["kernels"])


@pytest.mark.slow
@pytest.mark.parametrize("shape,R,stride", [((2, 32, 56, 56), 3, 1), ((2, 24, 56, 56), 5, 2),
                                            ((3, 96, 7, 7), 3, 1), ((2, 16, 112, 112), 3, 2),
                                            ((4, 40, 14, 14), 7, 1)])
def test_network_sizes(no_fallbacks, shape, R, stride):
    torch.manual_seed(8)
    C = shape[1]
    x, w, b = torch.randn(shape), torch.randn(C, 1, R, R), torch.randn(C)
    _check(x, w, b, dict(stride=stride, padding=R // 2, groups=C))
