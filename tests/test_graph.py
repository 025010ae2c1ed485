"""oclcore.graph: capture and replay of training steps."""

import pytest
import torch

import oclcore  # noqa: F401
from oclcore.graph import CaptureError, Graph, graph

from conftest import assert_close


def _models(seed=0):
    torch.manual_seed(seed)
    cpu = torch.nn.Sequential(torch.nn.Linear(12, 24), torch.nn.ReLU(), torch.nn.Linear(24, 5))
    ocl = torch.nn.Sequential(torch.nn.Linear(12, 24), torch.nn.ReLU(), torch.nn.Linear(24, 5))
    ocl.load_state_dict(cpu.state_dict())
    return cpu, ocl.to("ocl")


def _step(model, opt, x, y, set_to_none=False):
    opt.zero_grad(set_to_none=set_to_none)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


@pytest.mark.parametrize("make_opt", [
    lambda p, on_device: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p, on_device: torch.optim.Adam(p, lr=0.01, capturable=on_device),
    lambda p, on_device: torch.optim.AdamW(p, lr=0.01, **({"fused": True} if on_device else {})),
], ids=["sgd-momentum", "adam-capturable", "adamw-fused"])
@pytest.mark.parametrize("set_to_none", (False, True), ids=["zeroed-grads", "grads-set-to-none"])
def test_replayed_training_matches_eager_cpu(make_opt, set_to_none, no_fallbacks):
    """With grads set to None inside the capture, backward allocates them there and replays
    write the same buffers; with zeroed grads it accumulates into the existing ones."""
    cpu, ocl = _models()
    opt_c, opt_o = make_opt(cpu.parameters(), False), make_opt(ocl.parameters(), True)
    x, y = torch.randn(8, 12), torch.randint(0, 5, (8,))
    sx, sy = x.to("ocl"), y.to("ocl")
    _step(cpu, opt_c, x, y)
    _step(ocl, opt_o, sx, sy)  # warm-up: allocates grads and optimizer state
    g = Graph()
    with graph(g):
        loss = _step(ocl, opt_o, sx, sy, set_to_none)
    _step(cpu, opt_c, x, y)
    assert g.num_commands > 0
    for i in range(3):
        x, y = torch.randn(8, 12), torch.randint(0, 5, (8,))
        sx.copy_(x)
        sy.copy_(y)
        g.replay()
        ref = _step(cpu, opt_c, x, y, set_to_none)
        assert_close(loss, ref, rtol=1e-4, atol=1e-5)
    for p, q in zip(ocl.parameters(), cpu.parameters()):
        assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_host_sync_inside_capture_raises():
    x = torch.randn(4, device="ocl")
    for bad in (lambda: x.sum().item(), lambda: x.cpu(), lambda: torch.ocl.synchronize(),
                lambda: torch.ones(3).to("ocl")):
        with pytest.raises(CaptureError, match="captured"):
            with graph(Graph()):
                bad()
    (x + 1).cpu()  # the device still works afterwards


def test_random_ops_draw_new_numbers_on_replay():
    out = torch.empty(1000, device="ocl")
    g = Graph()
    with graph(g):
        out.uniform_()
    first = out.cpu()
    g.replay()
    second = out.cpu()
    assert not torch.equal(first, second)
    assert 0 <= second.min() and second.max() < 1


def test_replay_needs_capture():
    with pytest.raises(RuntimeError, match="finished capture"):
        Graph().replay()


def test_share_memory_reuses_dead_temporaries_and_replays_the_same():
    x = torch.randn(64, 64, device="ocl")
    g = Graph()
    with graph(g):
        a = torch.tanh(x)          # temporaries whose lifetimes end early
        b = a * 2 + 1
        c = torch.sigmoid(b) @ a
        out = c.sum(0)
    expected = out.cpu()
    released = g.share_memory(keep=[x._buf, out._buf])
    assert released > 0
    x.copy_(torch.randn(64, 64))   # new input data, same tensor
    g.replay()
    xc = x.cpu()
    a = torch.tanh(xc)
    assert_close(out, (torch.sigmoid(a * 2 + 1) @ a).sum(0), 1e-5, 1e-5)
    assert not torch.equal(out.cpu(), expected)


def test_captures_and_replays_are_profiled(no_fallbacks):
    """The capturing run launches its kernels with events, and so does a replay while the
    profiler listens (bench/nets.py --profile of graph and compiled steps)."""
    x = torch.randn(64, device="ocl")
    g = Graph()
    with oclcore.profile() as prof:
        with graph(g):
            y = torch.relu(x) * 2
        captured = prof.times()
    assert [(op, name) for op, name, *_ in captured] == [("aten::relu", "pw_relu"), ("aten::mul.Tensor", "pw_mul")]
    assert all(end >= start > 0 for *_, start, end in captured)
    x.copy_(torch.randn(64))
    with oclcore.profile() as prof:
        g.replay()
    replayed = prof.times()
    assert [(op, name) for op, name, *_ in replayed] == [("<direct>", "pw_relu"), ("<direct>", "pw_mul")]
    assert all(end >= start > 0 for *_, start, end in replayed)
    assert_close(y, torch.relu(x.cpu()) * 2)
