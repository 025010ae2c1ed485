"""The convolution forward's fused bias + activation epilogue: every activation of
oclcore.conv.ACTIVATION_NAMES, with and without a bias, with each algorithm forced (its
tiled and per-element kernels), NCHW and channels-last, against act(F.conv2d(...)) on torch
CPU; the 1x1 and im2col forwards on each GEMM path (direct, tiled, split-K) with no separate
bias pass; torch.ops.oclcore.conv2d forward and backward (x, w and bias gradients) for every
activation; rejected names. The default run takes a representative subset; ``-m slow`` runs
the whole cross-product."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import conv_check
import oclcore.conv
from conftest import DEVICE, assert_close
from conv_check import TOL, check, spy_kernels
from oclcore.conv import ACTIVATION_NAMES, force_algorithm
from oclcore.gemm import planner

REF = {   # each activation as torch computes it
    "none": lambda z: z,
    "relu": torch.relu,
    "relu6": lambda z: F.hardtanh(z, 0.0, 6.0),
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
}
ACTS = list(REF)

# name -> (algorithm, x shape, w shape, stride, padding, dilation, groups, kernel that must run
# from the algorithm's file, or None); sizes spread the pre-activations over relu6's and
# the saturating activations' interesting ranges
CASES = {
    "gemm_1x1": ("gemm_1x1", (2, 6, 5, 7), (8, 3, 1, 1), 1, 0, 1, 2, None),
    "im2col": ("im2col", (2, 6, 7, 6), (8, 3, 3, 3), (2, 1), 1, 1, 2, None),
    "implicit_gemm": ("implicit_gemm", (2, 4, 6, 5), (6, 2, 3, 3), 1, 1, (2, 1), 2, None),
    "winograd": ("winograd", (2, 4, 6, 7), (6, 2, 3, 3), 1, 1, 1, 2, ("conv_winograd.cl", "wt_output")),
    "winograd_f4x4_3x3": ("winograd_f4x4_3x3", (2, 4, 9, 7), (6, 2, 3, 3), 1, 1, 1, 2,
                          ("conv_winograd.cl", "wt_output")),
    "winograd_f2x2_5x5": ("winograd_f2x2_5x5", (2, 4, 7, 8), (6, 2, 5, 5), 1, 2, 1, 2,
                          ("conv_winograd.cl", "wt_output")),
    "depthwise": ("depthwise", (2, 4, 7, 6), (8, 1, 3, 3), 1, 1, 1, 4, ("conv_depthwise.cl", "dw_forward")),
    "grouped": ("grouped", (2, 8, 6, 7), (8, 2, 3, 3), 1, 1, 1, 4, ("conv_grouped.cl", "gc_forward")),
    # a stride no local-memory tile fits: the per-element kernels
    "depthwise_direct": ("depthwise", (1, 3, 5, 5), (6, 1, 3, 3), 3000, 1, 1, 3,
                         ("conv_direct.cl", "conv_direct_forward")),
    "grouped_direct": ("grouped", (1, 4, 5, 5), (4, 2, 3, 3), 3000, 1, 1, 2,
                       ("conv_direct.cl", "conv_direct_forward")),
}


# Larger Winograd tiles round more (F(2x2,5x5): up to 2e-5 of tanh's range at pre-activations
# near 30 in these cases)
WINOGRAD_TILES_TOL = 5e-5


def _pair(v):
    return list(v) if isinstance(v, tuple) else [v, v]


def _op(stride, padding, dilation, groups, act):
    return lambda x, w, b: torch.ops.oclcore.conv2d(x, w, b, _pair(stride), _pair(padding), _pair(dilation),
                                                    groups, act)


def _ref(stride, padding, dilation, groups, act):
    return lambda x, w, b: REF[act](F.conv2d(x, w, b, stride, padding, dilation, groups))


def _inputs(case, seed):
    _, xs, ws = CASES[case][:3]
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(xs, generator=g), torch.randn(ws, generator=g),
            torch.randn(ws[0], generator=g))


def _bias_on_device(b, strided):
    """b on ocl, dense or as every other element of a longer vector (the kernels read it packed)."""
    if not strided:
        return b.to(DEVICE)
    big = torch.zeros(2 * b.numel())
    big[::2] = b
    return big.to(DEVICE)[::2]


def check_forward(monkeypatch, case, act, with_bias, layout):
    """The forward of case with its algorithm forced against torch CPU in float64: one pass over
    the output (no separate bias/activation launch), the output in the input's memory format."""
    alg, _, _, stride, padding, dilation, groups, must_run = CASES[case]
    x, w, b = _inputs(case, ACTS.index(act))
    b = b if with_bias else None
    want = _ref(stride, padding, dilation, groups, act)(x.double(), w.double(),
                                                         None if b is None else b.double()).float()
    bias_pass = spy_kernels(monkeypatch, "conv_bias.cl")
    ran = spy_kernels(monkeypatch, must_run[0]) if must_run else None
    xo = x.to(DEVICE)
    if layout == "channels_last":
        xo = xo.contiguous(memory_format=torch.channels_last)
    bo = None if b is None else _bias_on_device(b, strided=layout == "channels_last")
    with force_algorithm(alg, strict=True):
        y = _op(stride, padding, dilation, groups, act)(xo, w.to(DEVICE), bo)
    tol = WINOGRAD_TILES_TOL if alg.startswith("winograd_f") else TOL
    assert_close(y, want, tol, tol)
    assert y.is_contiguous(memory_format=torch.channels_last if layout == "channels_last"
                           else torch.contiguous_format)
    assert "bias_act" not in bias_pass["kernels"]
    assert ("forward", alg) in bias_pass["passes"]
    if must_run:
        assert must_run[1] in ran["kernels"]


def _subset():
    """Every case with every activation with a bias, alternating the layout; without a bias
    once per case in each layout."""
    out = []
    for i, (case, act) in enumerate(itertools.product(CASES, ACTS)):
        out.append((case, act, True, ("nchw", "channels_last")[i % 2]))
    for i, case in enumerate(CASES):
        out += [(case, ACTS[2 + i % 6], False, layout) for layout in ("nchw", "channels_last")]
    return out


def test_activation_names_are_the_gemm_epilogue_ones():
    assert set(ACTIVATION_NAMES) == set(REF)
    assert all(planner.ACTIVATIONS[a] > 0 for a in ACTS if a != "none")


@pytest.mark.parametrize("case,act,with_bias,layout", _subset())
def test_forward_epilogue(monkeypatch, no_fallbacks, case, act, with_bias, layout):
    check_forward(monkeypatch, case, act, with_bias, layout)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", list(CASES))
def test_forward_epilogue_sweep(monkeypatch, no_fallbacks, case, act, with_bias, layout):
    check_forward(monkeypatch, case, act, with_bias, layout)


# ---- the GEMM paths of the 1x1 and im2col forwards ---------------------------------------------

GEMM_PATHS = [("direct", 1), ("direct", 2), ("tiled", 1), ("tiled", 3)]


def _force_gemm(monkeypatch, kind, split):
    """Every GEMM planned in this test takes kind with split K chunks; returns the plans made."""
    plans, plan_gemm = [], planner.plan_gemm

    def forced(*args, **kwargs):
        plan = plan_gemm(*args, **dict(kwargs, kind=kind, split=split))
        plans.append(plan)
        return plan
    monkeypatch.setattr(planner, "plan_gemm", forced)
    monkeypatch.setattr(planner, "_plan_cache", {})
    return plans


def check_gemm_path(monkeypatch, kind, split, case, act, layout):
    alg, xs, ws, stride, padding, dilation, groups, _ = CASES[case]
    x, w, b = _inputs(case, 7)
    # deeper products than the shared cases, so that split K chunks hold data
    x, w = x.repeat(1, 4, 1, 1), w.repeat(1, 4, 1, 1) / 2
    want = _ref(stride, padding, dilation, groups, act)(x.double(), w.double(), b.double()).float()
    plans = _force_gemm(monkeypatch, kind, split)
    bias_pass = spy_kernels(monkeypatch, "conv_bias.cl")
    xo = x.to(DEVICE)
    if layout == "channels_last":
        xo = xo.contiguous(memory_format=torch.channels_last)
    with force_algorithm(alg, strict=True):
        y = _op(stride, padding, dilation, groups, act)(xo, w.to(DEVICE), b.to(DEVICE))
    assert_close(y, want, TOL, TOL)
    assert "bias_act" not in bias_pass["kernels"]
    assert 1 <= len(plans) <= groups   # (a group may reuse the other's cached plan)
    assert all(p.kind == kind and p.split == split and p.bias and p.act == act for p in plans)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("kind,split", GEMM_PATHS, ids=["direct", "direct_split", "tiled", "tiled_split"])
def test_gemm_paths_apply_the_epilogue_once(monkeypatch, no_fallbacks, kind, split, layout):
    """sigmoid (not idempotent) and a bias: applying either twice, or before a split-K
    reduction, would show."""
    check_gemm_path(monkeypatch, kind, split, "im2col", "sigmoid", layout)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", ["gemm_1x1", "im2col"])
@pytest.mark.parametrize("kind,split", GEMM_PATHS, ids=["direct", "direct_split", "tiled", "tiled_split"])
def test_gemm_paths_sweep(monkeypatch, no_fallbacks, kind, split, case, act, layout):
    check_gemm_path(monkeypatch, kind, split, case, act, layout)


# ---- torch.ops.oclcore.conv2d: forward and backward ----------------------------------------------

# PoCL's float tanh can be an ulp short of 1 far from 0, which the float32 tanh-approximated
# gelu_backward amplifies by y^3 (2e-5 at y = 15, cl/pointwise.cl): a looser tolerance there
OP_TOL = {"gelu_tanh": 1e-4}


def check_op(monkeypatch, algorithm, act, with_bias, layout="nchw"):
    """The op's forward and its x, w (and bias) gradients against autograd through
    act(F.conv2d(...)) on torch CPU in float64."""
    monkeypatch.setattr(conv_check, "TOL", OP_TOL.get(act, TOL))
    x, w, b = _inputs("implicit_gemm", 20 + ACTS.index(act))
    x = x[:, :, :, :4]   # a size winograd tiles unevenly
    kw = (1, 1, 1, 2)
    check(algorithm, x, w, b if with_bias else None, None, layout, op=_op(*kw, act), ref=_ref(*kw, act))


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("act", ACTS)
def test_op_forward_backward(monkeypatch, no_fallbacks, act, with_bias):
    check_op(monkeypatch, "im2col", act, with_bias)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("algorithm", ["implicit_gemm", "winograd", "grouped"])
@pytest.mark.parametrize("act", ACTS)
def test_op_forward_backward_sweep(monkeypatch, no_fallbacks, act, algorithm, layout):
    check_op(monkeypatch, algorithm, act, True, layout)


def test_op_on_cpu_is_the_reference():
    x, w, b = _inputs("winograd", 3)
    for act in ACTS:
        y = torch.ops.oclcore.conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 2, act)
        assert_close(y, _ref(1, 1, 1, 2, act)(x, w, b), 1e-6, 1e-6)


def test_unknown_activations_are_rejected():
    x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 1, 1)
    for xx, ww in ((x, w), (x.to(DEVICE), w.to(DEVICE))):
        with pytest.raises(RuntimeError, match="act must be one of"):
            torch.ops.oclcore.conv2d(xx, ww, None, [1, 1], [0, 0], [1, 1], 1, "swish")
    from oclcore.ops.conv import _desc, conv_context
    with pytest.raises(ValueError, match="unsupported activation 'swish'"):
        oclcore.conv.conv2d_forward(conv_context(0), _desc(x.to(DEVICE)), _desc(w.to(DEVICE)),
                                    activation="swish")
