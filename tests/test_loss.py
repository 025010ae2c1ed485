"""Losses on ocl against torch CPU: forward and backward, every reduction,
class weights, ignore_index, label smoothing and probability targets."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close

REDUCTIONS = ("none", "mean", "sum")


def _check(fn, *inputs, grad=(0,), rtol=1e-5, atol=1e-6):
    """fn on ocl and on CPU agree, and so do the gradients of the inputs listed in ``grad``."""
    cpu = [t.clone().requires_grad_(i in grad) for i, t in enumerate(inputs)]
    dev = [t.to(DEVICE).requires_grad_(i in grad) for i, t in enumerate(inputs)]
    expected, actual = fn(*cpu), fn(*dev)
    assert actual.device.type == "ocl"
    assert_close(actual, expected, rtol, atol)
    seed = torch.randn(expected.shape, dtype=expected.dtype)
    expected.backward(seed)
    actual.backward(seed.to(DEVICE))
    for i in grad:
        assert_close(dev[i].grad, cpu[i].grad, rtol, atol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction, no_fallbacks):
    x, y = torch.randn(6, 5), torch.randn(6, 5)
    _check(lambda a, b: F.mse_loss(a, b, reduction=reduction), x, y, grad=(0, 1))


def test_mse_loss_non_contiguous_broadcast_and_float64(no_fallbacks):
    x = torch.randn(5, 6).t()
    _check(lambda a, b: F.mse_loss(a, b), x, torch.randn(6, 5)[:, 1:2].expand(6, 5).contiguous())
    _check(lambda a, b: F.mse_loss(a, b, reduction="sum"), torch.randn(4, 3, dtype=torch.float64),
           torch.randn(4, 3, dtype=torch.float64))


def test_mse_loss_large_uses_several_groups(no_fallbacks):
    x, y = torch.randn(200000), torch.randn(200000)
    _check(lambda a, b: F.mse_loss(a, b), x, y, rtol=1e-4)
    _check(lambda a, b: F.mse_loss(a, b, reduction="sum"), x, y, rtol=1e-4)


def test_empty_mean_is_nan_and_sum_zero(no_fallbacks):
    e = torch.empty(0).to(DEVICE)
    assert torch.isnan(F.mse_loss(e, e).cpu())
    assert F.mse_loss(e, e, reduction="sum").cpu().item() == 0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", (0.5, 0.0))
def test_smooth_l1_loss(reduction, beta, no_fallbacks):
    x, y = torch.randn(6, 5), torch.randn(6, 5)
    _check(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_and_l1_loss(reduction, no_fallbacks):
    x, y = torch.randn(6, 5), torch.randn(6, 5)
    _check(lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=0.7), x, y, grad=(0, 1))
    _check(lambda a, b: F.l1_loss(a, b, reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction, no_fallbacks):
    p, t, w = torch.rand(6, 5) * 0.98 + 0.01, torch.rand(6, 5), torch.rand(5)
    _check(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction), p, t)
    _check(lambda a, b, c: F.binary_cross_entropy(a, b, weight=c, reduction=reduction), p, t, w)


def test_binary_cross_entropy_clamps_log(no_fallbacks):
    p = torch.tensor([0.0, 1.0, 0.5])
    t = torch.tensor([1.0, 0.0, 0.5])
    assert_close(F.binary_cross_entropy(p.to(DEVICE), t.to(DEVICE), reduction="none"),
                 F.binary_cross_entropy(p, t, reduction="none"))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction, no_fallbacks):
    x, t, w, pw = torch.randn(6, 5) * 3, torch.rand(6, 5), torch.rand(5), torch.rand(5) * 2
    _check(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), x, t)
    _check(lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, weight=c, pos_weight=d,
                                                                 reduction=reduction), x, t, w, pw)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("reduction", REDUCTIONS + ("batchmean",))
@pytest.mark.parametrize("log_target", (False, True))
def test_kl_div(reduction, log_target, no_fallbacks):
    x = torch.randn(4, 5).log_softmax(1)
    t = torch.randn(4, 5).log_softmax(1) if log_target else torch.rand(4, 5)
    _check(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_weight_and_ignore_index(reduction, no_fallbacks):
    lp = torch.randn(6, 5).log_softmax(1)
    target = torch.tensor([0, 4, -100, 2, 2, 1])
    _check(lambda a, b: F.nll_loss(a, b, reduction=reduction), lp, target)
    _check(lambda a, b, c: F.nll_loss(a, b, weight=c, reduction=reduction), lp, target, torch.rand(5))
    _check(lambda a, b: F.nll_loss(a, b, reduction=reduction, ignore_index=2), lp, target.clamp(min=0))


def test_nll_loss_unbatched_and_transposed(no_fallbacks):
    _check(lambda a, b: F.nll_loss(a, b), torch.randn(5).log_softmax(0), torch.tensor(3))
    _check(lambda a, b: F.nll_loss(a, b), torch.randn(5, 6).log_softmax(0).t(), torch.tensor([1, 0, 4, 2, 3, 3]))


def test_nll_loss_all_ignored_mean_is_nan(no_fallbacks):
    lp = torch.randn(3, 4).log_softmax(1).to(DEVICE)
    assert torch.isnan(F.nll_loss(lp, torch.full((3,), -100).to(DEVICE)).cpu())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy(reduction, no_fallbacks):
    x, target = torch.randn(6, 5), torch.tensor([0, 4, 3, 2, 2, 1])
    _check(lambda a, b: F.cross_entropy(a, b, reduction=reduction), x, target)
    _check(lambda a, b, c: F.cross_entropy(a, b, weight=c, reduction=reduction), x, target, torch.rand(5))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_2d_segmentation(reduction, no_fallbacks):
    x = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0, 0] = 7
    _check(lambda a, b: F.cross_entropy(a, b, reduction=reduction, ignore_index=7), x, target)
    _check(lambda a, b, c: F.cross_entropy(a, b, weight=c, reduction=reduction, ignore_index=7), x, target,
           torch.rand(3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_label_smoothing(reduction, no_fallbacks):
    x, target = torch.randn(6, 5), torch.tensor([0, 4, 3, 2, 2, 1])
    _check(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=0.2), x, target)


def test_cross_entropy_label_smoothing_with_ignore_index(no_fallbacks):
    x, target = torch.randn(6, 5), torch.tensor([0, 4, -100, 2, 2, 1])
    _check(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.2), x, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probability_targets(reduction, no_fallbacks):
    x, probs = torch.randn(6, 5), torch.rand(6, 5).softmax(1)
    _check(lambda a, b: F.cross_entropy(a, b, reduction=reduction), x, probs)
    _check(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=0.1), x, probs)


def test_bad_target_raises_torch_error():
    lp = torch.randn(3, 4).log_softmax(1).to(DEVICE)
    with pytest.raises(RuntimeError, match="size mismatch"):
        torch.ops.aten.nll_loss_forward(lp, torch.tensor([0, 1]).to(DEVICE), None, 1, -100)


def test_cross_entropy_2d_large_uses_several_groups(no_fallbacks):
    x = torch.randn(2, 3, 100, 100)
    target = torch.randint(0, 3, (2, 100, 100))
    target[0, :10] = -100
    _check(lambda a, b, c: F.cross_entropy(a, b, weight=c), x, target, torch.rand(3), rtol=1e-4)
    _check(lambda a, b: F.cross_entropy(a, b, reduction="sum"), x, target, rtol=1e-4)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("lengths_on", ["cpu", "ocl", "list"])
def test_ctc_loss_with_host_or_device_lengths(reduction, lengths_on):
    """nn.CTCLoss with the lengths as CPU tensors (the usual way), ocl tensors or lists: torch's
    decomposition for tensor subclasses divided ocl losses by CPU lengths. The loss itself runs
    on the CPU fallback (no OpenCL kernel yet)."""
    import oclcore

    torch.manual_seed(0)
    log_probs = torch.randn(8, 3, 6).log_softmax(2)
    targets = torch.tensor([[1, 2, 2], [3, 1, 0], [5, 4, 3]])
    il, tl = torch.tensor([8, 7, 8]), torch.tensor([3, 2, 3])
    if lengths_on == "list":
        il_o, tl_o = il.tolist(), tl.tolist()
    else:
        il_o, tl_o = (il.to(DEVICE), tl.to(DEVICE)) if lengths_on == "ocl" else (il, tl)
    oclcore.reset_fallbacks()
    x = log_probs.clone().requires_grad_()
    xo = log_probs.to(DEVICE).requires_grad_()
    want = F.ctc_loss(x, targets, il, tl, reduction=reduction, zero_infinity=True)
    got = F.ctc_loss(xo, targets.to(DEVICE), il_o, tl_o, reduction=reduction, zero_infinity=True)
    assert got.device.type == "ocl"
    assert_close(got, want)
    want.sum().backward()
    got.sum().backward()
    assert_close(xo.grad, x.grad)
    assert set(oclcore.fallbacks()) <= {"aten::_ctc_loss", "aten::_ctc_loss_backward"}
