"""The dispatch layer: CPU fallback, strict mode, and errors raised inside backward."""

import os
import subprocess
import sys
import warnings

import pytest
import torch

import oclcore
from oclcore.torch.dispatch import OPS

from conftest import DEVICE, assert_close

# An op with no OpenCL implementation and no decomposition (checked below).
_UNIMPLEMENTED = torch.ops.aten.linalg_qr.default


def test_cpu_fallback_warns_once_counts_and_is_correct():
    assert _UNIMPLEMENTED not in OPS
    a = torch.randn(5, 3)
    oclcore.reset_fallbacks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q, r = torch.linalg.qr(a.to("ocl"))
        torch.linalg.qr(a.to("ocl"))
    assert q.device.type == "ocl" and r.device.type == "ocl"
    q_ref, r_ref = torch.linalg.qr(a)
    assert_close(q, q_ref, atol=1e-5)
    assert_close(r, r_ref, atol=1e-5)
    assert oclcore.fallbacks() == {"aten::linalg_qr": 2}
    msgs = [str(w.message) for w in caught if "linalg_qr" in str(w.message)]
    assert len(msgs) <= 1  # warned at most once per process (maybe earlier)


def test_linalg_errors_come_from_the_device_op():
    """A singular matrix: torch's error text, raised by oclcore's _linalg_check_errors from the
    info the device's factorization wrote, with no CPU fallback."""
    oclcore.reset_fallbacks()
    singular = torch.ones(2, 3, 3)
    with pytest.raises(torch.linalg.LinAlgError) as want:
        torch.linalg.inv(singular)
    with pytest.raises(torch.linalg.LinAlgError) as got:
        torch.linalg.inv(singular.to(DEVICE))
    assert str(got.value) == str(want.value) and "Batch element 0" in str(got.value)
    ok = torch.linalg.inv(torch.eye(3).expand(2, 3, 3).to(DEVICE))
    assert_close(ok, torch.eye(3).expand(2, 3, 3))
    assert oclcore.fallbacks() == {}


def test_strict_mode_raises():
    code = ("import torch, oclcore\n"
            "try:\n    torch.linalg.qr(torch.randn(3, 3, device='ocl'))\n"
            "except RuntimeError as e:\n    print('raised:', e)\n")
    env = dict(os.environ, OCLCORE_STRICT="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "raised:" in out.stdout and "OCLCORE_STRICT" in out.stdout, out.stdout + out.stderr


def test_inplace_and_out_fallback_write_back():
    from oclcore.torch.dispatch import cpu_fallback

    z = torch.zeros(3, device="ocl")
    out = cpu_fallback(torch.ops.aten.add_.Tensor, (z, torch.ones(3, device="ocl")), {})
    assert out is z
    assert z.cpu().tolist() == [1.0, 1.0, 1.0]
    o = torch.empty(3, device="ocl")
    res = cpu_fallback(torch.ops.aten.mul.out, (z, torch.full((3,), 2.0, device="ocl")), {"out": o})
    assert res is o and o.cpu().tolist() == [2.0, 2.0, 2.0]
    # a list argument written in place (Tensor(a!)[]) is written back too
    xs = [torch.zeros(2, device="ocl"), torch.ones(3, device="ocl")]
    cpu_fallback(torch.ops.aten._foreach_add_.Scalar, (xs, 2.0), {})
    assert [x.cpu().tolist() for x in xs] == [[2.0, 2.0], [3.0, 3.0, 3.0]]


def test_error_inside_backward_is_catchable(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("deliberate failure")

    monkeypatch.setitem(OPS, torch.ops.aten.threshold_backward.default, broken)
    x = torch.randn(6, device="ocl", requires_grad=True)
    with pytest.raises(RuntimeError, match="deliberate failure"):
        x.relu().sum().backward()
    monkeypatch.undo()
    x.grad = None
    x.relu().sum().backward()  # the process and the device still work
    assert_close(x.grad, (x.detach().cpu() > 0).float())


def test_mixing_devices_is_an_error():
    a = torch.randn(3, device="ocl")
    with pytest.raises(RuntimeError, match="same device"):
        a + torch.randn(3)
    assert_close(a + torch.tensor(2.0), a.cpu() + 2.0)  # 0-dim CPU tensors are scalars


def test_data_assignment_moves_the_buffer_with_the_geometry():
    """``t.data = u`` swaps t's geometry and dtype in torch; the buffer follows, so t reads u's values
    (a stale buffer read the old memory: out of range or wrong)."""
    a = torch.zeros(3).to(DEVICE)
    b = torch.arange(6.0).to(DEVICE)
    a.data = b
    assert a.shape == (6,) and torch.equal(a.cpu(), torch.arange(6.0))
    a.data.add_(1)  # .data still aliases the tensor's memory
    assert torch.equal(a.cpu(), torch.arange(6.0) + 1)
    p = torch.nn.Parameter(torch.zeros(2, 2).to(DEVICE))
    p.data = torch.full((3,), 2.0).to(DEVICE)
    assert isinstance(p, torch.Tensor) and p.requires_grad and torch.equal(p.detach().cpu(), torch.full((3,), 2.0))
    with pytest.raises(RuntimeError, match="incompatible tensor type"):
        a.data = torch.zeros(2)


@pytest.mark.parametrize("convert", ["double", "half", "float"])
def test_module_dtype_conversion_on_the_device(convert):
    """nn.Module.double()/half()/float() on an ocl model assign ``param.data`` (same tensor type)."""
    torch.manual_seed(0)
    ref = torch.nn.Linear(5, 3)
    model = torch.nn.Linear(5, 3).to(DEVICE)
    model.load_state_dict(ref.state_dict())
    getattr(model, convert)()
    getattr(ref, convert)()
    for name, p in model.named_parameters():
        assert p.dtype == getattr(ref, name).dtype
        assert torch.equal(p.detach().cpu(), getattr(ref, name).detach())
    if convert != "half":
        x = torch.randn(4, 5, dtype=ref.weight.dtype)
        assert_close(model(x.to(DEVICE)), ref(x), 1e-6, 1e-6)


def test_deepcopy_of_a_model_on_the_device():
    """copy.deepcopy (EMA models, best-model snapshots) copies parameters, grads and buffers into
    new device memory; the Buffer object itself is not copied (it failed to pickle)."""
    import copy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).to(DEVICE)
    model(torch.randn(4, 3).to(DEVICE)).sum().backward()
    twin = copy.deepcopy(model)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert isinstance(q, torch.nn.Parameter) and q.requires_grad, name
        assert torch.equal(p.detach().cpu(), q.detach().cpu()) and torch.equal(p.grad.cpu(), q.grad.cpu())
        assert q._buf is not p._buf
    assert torch.equal(twin[1].running_var.cpu(), model[1].running_var.cpu())
    before = model[0].weight.detach().cpu()
    with torch.no_grad():
        twin[0].weight.add_(1)
    assert torch.equal(model[0].weight.detach().cpu(), before)  # independent memory
    view = torch.arange(12.0).view(4, 3).to(DEVICE)[1:, 1:]
    assert torch.equal(copy.deepcopy(view).cpu(), torch.arange(12.0).view(4, 3)[1:, 1:])
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(model[0].weight * 2)
