"""Eager convolutions replay their recorded launches from the third call with a signature on
(oclcore/ops/memo.py): same results as planning afresh, fresh outputs and workspace, and a new
recording whenever something that decides the launches changes."""

import pytest
import torch
import torch.nn.functional as F

import oclcore
import oclcore.conv
from conftest import DEVICE, assert_close
from oclcore.graph import Graph, graph
from oclcore.ops import conv as conv_ops


@pytest.fixture
def plans(monkeypatch):
    """Counts the convolution passes planned (a replay plans none)."""
    calls = []
    choose = oclcore.conv.choose
    monkeypatch.setattr(oclcore.conv, "choose", lambda *a, **k: calls.append(a[2]) or choose(*a, **k))
    conv_ops._memo.clear()
    conv_ops._backward_memo.clear()
    return calls


def _conv(x, w, b, **kw):
    return F.conv2d(x, w, b, **kw)


@pytest.mark.parametrize("algorithm", [None, "im2col", "winograd", "gemm_1x1", "depthwise"])
def test_replays_match_planned_calls(no_fallbacks, plans, algorithm):
    torch.manual_seed(0)
    groups = 6 if algorithm == "depthwise" else 1
    r = 1 if algorithm == "gemm_1x1" else 3
    w, b = torch.randn(6, 6 // groups, r, r), torch.randn(6)
    wo, bo = w.to(DEVICE), b.to(DEVICE)
    block = oclcore.conv.force_algorithm(algorithm) if algorithm else torch.no_grad()
    outs = []
    with block:
        for i in range(4):
            x = torch.randn(3, 6, 11, 10)
            y = _conv(x.to(DEVICE), wo, bo, padding=r // 2, groups=groups)
            assert_close(y, _conv(x, w, b, padding=r // 2, groups=groups), 2e-5, 2e-5)
            outs.append((y, _conv(x, w, b, padding=r // 2, groups=groups)))
    assert plans == ["forward", "forward"]   # the first two calls plan, the later two replay
    for y, want in outs:  # every call got its own output
        assert_close(y, want, 2e-5, 2e-5)


def test_new_offsets_sharing_and_settings_record_again(no_fallbacks, plans):
    torch.manual_seed(1)
    w = torch.randn(4, 4, 3, 3)
    wo = w.to(DEVICE)
    big = torch.randn(2 * 4 * 8 * 8 + 3)
    for _ in range(3):
        _conv(big[:256].view(1, 4, 8, 8).to(DEVICE), wo, None)
    assert len(plans) == 2
    bo = big.to(DEVICE)
    for _ in range(3):  # same shape at an offset: another signature
        y = _conv(bo[3:259].view(1, 4, 8, 8), wo, None)
    assert len(plans) == 4
    assert_close(y, _conv(big[3:259].view(1, 4, 8, 8), w, None), 2e-5, 2e-5)
    with oclcore.conv.force_algorithm("implicit_gemm"):
        for _ in range(3):
            y = _conv(bo[3:259].view(1, 4, 8, 8), wo, None)
    assert len(plans) == 6
    sq = torch.randn(4, 4, 3, 3)
    sqo = sq.to(DEVICE)
    for _ in range(3):  # input and weight in one buffer
        y = _conv(sqo, sqo, None)
    assert_close(y, _conv(sq, sq, None), 2e-5, 2e-5)


def test_replays_are_captured_and_profiled(no_fallbacks, plans):
    torch.manual_seed(2)
    w = torch.randn(5, 3, 3, 3).to(DEVICE)
    x = torch.randn(2, 3, 7, 7).to(DEVICE)
    for _ in range(2):
        _conv(x, w, None)
    with oclcore.profile() as prof:
        y = _conv(x, w, None)
    assert len(plans) == 2 and prof.times()
    assert_close(y, _conv(x.cpu(), w.cpu(), None), 2e-5, 2e-5)
    g = Graph()
    with graph(g):
        yc = _conv(x, w, None)
    x.copy_(torch.randn(2, 3, 7, 7).to(DEVICE))
    g.replay()
    assert_close(yc, _conv(x.cpu(), w.cpu(), None), 2e-5, 2e-5)
    assert len(plans) == 2


@pytest.mark.parametrize("mask", [(True, True, True), (True, False, False), (False, True, True)])
def test_backward_replays_match(no_fallbacks, plans, mask):
    torch.manual_seed(3)
    w, b = torch.randn(6, 4, 3, 3), torch.randn(6)
    grads = []
    for i in range(4):
        x = torch.randn(2, 4, 9, 8)
        leaves = [t.to(DEVICE).requires_grad_(m) for t, m in zip((x, w, b), mask)]
        cpu = [t.clone().requires_grad_(m) for t, m in zip((x, w, b), mask)]
        dy = torch.randn(2, 6, 9, 8)
        _conv(*leaves, padding=1).backward(dy.to(DEVICE))
        _conv(*cpu, padding=1).backward(dy)
        grads.append([(o.grad, c.grad) for o, c in zip(leaves, cpu) if c.requires_grad])
    assert plans.count("forward") == 2 and 0 < plans.count("grad_weight") + plans.count("grad_input") <= 4
    for pairs in grads:
        for o, c in pairs:
            assert_close(o, c, 2e-5, 2e-5)
