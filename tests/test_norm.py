"""Batch, layer, group and instance norm on ocl against torch CPU: forward,
running statistics, and every gradient through autograd."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import DEVICE, assert_close, compare_forward_backward
from oclcore import _runtime, runtime
from oclcore.ops import norm


def _compare(module, x, train=True, channels_last=False, rtol=1e-7, atol=1e-7):
    """Runs ``module`` on CPU and ocl; compares outputs, input/parameter grads and buffers."""
    module.train(train)
    ocl = copy.deepcopy(module).to(DEVICE)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    compare_forward_backward(module, x, rtol, atol, f_ocl=ocl)
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


@pytest.mark.parametrize("k", [1, 5, 96, 257, 2048, 2049])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_rows(no_fallbacks, k, affine):
    """Rows of up to 8 per work-item of a work-group take ln_rows and ln_rows_backward (a row in
    registers, a tree per row); longer ones the general kernels. Forward, input and parameter
    gradients of both against the CPU in double."""
    from oclcore.ops import norm
    from oclcore import runtime

    wg = norm._work_group(runtime.device(0))
    assert (norm._row_lanes(0, k) > 0) == (k <= 8 * wg)
    torch.manual_seed(k)
    m = nn.LayerNorm(k, elementwise_affine=affine).double()
    if affine:
        nn.init.uniform_(m.weight, 0.5, 1.5)
        nn.init.uniform_(m.bias, -1, 1)
    _compare(m, torch.randn(3, 11, k, dtype=torch.float64) * 2 + 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_layer_norm_rows_storage_types(no_fallbacks, dtype):
    torch.manual_seed(1)
    x = torch.randn(2, 7, 7, 96) * 3 + 1
    w, b = torch.rand(96) + 0.5, torch.randn(96)
    got = torch.ops.aten.native_layer_norm(x.to(dtype).to(DEVICE), [96], w.to(DEVICE), b.to(DEVICE), 1e-6)
    ref = torch.ops.aten.native_layer_norm(x.to(dtype).double(), [96], w.double(), b.double(), 1e-6)
    tol = 1e-5 if dtype is torch.float32 else 2e-3
    assert_close(got[0].float(), ref[0].to(dtype).float(), tol, tol)
    for g, r in zip(got[1:], ref[1:]):
        assert g.dtype is torch.float32
        assert_close(g, r.float(), 1e-5, 1e-5)


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


# ---- groups split into chunks (few groups with many elements: batch norm's channels) ----

@pytest.fixture
def small_chunks(monkeypatch):
    """Splits even the small test problems into many chunks, whatever the device."""
    monkeypatch.setattr(norm, "WAVES", 64)
    monkeypatch.setattr(norm, "MIN_PER_ITEM", 1)


def _bn_split(x):
    """(groups per work-group, chunks, chunk length) the batch norm of CPU tensor ``x`` runs with."""
    n, c = x.shape[:2]
    s = x.numel() // (n * c)
    strides = (x.stride(0), x.stride(1), norm._spatial_stride(tuple(x.shape), x.stride()))
    return norm._split(runtime.device(0), c, norm._bn_geometry(strides, n, s))[:3]


def _bn(c, seed):
    torch.manual_seed(seed)
    m = nn.BatchNorm2d(c, momentum=0.3).double()
    m.running_mean.uniform_(-1, 1)
    m.running_var.uniform_(0.5, 2)
    nn.init.uniform_(m.weight, 0.5, 1.5)
    nn.init.uniform_(m.bias, -1, 1)
    return m


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_split_ragged(no_fallbacks, small_chunks, train, channels_last):
    m = _bn(3, 10)
    x = torch.randn(2, 3, 50, 47, dtype=torch.float64) * 3 + 2
    xl = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    _, chunks, length = _bn_split(xl)
    assert chunks > 2 and (2 * 50 * 47) % length != 0
    _compare(m, x, train, channels_last)


def test_batch_norm_split_by_default(no_fallbacks):
    # 3 channels of 9400 elements fill no device with 3 work-groups: split with the shipped settings
    x = torch.randn(2, 3, 50, 47, dtype=torch.float64) * 3 + 2
    assert _bn_split(x)[1] > 1
    _compare(_bn(3, 11), x)


# (1, 6, 1, 1) in training has one value per channel, which torch rejects before any kernel runs
@pytest.mark.parametrize("shape,train", [((1, 4, 33, 31), True), ((1, 4, 33, 31), False), ((300, 5, 1, 1), True),
                                         ((300, 5, 1, 1), False), ((1, 6, 1, 1), False)])
def test_batch_norm_split_batch1_and_1x1(no_fallbacks, small_chunks, shape, train):
    _compare(_bn(shape[1], 12), torch.randn(*shape, dtype=torch.float64) - 1, train)


def test_batch_norm_split_float32_offset_data(no_fallbacks, small_chunks):
    # a large mean: sums of squares would cancel without the shifts
    torch.manual_seed(13)
    m = nn.BatchNorm2d(2)
    x = torch.randn(3, 2, 40, 41) * 0.01 + 100
    m64 = copy.deepcopy(m).double()
    mo = copy.deepcopy(m).to(DEVICE)
    xo = x.to(DEVICE).requires_grad_()
    x64 = x.double().requires_grad_()
    y64, yo = m64(x64), mo(xo)
    assert_close(yo, y64.float(), 1e-4, 1e-4)
    g = torch.randn_like(x)
    y64.backward(g.double())
    yo.backward(g.to(DEVICE))
    assert_close(xo.grad, x64.grad.float(), 1e-4, 1e-4)
    assert_close(mo.weight.grad, m64.weight.grad.float(), 1e-4, 1e-4)
    assert_close(mo.running_var, m64.running_var.float(), 1e-4, 1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_batch_norm_split_low_precision(no_fallbacks, small_chunks, dtype):
    torch.manual_seed(14)
    x = torch.randn(2, 3, 20, 30).to(dtype)
    m, mo = nn.BatchNorm2d(3), nn.BatchNorm2d(3).to(DEVICE)
    assert_close(mo(x.to(DEVICE)), m(x), 1e-2, 1e-2)
    assert_close(mo.running_var, m.running_var, 1e-3, 1e-3)


def test_batch_norm_split_deterministic(no_fallbacks, small_chunks):
    torch.manual_seed(15)
    x = torch.randn(2, 3, 50, 47).to(DEVICE)
    dy = torch.randn(2, 3, 50, 47).to(DEVICE)
    w, b = torch.rand(3).add(0.5).to(DEVICE), torch.randn(3).to(DEVICE)
    runs = []
    for _ in range(2):
        rm, rv = torch.zeros(3).to(DEVICE), torch.ones(3).to(DEVICE)
        y, mean, rstd = torch.ops.aten.native_batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5)
        grads = torch.ops.aten.native_batch_norm_backward(dy, x, w, rm, rv, mean, rstd, True, 1e-5,
                                                          [True, True, True])
        runs.append([t.cpu() for t in (y, mean, rstd, rm, rv, *grads)])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_batch_norm_split_weight_grads_only(no_fallbacks, small_chunks):
    # no grad_input: the second backward launch covers only the first chunk's work-groups
    torch.manual_seed(16)
    x, dy = torch.randn(2, 3, 50, 47, dtype=torch.float64), torch.randn(2, 3, 50, 47, dtype=torch.float64)
    w, rm, rv = torch.rand(3, dtype=torch.float64) + 0.5, torch.randn(3, dtype=torch.float64), \
        torch.rand(3, dtype=torch.float64) + 0.5
    mean, rstd = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False).add(1e-5).rsqrt()
    for train in (True, False):
        args = (dy, x, w, rm, rv, mean, rstd, train, 1e-5, [False, True, True])
        ref = torch.ops.aten.native_batch_norm_backward(*args)
        got = torch.ops.aten.native_batch_norm_backward(*[a.to(DEVICE) if isinstance(a, torch.Tensor) else a
                                                          for a in args])
        assert got[0] is None
        assert_close(got[1], ref[1], 1e-7, 1e-7)
        assert_close(got[2], ref[2], 1e-7, 1e-7)


def test_group_and_layer_norm_split(no_fallbacks, small_chunks):
    torch.manual_seed(17)
    gn = nn.GroupNorm(2, 4).double()
    nn.init.uniform_(gn.weight, 0.5, 1.5)
    _compare(gn, torch.randn(1, 4, 30, 31, dtype=torch.float64), channels_last=True)
    ln = nn.LayerNorm([50, 47]).double()  # rows of 2350: too long for ln_rows, so the general kernel splits them
    nn.init.uniform_(ln.weight, 0.5, 1.5)
    _compare(ln, torch.randn(2, 50, 47, dtype=torch.float64) + 3)


@pytest.mark.parametrize("shape,split", [((2, 3, 50, 47), True), ((8, 64, 7, 7), False)])
def test_batch_norm_launches(no_fallbacks, shape, split):
    # small problems take one launch per call; split ones two (partials, then combine + elementwise)
    c = shape[1]
    x, dy = torch.randn(*shape).to(DEVICE), torch.randn(*shape).to(DEVICE)
    w, b, rm, rv = (torch.ones(c).to(DEVICE) for _ in range(4))
    assert (_bn_split(x.cpu())[1] > 1) == split
    counts = []
    for _ in range(2):  # the first round builds the kernels
        n0 = _runtime.launch_count()
        _, mean, rstd = torch.ops.aten.native_batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5)
        n1 = _runtime.launch_count()
        torch.ops.aten.native_batch_norm_backward(dy, x, w, rm, rv, mean, rstd, True, 1e-5, [True, True, True])
        n2 = _runtime.launch_count()
        torch.ops.aten.native_batch_norm(x, w, b, rm, rv, False, 0.1, 1e-5)
        counts.append((n1 - n0, n2 - n1, _runtime.launch_count() - n2))
    assert counts[-1] == ((2, 2, 1) if split else (1, 1, 1))


@pytest.mark.parametrize("norm", [
    lambda x: torch.nn.functional.layer_norm(x, x.shape[-1:], torch.linspace(0.5, 2, x.shape[-1], dtype=x.dtype,
                                                                              device=x.device)),
    lambda x: torch.nn.functional.group_norm(x.permute(0, 3, 1, 2), 4).permute(0, 2, 3, 1),
], ids=["layer_norm", "group_norm"])
def test_norm_backward_with_a_permuted_gradient(norm, no_fallbacks):
    """The gradient arriving through a permute (as in convnext's LayerNorm2d) is strided."""
    x = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    g = torch.randn(2, 8, 5, 6, dtype=torch.float64).permute(0, 2, 3, 1)
    xc, xo = x.clone().requires_grad_(), x.to("ocl").requires_grad_()
    norm(xc).backward(g)
    norm(xo).backward(g.to("ocl"))
    assert_close(xo.grad, xc.grad, 1e-9, 1e-9)


@pytest.mark.parametrize("layout", ["nchw", "channels_last", "offset", "transposed", "3d", "2d", "large"])
@pytest.mark.parametrize("affine", [True, False])
def test_eval_batch_norm_elementwise_kernel(no_fallbacks, monkeypatch, layout, affine):
    """Eval batch norm on a dense NCHW-like input runs as one elementwise pass (bn_eval); other
    layouts take the per-channel kernel. Both match torch."""
    torch.manual_seed(5)
    shape = {"3d": (3, 6, 13), "2d": (37, 6), "large": (2, 3, 40, 41)}.get(layout, (3, 6, 11, 13))
    base = torch.randn(2 * torch.Size(shape).numel() + 5) * 2 + 1
    x = base[:torch.Size(shape).numel()].view(shape)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "offset":
        x = base[5:5 + x.numel()].view(shape)
    elif layout == "transposed":
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    c = shape[1]
    w, b = (torch.rand(c) + 0.5, torch.randn(c)) if affine else (None, None)
    rm, rv = torch.randn(c), torch.rand(c) + 0.5
    names = []
    real = norm._kernel
    monkeypatch.setattr(norm, "_kernel", lambda name, *a: names.append(name) or real(name, *a))
    dev = lambda t: None if t is None else t.to(DEVICE)  # noqa: E731
    xo = x.to(DEVICE) if layout != "offset" else base.to(DEVICE)[5:5 + x.numel()].view(shape)
    y = F.batch_norm(xo, dev(rm), dev(rv), dev(w), dev(b), False, 0.1, 1e-5)
    assert_close(y, F.batch_norm(x, rm, rv, w, b, False, 0.1, 1e-5), 1e-5, 1e-6)
    assert y.stride() == F.batch_norm(x, rm, rv, w, b, False, 0.1, 1e-5).stride()
    assert names == (["norm_forward"] if layout in ("transposed", "channels_last") else ["bn_eval"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("present", ["all", "no_conv_bias", "no_affine", "none"])
@pytest.mark.parametrize("wshape", [(6, 5, 3, 3), (130, 3, 1, 1), (4, 0, 3, 3), (7, 9), "strided"])
def test_fold_batch_norm_op(no_fallbacks, dtype, present, wshape):
    """oclcore::fold_batch_norm (compiled inference folds eval batch norm into convolutions):
    one launch for the folded weight and bias, against the CPU reference."""
    torch.manual_seed(6)
    w = torch.randn(3, 8, 5, 3, 3, dtype=dtype)[1, :, 1:4] if wshape == "strided" else torch.randn(wshape, dtype=dtype)
    k = w.shape[0]
    b, gamma, beta = (torch.randn(k, dtype=dtype) for _ in range(3))
    rm, rv = torch.randn(k, dtype=dtype), torch.rand(k, dtype=dtype) + 0.5
    if present in ("no_conv_bias", "none"):
        b = None
    if present in ("no_affine", "none"):
        gamma = beta = None
    args = (w, b, gamma, beta, rm, rv)
    want = torch.ops.oclcore.fold_batch_norm(*args, 1e-3)
    s = (gamma if gamma is not None else 1) / torch.sqrt(rv + 1e-3)
    want_by_hand = (w * s.view([-1] + [1] * (w.dim() - 1)),
                    ((b if b is not None else 0) - rm) * s + (beta if beta is not None else 0))
    on_device = [None if t is None else t.to(DEVICE) for t in args]
    if wshape == "strided":  # a view at an offset, as on the CPU
        on_device[0] = torch.randn(3, 8, 5, 3, 3, dtype=dtype).to(DEVICE)[1, :, 1:4]
        on_device[0].copy_(w.to(DEVICE))
    n0 = _runtime.launch_count()
    got = torch.ops.oclcore.fold_batch_norm(*on_device, 1e-3)
    assert _runtime.launch_count() - n0 == (2 if wshape == "strided" else 1)  # (a dense copy first)
    for g, r, h in zip(got, want, want_by_hand):
        assert g.shape == r.shape and g.dtype == dtype
        assert_close(g, r, 1e-6, 1e-7)
        assert_close(g, h, 1e-6, 1e-7)


@pytest.mark.parametrize("dim", [0, -1, 1])
def test_weight_norm_forward_backward(dim, no_fallbacks):
    torch.manual_seed(0)
    shape = (5, 4, 3)
    v, g = torch.randn(shape, dtype=torch.float64), torch.randn(shape[dim % 3], dtype=torch.float64)
    g = g.reshape([-1 if d == dim % 3 else 1 for d in range(3)])

    def f(v, g):
        return torch._weight_norm(v, g, dim)

    vc, gc = v.clone().requires_grad_(), g.clone().requires_grad_()
    vo, go = v.to(DEVICE).requires_grad_(), g.to(DEVICE).requires_grad_()
    yc, yo = f(vc, gc), f(vo, go)
    assert_close(yo, yc)
    grad = torch.randn(shape, dtype=torch.float64)
    yc.backward(grad)
    yo.backward(grad.to(DEVICE))
    assert_close(vo.grad, vc.grad)
    assert_close(go.grad, gc.grad)
