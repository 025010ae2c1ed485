"""Grouped convolution kernels (oclcore.conv's "grouped" algorithm: groups > 1,
at most 32 channels per group, not depthwise) against torch CPU in float64:
forward, input and weight gradients through autograd on ocl with the
algorithm forced; group widths (Cg, Kg) 8/8, 4/16, 16/4, 2/2, 32/32; kernels
1x1, 3x3, 5x5, 1x7; stride 1/2; padding 0/1/'same'; dilation 1/2; odd sizes;
batch 1-3; NCHW, channels-last and strided inputs; bias or none; the fused
relu of torch.ops.oclcore.conv2d; conv_transpose2d; the filter gradient's
chunks and blocks; the direct kernels used when a tile does not fit in local
memory; nn.Conv2d through the planner's own choice. ``-m slow`` runs the
whole cross-product."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import oclcore.conv
from conftest import DEVICE, assert_close
from conv_check import PASSES, TOL, check, spy_kernels
from oclcore.conv import grouped

TILED = {"gc_forward", "gc_grad_input", "gc_grad_weight_part"}
DIRECT = {"conv_direct_forward", "conv_direct_grad_input", "conv_direct_grad_weight"}   # cl/conv_direct.cl


@pytest.fixture
def kernels(monkeypatch):
    """Names of the grouped kernels launched, and (pass, algorithm) of every pass that ran."""
    return spy_kernels(monkeypatch, "conv_grouped.cl")


def _check(x, w, b, kw, layout="nchw", op=None, ref=None, algorithm="grouped"):
    """conv_check.check with the grouped algorithm forced."""
    return check(algorithm, x, w, b, kw, layout, op, ref)


def _geometry(x, w, **kw):
    return oclcore.conv.conv_geometry(x.shape, w.shape, kw.get("stride", 1), kw.get("padding", 0),
                                      kw.get("dilation", 1), kw["groups"])


# ---- the sweep --------------------------------------------------------------------------------

WIDTHS = [(8, 8), (4, 16), (16, 4), (2, 2), (32, 32)]   # (Cg, Kg)
KERNELS = [(1, 1), (3, 3), (5, 5), (1, 7)]
LAYOUTS = ["nchw", "channels_last", "strided_channels"]


def _batch(i):
    return (1, 3, 2)[i % 3]


def _case(i, widths, R, S, stride, padding, dilation):
    gen = torch.Generator().manual_seed(i)
    (Cg, Kg), G, N = widths, 2 + i % 2, _batch(i)
    H, W = (13, 13) if i % 2 else (7, 9)
    x = torch.randn(N, Cg * G, H, W, generator=gen)
    w = torch.randn(Kg * G, Cg, R, S, generator=gen)
    b = torch.randn(Kg * G, generator=gen) if i % 4 else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=G)


# A default subset that covers every value of every axis and both program kinds (compile-time
# geometry: 1x1, 3x3, 5x5 with stride 1/2; runtime geometry: 1x7, dilation 2) while sharing
# programs where it can; -m slow runs the cross-product.
DEFAULT = {((8, 8), (3, 3), 1, 1, 1), ((32, 32), (3, 3), 1, "same", 1), ((4, 16), (3, 3), 2, 1, 1),
           ((16, 4), (3, 3), 2, 0, 1), ((2, 2), (3, 3), 1, 1, 2), ((8, 8), (1, 7), 2, 0, 1),
           ((32, 32), (5, 5), 1, "same", 1), ((4, 16), (1, 1), 1, 0, 1), ((2, 2), (1, 7), 1, "same", 2)}


def _sweep():
    params = []
    for i, cfg in enumerate(itertools.product(WIDTHS, KERNELS, [1, 2], [0, 1, "same"], [1, 2])):
        widths, (R, S), st, pad, dil = cfg
        x, w, b, kw = _case(i, widths, R, S, st, pad, dil)
        try:
            F.conv2d(x, w, b, **kw)
        except RuntimeError:   # padding='same' with stride 2, or a kernel larger than the input
            continue
        marks = () if cfg in DEFAULT else (pytest.mark.slow,)
        params.append(pytest.param(i, cfg, marks=marks,
                                   id=f"g{widths[0]}x{widths[1]}-k{R}x{S}-s{st}-p{pad}-d{dil}-{i}"))
    return params


def test_default_sweep_is_valid():
    default = [p for p in _sweep() if not p.marks]
    assert len(DEFAULT) == len(default)
    assert {LAYOUTS[p.values[0] % 3] for p in default} == set(LAYOUTS)
    assert {_batch(p.values[0]) for p in default} >= {1, 3}


@pytest.mark.parametrize("i,cfg", _sweep())
def test_grouped_sweep(no_fallbacks, kernels, i, cfg):
    widths, (R, S), st, pad, dil = cfg
    x, w, b, kw = _case(i, widths, R, S, st, pad, dil)
    _check(x, w, b, kw, LAYOUTS[i % 3])
    assert sorted(set(kernels["passes"])) == [(p, "grouped") for p in sorted(PASSES)], kernels
    assert set(kernels["kernels"]) == TILED


# ---- bias + relu, conv_transpose2d -------------------------------------------------------------

def test_fused_relu(no_fallbacks):
    torch.manual_seed(2)
    x, w, b = torch.randn(2, 16, 13, 11), torch.randn(16, 8, 3, 3), torch.randn(16)
    op = lambda x, w, b: torch.ops.oclcore.conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 2, "relu")
    _check(x, w, b, None, op=op, ref=lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2).relu())


def test_conv_transpose2d(no_fallbacks, kernels):
    """conv_transpose2d runs the data-gradient kernel forward and the forward kernel backward."""
    torch.manual_seed(7)
    x, w, b = torch.randn(2, 16, 7, 6), torch.randn(16, 8, 3, 3), torch.randn(16)
    op = lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)
    _check(x, w, b, None, "channels_last", op=op)
    assert TILED == set(kernels["kernels"])


# ---- chunks, blocks and the direct fallbacks ---------------------------------------------------

def test_plans_cover_chunks_and_blocks():
    """The filter gradient splits 32x32 filters over channel chunks (3x3) and filter-row chunks
    (5x5), and uses several blocks per image or several images per block; forward and data
    gradient stage channel chunks and put several planes in a work-group for small images."""
    big = _geometry(torch.empty(2, 64, 13, 13), torch.empty(64, 32, 3, 3), padding=1, groups=2)
    d, plan = grouped._grad_weight_plan(big)
    kch, kcn, cch, ccn = plan["args"][:4]
    assert ccn > 1 and kcn == 1, plan
    wide = _geometry(torch.empty(2, 64, 13, 13), torch.empty(64, 32, 5, 5), padding=2, groups=2)
    d, plan = grouped._grad_weight_plan(wide)
    assert plan["args"][1] > 1, plan
    d, kblk, (LX, LY, LN, CC, TH, TW) = grouped._forward_plan(wide)
    assert CC < 32 and kblk == 4, (CC, kblk)
    d, cblk, (LX, LY, LN, KC, TH, TW), *_ = grouped._grad_input_plan(wide)
    assert KC < 32 and cblk == 4, (KC, cblk)
    tall = _geometry(torch.empty(3, 16, 40, 37), torch.empty(16, 8, 3, 3), padding=1, groups=2)
    assert grouped._grad_weight_plan(tall)[1]["blocks"] > 3
    small = _geometry(torch.empty(64, 16, 7, 7), torch.empty(16, 8, 3, 3), padding=1, groups=2)
    NIMG = grouped._grad_weight_plan(small)[1]["args"][6]
    assert NIMG > 1
    assert grouped._forward_plan(small)[2][2] > 1   # LN: planes per work-group


def test_grad_weight_blocks_and_chunks(no_fallbacks, monkeypatch):
    """Blocks of 4 rows (a short last one), blocks of 2 images (a short last one), and column
    chunks of a wide image."""
    torch.manual_seed(3)
    x, w, b = torch.randn(3, 16, 13, 9), torch.randn(16, 8, 3, 3), torch.randn(16)
    kw = dict(padding=1, groups=2)
    monkeypatch.setattr(grouped, "_MIN_POSITIONS", 1)
    monkeypatch.setattr(grouped, "_WG_TARGET", 20)
    plan = grouped._grad_weight_plan(_geometry(x, w, **kw))[1]
    assert plan["args"][6:8] == (1, 4) and plan["blocks"] == 12, plan
    _check(x, w, b, kw)
    monkeypatch.setattr(grouped, "_WG_TARGET", 3)
    plan = grouped._grad_weight_plan(_geometry(x, w, **kw))[1]
    assert plan["args"][6:8] == (2, 13) and plan["blocks"] == 2, plan
    _check(x, w, b, kw, "channels_last")
    x = torch.randn(2, 16, 5, 70)
    plan = grouped._grad_weight_plan(_geometry(x, w, **kw))[1]
    assert plan["args"][10] < 70, plan   # TQ
    _check(x, w, None, kw, "strided_channels")


def test_images_per_work_group(no_fallbacks):
    """Small images: several images of a group share a forward / data-gradient work-group and
    its staged filter, the last work-group partly empty."""
    torch.manual_seed(5)
    x, w, b = torch.randn(9, 16, 5, 5), torch.randn(16, 8, 3, 3), torch.randn(16)
    kw = dict(padding=1, groups=2)
    g = _geometry(x, w, **kw)
    for LN in (grouped._forward_plan(g)[2][2], grouped._grad_input_plan(g)[2][2]):
        assert LN > 2 and 9 % LN, LN
    _check(x, w, b, kw, "channels_last")


def test_direct_fallback(no_fallbacks, kernels, monkeypatch):
    """Tiles that do not fit in local memory (here: a tiny budget) take the per-element kernels."""
    torch.manual_seed(6)
    monkeypatch.setattr(grouped, "_LOCAL", 64)
    direct = spy_kernels(monkeypatch, "conv_direct.cl")
    x, w, b = torch.randn(2, 16, 9, 11), torch.randn(16, 8, 3, 3), torch.randn(16)
    _check(x, w, b, dict(stride=2, padding=1, groups=2), "strided_channels")
    assert set(direct["kernels"]) == DIRECT and not kernels["kernels"]


# ---- the planner's own choice ------------------------------------------------------------------

def test_heuristic_picks_grouped():
    """regnet_y_400mf-like layers (8 channels per group) go to "grouped" in every pass; wide
    groups, depthwise and ungrouped layers do not."""
    for shape, stride in [((64, 48, 56, 56), 1), ((64, 48, 112, 112), 2), ((64, 440, 7, 7), 1)]:
        C = shape[1]
        g = _geometry(torch.empty(shape), torch.empty(C, 8, 3, 3), stride=stride, padding=1, groups=C // 8)
        assert [oclcore.conv.heuristic(g, p) for p in PASSES] == ["grouped"] * 3
    resnext = _geometry(torch.empty(8, 256, 28, 28), torch.empty(256, 8, 3, 3), padding=1, groups=32)
    assert oclcore.conv.heuristic(resnext, "forward") == "grouped"
    wide = _geometry(torch.empty(8, 64, 14, 14), torch.empty(64, 32, 3, 3), padding=1, groups=2)
    assert oclcore.conv.heuristic(wide, "forward") != "grouped"
    assert grouped.Grouped().supports(wide)
    dw = _geometry(torch.empty(2, 8, 9, 9), torch.empty(8, 1, 3, 3), padding=1, groups=8)
    assert not grouped.Grouped().supports(dw)
    dense = _geometry(torch.empty(2, 8, 9, 9), torch.empty(8, 8, 3, 3), padding=1, groups=1)
    assert not grouped.Grouped().supports(dense)


def test_module_end_to_end(no_fallbacks, kernels):
    """nn.Conv2d(groups=...) on ocl, no algorithm forced: forward and backward match the CPU
    module and run the grouped kernels."""
    torch.manual_seed(4)
    conv = torch.nn.Conv2d(24, 24, 3, padding=1, groups=3)
    oconv = torch.nn.Conv2d(24, 24, 3, padding=1, groups=3).to(DEVICE)
    oconv.load_state_dict(conv.state_dict())
    x = torch.randn(2, 24, 11, 9)
    xo = x.to(DEVICE).requires_grad_()
    x.requires_grad_()
    y, yo = conv(x), oconv(xo)
    assert_close(yo, y, TOL, TOL)
    g = torch.randn_like(y)
    y.backward(g)
    yo.backward(g.to(DEVICE))
    assert_close(xo.grad, x.grad, TOL, TOL)
    assert_close(oconv.weight.grad, conv.weight.grad, TOL, TOL)
    assert_close(oconv.bias.grad, conv.bias.grad, TOL, TOL)
    assert set(kernels["passes"]) == {(p, "grouped") for p in PASSES}, kernels
    assert set(kernels["kernels"]) == TILED


@pytest.mark.slow
@pytest.mark.parametrize("shape,Cg,stride", [((4, 48, 56, 56), 8, 1), ((2, 48, 112, 112), 8, 2),
                                             ((4, 104, 28, 28), 8, 1), ((8, 440, 7, 7), 8, 1),
                                             ((2, 128, 28, 28), 4, 1), ((4, 256, 14, 14), 16, 2)])
def test_network_sizes(no_fallbacks, shape, Cg, stride):
    torch.manual_seed(8)
    C = shape[1]
    x, w, b = torch.randn(shape), torch.randn(C, Cg, 3, 3), torch.randn(C)
    _check(x, w, b, dict(stride=stride, padding=1, groups=C // Cg), "channels_last" if Cg == 4 else "nchw")
