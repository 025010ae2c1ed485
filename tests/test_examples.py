"""examples/train.py trains on ocl, saves and resumes, and its checkpoints move
between ocl and the CPU."""

import importlib.util
import os
import subprocess
import sys

import torch

import oclcore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "train.py")
TINY = ["--device", "ocl", "--model", "resnet18", "--image-size", "32", "--train-samples", "4",
        "--val-samples", "2", "--batch-size", "4", "--quiet"]  # one step per epoch


def load_script():
    spec = importlib.util.spec_from_file_location("examples_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def state_on_cpu(state):
    return {k: v.detach().cpu() for k, v in state.items()}


def assert_states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k].cpu(), b[k].cpu()), k


def test_train_save_resume_matches_uninterrupted(tmp_path):
    """Two epochs straight and one epoch + resume for the second end in the same state, with
    no op on the CPU fallback."""
    train = load_script()
    ckpt = str(tmp_path / "ckpt.pt")
    oclcore.reset_fallbacks()
    straight, _, _, history = train.main(TINY + ["--epochs", "2"])
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)

    _, _, _, h1 = train.main(TINY + ["--epochs", "1", "--checkpoint", ckpt])  # stop after one epoch
    assert [h["epoch"] for h in h1] == [0]
    resumed, optimizer, scheduler, h2 = train.main(TINY + ["--epochs", "2", "--resume", ckpt])
    assert [h["epoch"] for h in h2] == [1]
    assert scheduler.last_epoch == 2
    assert_states_equal(resumed.state_dict(), straight.state_dict())
    moments = [s["momentum_buffer"] for s in optimizer.state.values()]
    assert moments and all(m.device.type == "ocl" for m in moments)
    assert next(resumed.parameters()).device.type == "ocl"
    assert oclcore.fallbacks() == {}, f"ops fell back to the CPU: {oclcore.fallbacks()}"


def test_checkpoint_moves_between_ocl_and_cpu(tmp_path):
    """A checkpoint saved on ocl loads on the CPU (map_location), gives the same outputs there,
    and loads back onto ocl unchanged."""
    import torchvision

    train = load_script()
    ckpt = str(tmp_path / "ckpt.pt")
    model, optimizer, _, _ = train.main(TINY + ["--epochs", "1", "--checkpoint", ckpt])

    on_cpu = torch.load(ckpt, map_location="cpu")
    assert all(t.device.type == "cpu" for t in on_cpu["model"].values())
    moments = [s["momentum_buffer"] for s in on_cpu["optimizer"]["state"].values()]
    assert moments and all(m.device.type == "cpu" for m in moments)
    assert_states_equal(on_cpu["model"], state_on_cpu(model.state_dict()))

    cpu_model = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    cpu_model.load_state_dict(on_cpu["model"])
    cpu_model.eval()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = cpu_model(x)
        actual = model(x.to("ocl")).cpu()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())

    # back onto ocl: the CPU-loaded state into an ocl model and optimizer, as a script resumes
    model2 = torchvision.models.get_model("resnet18", weights=None, num_classes=10).to("ocl")
    model2.load_state_dict(on_cpu["model"])
    assert_states_equal(state_on_cpu(model2.state_dict()), on_cpu["model"])
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(on_cpu["optimizer"])
    assert all(s["momentum_buffer"].device.type == "ocl" for s in opt2.state.values())

    # the ocl checkpoint itself with map_location="ocl" (and with none) stays on ocl
    for location in ("ocl", None):
        on_ocl = torch.load(ckpt, map_location=location)
        assert all(t.device.type == "ocl" for t in on_ocl["model"].values()), location
        assert_states_equal(on_ocl["model"], on_cpu["model"])


def test_cpu_checkpoint_loads_onto_ocl_with_map_location(tmp_path):
    path = str(tmp_path / "cpu.pt")
    torch.save({"w": torch.arange(6.0).reshape(2, 3)}, path)
    loaded = torch.load(path, map_location="ocl")
    assert loaded["w"].device.type == "ocl"
    assert torch.equal(loaded["w"].cpu(), torch.arange(6.0).reshape(2, 3))


def test_script_runs_from_the_command_line(tmp_path):
    """The script as a user runs it, with --device ocl, printing its epoch line."""
    ckpt = str(tmp_path / "cli.pt")
    args = [a for a in TINY if a != "--quiet"]
    proc = subprocess.run([sys.executable, SCRIPT, *args, "--epochs", "1", "--optimizer", "adamw",
                           "--checkpoint", ckpt], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch 1/1" in proc.stdout and "on ocl" in proc.stdout, proc.stdout
    assert "no OpenCL implementation" not in proc.stderr, proc.stderr[-3000:]
    assert os.path.exists(ckpt)


def test_default_device_is_ocl_without_cuda():
    train = load_script()
    expected = "cuda" if torch.cuda.is_available() else "ocl"
    assert train.parse_args([]).device == expected
