"""Batch, layer, group and instance norm on ocl against torch CPU: forward,
running statistics, and every gradient through autograd."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import DEVICE, assert_close


def _compare(module, x, train=True, channels_last=False, rtol=1e-7, atol=1e-7):
    """Runs ``module`` on CPU and ocl; compares outputs, input/parameter grads and buffers."""
    module.train(train)
    ocl = copy.deepcopy(module).to(DEVICE)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xc = x.clone().requires_grad_()
    xo = x.to(DEVICE).requires_grad_()
    yc, yo = module(xc), ocl(xo)
    assert_close(yo, yc, rtol, atol)
    g = torch.randn_like(yc)
    yc.backward(g)
    yo.backward(g.to(DEVICE))
    assert_close(xo.grad, xc.grad, rtol, atol)
    for pc, po in zip(module.parameters(), ocl.parameters()):
        assert_close(po.grad, pc.grad, rtol, atol)
    for bc, bo in zip(module.buffers(), ocl.buffers()):
        assert_close(bo, bc, rtol, atol)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_batch_norm2d(no_fallbacks, train, affine, track):
    torch.manual_seed(0)
    m = nn.BatchNorm2d(5, affine=affine, track_running_stats=track, momentum=0.3).double()
    if track:
        m.running_mean.uniform_(-1, 1)
        m.running_var.uniform_(0.5, 2)
    if affine:
        nn.init.uniform_(m.weight, 0.5, 1.5)
        nn.init.uniform_(m.bias, -1, 1)
    _compare(m, torch.randn(3, 5, 7, 9, dtype=torch.float64) * 3 + 2, train)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm2d_channels_last_and_batch1(no_fallbacks, train):
    torch.manual_seed(1)
    m = nn.BatchNorm2d(4).double()
    nn.init.uniform_(m.weight, 0.5, 1.5)
    _compare(m, torch.randn(1, 4, 5, 3, dtype=torch.float64), train, channels_last=True)


def test_batch_norm_1d_and_3d(no_fallbacks):
    torch.manual_seed(2)
    _compare(nn.BatchNorm1d(6).double(), torch.randn(4, 6, dtype=torch.float64))
    _compare(nn.BatchNorm1d(6).double(), torch.randn(4, 6, 11, dtype=torch.float64))
    _compare(nn.BatchNorm3d(3).double(), torch.randn(2, 3, 3, 4, 5, dtype=torch.float64))


def test_batch_norm_float32_noncontiguous(no_fallbacks):
    torch.manual_seed(3)
    m = nn.BatchNorm2d(3)
    x = torch.randn(4, 6, 9, 10)[:, ::2, :, 1:].transpose(2, 3)
    _compare(m, x, rtol=1e-4, atol=1e-4)


def test_batch_norm_running_update_in_place(no_fallbacks):
    m = nn.BatchNorm2d(3).to(DEVICE)
    rm, rv = m.running_mean, m.running_var
    x = torch.randn(2, 3, 4, 4)
    m(x.to(DEVICE))
    ref = nn.BatchNorm2d(3)
    ref(x)
    assert m.running_mean is rm and m.running_var is rv
    assert_close(rm, ref.running_mean)
    assert_close(rv, ref.running_var)


def test_batch_norm_deterministic(no_fallbacks):
    x = torch.randn(8, 3, 33, 35).to(DEVICE)
    m = nn.BatchNorm2d(3).to(DEVICE)
    a = m(x).cpu()
    b = m(x).cpu()
    assert torch.equal(a, b)


def test_batch_norm_empty(no_fallbacks):
    m = nn.BatchNorm2d(3).to(DEVICE).eval()
    y = m(torch.empty(0, 3, 4, 4, device=DEVICE))
    assert y.shape == (0, 3, 4, 4)


@pytest.mark.parametrize("shape", [[7], [5, 7]])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(no_fallbacks, shape, affine):
    torch.manual_seed(4)
    m = nn.LayerNorm(shape, elementwise_affine=affine).double()
    if affine:
        nn.init.uniform_(m.weight, 0.5, 1.5)
        nn.init.uniform_(m.bias, -1, 1)
    _compare(m, torch.randn(3, 4, 5, 7, dtype=torch.float64) * 2 + 1)


def test_layer_norm_float32_transposed(no_fallbacks):
    torch.manual_seed(5)
    m = nn.LayerNorm(6)
    _compare(m, torch.randn(6, 9).t(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("groups,channels_last", [(1, False), (2, True), (6, False)])
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm(no_fallbacks, groups, channels_last, affine):
    torch.manual_seed(6)
    m = nn.GroupNorm(groups, 6, affine=affine).double()
    if affine:
        nn.init.uniform_(m.weight, 0.5, 1.5)
        nn.init.uniform_(m.bias, -1, 1)
    _compare(m, torch.randn(2, 6, 5, 3, dtype=torch.float64), channels_last=channels_last)


def test_group_norm_no_spatial(no_fallbacks):
    torch.manual_seed(7)
    _compare(nn.GroupNorm(2, 4).double(), torch.randn(3, 4, dtype=torch.float64))


@pytest.mark.parametrize("train", [True, False])
def test_instance_norm(no_fallbacks, train):
    torch.manual_seed(8)
    _compare(nn.InstanceNorm2d(3).double(), torch.randn(2, 3, 5, 6, dtype=torch.float64), train)


def test_norm_bad_input_raises_torch_error():
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
        torch.nn.functional.batch_norm(torch.randn(2, 3, 4, device=DEVICE), torch.zeros(4, device=DEVICE),
                                       torch.ones(4, device=DEVICE), training=False)
    with pytest.raises(RuntimeError, match="divisible"):
        torch.nn.functional.group_norm(torch.randn(2, 6, 4, device=DEVICE), 4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_norm_low_precision_with_float_params(no_fallbacks, dtype):
    torch.manual_seed(9)
    x = torch.randn(2, 3, 4, 5).to(dtype)
    m, mo = nn.BatchNorm2d(3), nn.BatchNorm2d(3).to(DEVICE)
    assert_close(mo(x.to(DEVICE)), m(x), 1e-2, 1e-2)
    assert_close(mo.running_var, m.running_var, 1e-3, 1e-3)
    assert_close(F.layer_norm(x.to(DEVICE), [5]), F.layer_norm(x, [5]), 1e-2, 1e-2)
