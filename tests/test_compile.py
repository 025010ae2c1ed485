"""torch.compile(backend="oclcore"): compiled steps agree with eager ones."""

import copy
import gc
import warnings

import pytest
import torch

import oclcore  # noqa: F401
import oclcore.compile as oc
from oclcore.compile import fusion

from conftest import assert_close

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    oc.reset()
    yield
    torch._dynamo.reset()


class Block(torch.nn.Module):
    """conv-bn-relu twice with a residual add and a tail of elementwise ops (fusible). The
    convolutions have no bias, as before batch norm in real networks: such a bias's gradient is
    rounding noise, whose sign Adam's normalised steps would turn into differences of lr."""

    def __init__(self, c):
        super().__init__()
        self.c1, self.b1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False), torch.nn.BatchNorm2d(c)
        self.c2, self.b2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False), torch.nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.b1(self.c1(x)))
        return torch.nn.functional.silu(self.b2(self.c2(y)) + x) * 0.5 - 0.25


def _cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), Block(8), torch.nn.MaxPool2d(2), Block(8),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))


def _twins(make, seed=0):
    torch.manual_seed(seed)
    eager = make().to("ocl")
    compiled = make().to("ocl")
    compiled.load_state_dict(eager.state_dict())
    return eager, compiled


def _train(model, opt, xs, ys):
    losses = []
    for x, y in zip(xs, ys):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return losses


def _assert_same_state(a, b, rtol=1e-4, atol=1e-5):
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        if p.dtype.is_floating_point:
            assert_close(q, p, rtol, atol)
        else:
            assert torch.equal(p.cpu(), q.cpu()), name


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
    lambda p: torch.optim.AdamW(p, lr=0.01),
], ids=["sgd", "adamw"])
def test_compiled_cnn_training_matches_eager(make_opt, no_fallbacks):
    eager, compiled = _twins(_cnn)
    opt_e, opt_c = make_opt(eager.parameters()), make_opt(compiled.parameters())
    step = torch.compile(compiled, backend="oclcore")
    xs = [torch.randn(4, 3, 12, 12, device="ocl") for _ in range(4)]
    ys = [torch.randint(0, 10, (4,), device="ocl") for _ in range(4)]
    le = _train(eager, opt_e, xs, ys)
    lc = _train(step, opt_c, xs, ys)
    for a, b in zip(lc, le):
        assert_close(a, b, 1e-4, 1e-5)
    _assert_same_state(eager, compiled)  # parameters, and batch-norm running statistics
    assert eager[1].b1.num_batches_tracked.item() == 4
    stats = oc.stats()
    assert stats["captures"] == 2 and stats["replays"] == 6 and stats["eager_calls"] == 0, stats
    assert stats["fused_groups"] >= 4, stats  # add + silu + mul + sub, relu chains, their backward
    # batch norm updates its running statistics in place, as in eager mode: no copies
    forward = oc.runners()[0].gm.graph
    assert not [n for n in forward.nodes if n.target in (torch.ops.aten.copy_.default,
                                                          torch.ops.aten._native_batch_norm_legit_functional.default)]


def test_compiled_matches_cpu_reference():
    torch.manual_seed(1)
    cpu = _cnn().double()
    model = _cnn().to("ocl")
    model.load_state_dict({k: v.float() for k, v in cpu.state_dict().items()})
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    y_cpu = cpu(x)
    y_cpu.sum().backward()
    step = torch.compile(model, backend="oclcore")
    for _ in range(2):  # capture, then replay
        model.zero_grad()
        y = step(x.float().to("ocl"))
        y.sum().backward()
    assert_close(y, y_cpu.float(), 1e-4, 1e-4)
    assert_close(model[0].weight.grad, cpu[0].weight.grad.float(), 1e-3, 1e-4)


def test_transformer_block_forward_and_backward(no_fallbacks):
    make = lambda: torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)  # noqa: E731
    eager, compiled = _twins(make)
    step = torch.compile(compiled, backend="oclcore")
    for _ in range(3):
        x = torch.randn(3, 5, 16, device="ocl")
        ye, yc = eager(x), step(x)
        assert_close(yc, ye, 1e-4, 1e-5)
        g = torch.randn_like(ye)
        ye.backward(g)
        yc.backward(g)
    for p, q in zip(eager.parameters(), compiled.parameters()):
        assert_close(q.grad, p.grad, 1e-4, 1e-5)
    assert oc.stats()["replays"] >= 4


def test_new_batch_size_recompiles_or_recaptures():
    eager, compiled = _twins(_cnn)
    eager.eval(), compiled.eval()
    step = torch.compile(compiled, backend="oclcore")
    with torch.no_grad():
        for n in (4, 3, 4, 3, 5):
            x = torch.randn(n, 3, 8, 8, device="ocl")
            assert_close(step(x), eager(x), 1e-4, 1e-5)
    assert oc.stats()["replays"] >= 1


def test_outputs_survive_later_replays_and_inputs_are_not_written():
    f = torch.compile(lambda x, w: torch.tanh(x @ w) * 2 + 1, backend="oclcore")
    w = torch.randn(6, 6, device="ocl")
    xs = [torch.randn(5, 6, device="ocl") for _ in range(4)]
    kept = [x.cpu() for x in xs]
    outs = [f(x, w) for x in xs]
    for x, x_cpu, y in zip(xs, kept, outs):
        assert torch.equal(x.cpu(), x_cpu)
        assert_close(y, torch.tanh(x_cpu @ w.cpu()) * 2 + 1, 1e-5, 1e-5)
    assert oc.stats()["replays"] == 3


def test_a_capture_ends_with_a_full_garbage_collection():
    """The objects compiling and capturing leave behind are collected with the capture, not by a
    full collection that Python would otherwise start in the middle of a later step."""
    f = torch.compile(lambda x: torch.relu(x) * 3, backend="oclcore")
    x = torch.randn(7, device="ocl")
    full = []
    record = lambda phase, info: full.append(phase) if info["generation"] == 2 else None
    gc.callbacks.append(record)
    try:
        f(x)
        captured = full.count("start")
        for _ in range(3):
            f(x)
    finally:
        gc.callbacks.remove(record)
    assert oc.stats()["captures"] == 1 and oc.stats()["replays"] == 3
    assert captured >= 1


def test_compiled_replay_inside_an_oclcore_graph_capture():
    """A compiled function already captured at this signature, called while oclcore.graph
    captures, puts its replayed commands into the outer graph."""
    f = torch.compile(lambda x, w: torch.tanh(x @ w) * 2 + 1, backend="oclcore")
    w = torch.randn(6, 6, device="ocl")
    x = torch.randn(5, 6, device="ocl")
    f(x, w)
    f(x, w)
    g = oclcore.graph.Graph()
    with oclcore.graph.graph(g):
        y = f(x, w)
    assert g.num_commands > 0
    x.copy_(torch.randn(5, 6))
    g.replay()
    assert_close(y, torch.tanh(x.cpu() @ w.cpu()) * 2 + 1, 1e-5, 1e-5)


def test_graph_break_and_uncapturable_graph_still_correct():
    def f(x):
        y = torch.sigmoid(x) * 3
        torch._dynamo.graph_break()
        z = torch.special.bessel_j0(y)  # no ocl kernel: the CPU fallback reads the device, so no capture
        return z + y

    g = torch.compile(f, backend="oclcore")
    x = torch.randn(7, 3, device="ocl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            out = g(x)
    y = torch.sigmoid(x.cpu()) * 3
    assert_close(out, torch.special.bessel_j0(y) + y, 1e-5, 1e-5)
    stats = oc.stats()
    assert stats["graphs"] == 2 and stats["eager_calls"] >= 2 and stats["replays"] >= 2, stats


def test_eager_ops_after_a_graph_break_are_not_compiled_by_dynamo():
    """An LSTM is a graph break for dynamo: its ops run eagerly inside the compiled call, and
    dynamo must not compile oclcore's dispatcher for them (it did, once per op signature)."""
    import torch._dynamo.utils as dynamo_utils

    torch._dynamo.reset()
    oc.reset()
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 6, batch_first=True).to("ocl")
    x = torch.randn(2, 5, 4, device="ocl")
    want = lstm(x)[0]
    frames_before = dynamo_utils.counters["stats"]["unique_graphs"]
    got = torch.compile(lstm, backend="oclcore")(x)[0]
    assert_close(got, want, 1e-6, 1e-6)
    assert dynamo_utils.counters["stats"]["unique_graphs"] == frames_before
    assert oc.stats()["graphs"] == 0


def _fused_gm(fn, *args):
    from torch.fx.experimental.proxy_tensor import make_fx

    gm = make_fx(fn, tracing_mode="fake")(*args)
    return gm, fusion.fuse(gm)


def test_fusion_of_broadcast_and_strided_chain_matches_eager():
    def fn(x, b, s):
        y = torch.relu(x * s + b)
        return torch.sigmoid(y) - y * 0.5, torch.clamp(y, max=0.75)

    x = torch.randn(7, 5, 12, device="ocl")[:, :, 1::2]  # strided input
    b = torch.randn(5, 1, device="ocl")  # broadcast
    s = torch.randn(7, 1, 1, device="ocl")
    gm, groups = _fused_gm(fn, x, b, s)
    assert groups == 1
    assert sum(1 for n in gm.graph.nodes if isinstance(n.target, fusion.FusedKernel)) == 1
    got, want = gm(x, b, s), fn(x, b, s)
    for a, e in zip(got, want):
        assert a.is_contiguous()
        assert_close(a, e, 1e-6, 1e-6)


def test_fusion_leaves_other_dtypes_shapes_and_reductions_alone():
    def fn(x, i):
        y = torch.exp(x) + 1
        m = y.sum(0)  # a reduction ends the chain
        return (m * 2).relu(), i + 1

    gm, groups = _fused_gm(fn, torch.randn(4, 3, device="ocl"), torch.arange(6, device="ocl"))
    # exp+add fuse; mul+relu (other shape) fuse; the int64 add does not
    assert groups == 2
    got = gm(torch.ones(4, 3, device="ocl"), torch.arange(6, device="ocl"))
    assert_close(got[0], torch.full((3,), 8 * (torch.e + 1)).relu(), 1e-6, 1e-6)
    assert torch.equal(got[1].cpu(), torch.arange(1, 7))


def test_fused_literals_keep_special_values():
    def fn(x):
        return torch.clamp(x * 2, min=float("-inf"), max=1e30) + float("inf") * 0 + 1

    x = torch.randn(9, device="ocl")
    gm, groups = _fused_gm(fn, x)
    assert groups == 1
    assert_close(gm(x), fn(x.cpu()), 1e-6, 1e-6)


def test_backend_is_registered_by_name():
    assert "oclcore" in torch._dynamo.list_backends(exclude_tags=())
    assert torch._dynamo.lookup_backend("oclcore") is oc.backend


def _eval_twins(cpu):
    for m in cpu.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    cpu.eval()
    return cpu, torch.compile(copy.deepcopy(cpu).to("ocl"), backend="oclcore")


@pytest.mark.parametrize("act,aten_act", [
    (torch.nn.ReLU6, None), (torch.nn.SiLU, None), (torch.nn.Identity, None), (torch.nn.Sigmoid, None)],
    ids=["relu6", "silu", "none", "sigmoid"])
def test_inference_batch_norm_folds_into_the_convolution(act, aten_act, no_fallbacks):
    """eval conv -> bn -> act becomes one convolution with the folded weight and bias and the
    activation in its epilogue; the folded parameters are recomputed per call."""
    torch.manual_seed(3)
    cpu, step = _eval_twins(torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3), torch.nn.BatchNorm2d(6), act(),
        torch.nn.Conv2d(6, 6, 1, bias=False), torch.nn.BatchNorm2d(6, affine=False),
        torch.nn.Conv2d(6, 6, 3, groups=6, padding=1, bias=False), torch.nn.BatchNorm2d(6), act()))
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        for _ in range(2):
            y = step(x.to("ocl"))
        assert_close(y, cpu(x), 1e-5, 1e-5)
        step._orig_mod[1].running_var.mul_(2.0)  # a parameter changed in place: the next call sees it
        cpu[1].running_var.mul_(2.0)
        assert_close(step(x.to("ocl")), cpu(x), 1e-5, 1e-5)
    forward = oc.runners()[0].gm.graph
    targets = [n.target for n in forward.nodes]
    assert not [t for t in targets if "aten" in str(t) and "batch_norm" in str(t)]
    assert targets.count(torch.ops.oclcore.fold_batch_norm.default) == 3
    convs = [n for n in forward.nodes if n.target in (torch.ops.aten.convolution.default,
                                                       torch.ops.oclcore.conv2d.default)]
    assert len(convs) == 3 and all(n.args[2] is not None for n in convs)  # every one got a bias
    if act is not torch.nn.Identity:
        assert targets.count(torch.ops.oclcore.conv2d.default) == 2


def test_inference_batch_norm_fuses_with_its_activation(no_fallbacks):
    """A batch norm that cannot fold (its input is read elsewhere) becomes elementwise ops fused
    with the activation after it."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 6, 3), torch.nn.BatchNorm2d(6)

        def forward(self, x):
            y = self.conv(x)
            return torch.nn.functional.relu6(self.bn(y)) + y

    torch.manual_seed(3)
    cpu, step = _eval_twins(Net())
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        for _ in range(2):
            y = step(x.to("ocl"))
        assert_close(y, cpu(x), 1e-5, 1e-5)
    forward = oc.runners()[0].gm.graph
    assert not [n for n in forward.nodes if "batch_norm" in str(n.target)]
    kernels = [n for n in forward.nodes if isinstance(n.target, fusion.FusedKernel)]
    assert len(kernels) == 1  # bn + relu6 + add


def test_training_batch_norm_and_its_activation_run_as_one_kernel_each_way(no_fallbacks):
    """conv -> bn -> ReLU / ReLU6 / SiLU in training: forward one oclcore::batch_norm_act per pair
    (writing y only where the backward reads it), backward one batch_norm_act_backward for ReLU and
    ReLU6 (SiLU's backward reaches the graph decomposed); losses, gradients, running statistics and
    parameters after three SGD steps match eager."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            convs = [torch.nn.Conv2d(3, 6, 3, padding=1, bias=False)] + [
                torch.nn.Conv2d(6, 6, 3, padding=1, bias=False) for _ in range(2)]
            self.convs, self.bns = torch.nn.ModuleList(convs), torch.nn.ModuleList(
                [torch.nn.BatchNorm2d(6) for _ in range(3)])
            # (in place, as torchvision's networks apply it: functionalization leaves a clone of y)
            self.acts = [torch.relu, torch.nn.ReLU6(inplace=True), torch.nn.functional.silu]
            self.head = torch.nn.Linear(6, 5)

        def forward(self, x):
            for conv, bn, act in zip(self.convs, self.bns, self.acts):
                x = act(bn(conv(x)))
            return self.head(x.mean((2, 3)))

    eager, compiled = _twins(Net)
    step = torch.compile(compiled, backend="oclcore")
    xs = [torch.randn(4, 3, 7, 7, device="ocl") * 2 for _ in range(3)]
    ys = [torch.randint(0, 5, (4,), device="ocl") for _ in range(3)]
    lr = dict(lr=0.1, momentum=0.9)
    want = _train(eager, torch.optim.SGD(eager.parameters(), **lr), xs, ys)
    got = _train(step, torch.optim.SGD(compiled.parameters(), **lr), xs, ys)
    for g, w in zip(got, want):
        assert_close(g, w, 1e-4, 1e-5)
    _assert_same_state(compiled, eager)
    forward, backward = (r.gm.graph for r in oc.runners()[:2])
    ops = [n.target for n in forward.nodes]
    assert ops.count(torch.ops.oclcore.batch_norm_act.default) == 3 and torch.ops.aten.clone.default not in ops
    assert not [t for t in ops if "aten" in str(t) and "batch_norm" in str(t)]
    keep = [n.args[9] for n in forward.nodes if n.target is torch.ops.oclcore.batch_norm_act.default]
    assert keep == [False, True, True]   # the backward of ReLU reads its output, the others their input
    ops = [n.target for n in backward.nodes]
    assert ops.count(torch.ops.oclcore.batch_norm_act_backward.default) == 2
    assert torch.ops.aten.threshold_backward.default not in ops and torch.ops.aten.hardtanh_backward.default not in ops


@pytest.mark.parametrize("act", ["relu", "relu6", "silu"])
@pytest.mark.parametrize("keep_y", [False, True], ids=["act-only", "keep-y"])
def test_batch_norm_act_ops_match_their_cpu_reference(act, keep_y, no_fallbacks):
    """oclcore::batch_norm_act and its backward against their aten references on the CPU: a strided
    channels-last input, no affine parameters on one side, NaN and the activations' edges."""
    torch.manual_seed(5)
    x = (torch.randn(3, 5, 6, 4) * 4).to(memory_format=torch.channels_last)
    x[0, 1, 2, 3] = float("nan")
    w, b, rm, rv = torch.randn(5), torch.randn(5), torch.randn(5), torch.rand(5) + 0.5
    dev = lambda ts: [None if t is None else t.to("ocl") for t in ts]  # noqa: E731
    for weight, bias in ((w, b), (None, None)):
        rm_c, rv_c = rm.clone(), rv.clone()
        want = torch.ops.oclcore.batch_norm_act(x, weight, bias, rm_c, rv_c, True, 0.1, 1e-5, act, keep_y)
        on = dev([x, weight, bias, rm, rv])
        got = torch.ops.oclcore.batch_norm_act(*on, True, 0.1, 1e-5, act, keep_y)
        for g, wv in zip(got, want):
            assert g.shape == wv.shape
            assert_close(g, wv, 1e-5, 1e-5)
        assert_close(on[3], rm_c, 1e-6, 1e-6)
        assert_close(on[4], rv_c, 1e-6, 1e-6)
        # (backward without NaN: torch's CPU and CUDA kernels of hardtanh_backward disagree on it)
        xb = torch.nan_to_num(x)
        y, mean, invstd = torch.ops.aten.native_batch_norm(xb, weight, bias, None, None, True, 0.1, 1e-5)
        src = torch.relu(y) if act == "relu" else y
        src[1, 2, 0, 0] = 6.0 if act == "relu6" else 0.0   # the edges pass no gradient
        g = torch.randn_like(x)
        args = (act, xb, weight, None, None, mean, invstd, True, 1e-5, [True, weight is not None, bias is not None])
        want = torch.ops.oclcore.batch_norm_act_backward(g, src, *args)
        got = torch.ops.oclcore.batch_norm_act_backward(*dev([g, src]), act, *dev(args[1:7]), *args[7:])
        for gv, wv in zip(got, want):
            if wv is not None and wv.numel():
                assert_close(gv, wv, 1e-4, 1e-5)
        # src in another layout than grad_out: the activation's gradient runs first, same result
        got = torch.ops.oclcore.batch_norm_act_backward(g.contiguous().to("ocl"), src.to("ocl"), act,
                                                        *dev(args[1:7]), *args[7:])
        assert_close(got[0], want[0], 1e-4, 1e-5)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        torch.ops.oclcore.batch_norm_act(x.to("ocl"), None, None, None, None, True, 0.1, 1e-5, "gelu", False)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_relu_runs_in_the_gemm_and_convolution_epilogue(train, no_fallbacks):
    """In training the backward reads the pre-activation of every activation but ReLU, so only
    ReLU moves into epilogues there; in eval GELU and the others do too (see the next test)."""
    make = lambda: torch.nn.Sequential(  # noqa: E731
        torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(5 * 6 * 6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4, bias=False), torch.nn.ReLU())
    eager, compiled = _twins(make)
    step = torch.compile(compiled, backend="oclcore")
    x = torch.randn(3, 3, 6, 6, device="ocl")
    with torch.set_grad_enabled(train):
        for _ in range(2):
            ye, yc = eager(x), step(x)
            assert_close(yc, ye, 1e-5, 1e-5)
            if train:
                ye.sum().backward()
                yc.sum().backward()
    if train:
        for p, q in zip(eager.parameters(), compiled.parameters()):
            assert_close(q.grad, p.grad, 1e-4, 1e-5)
    forward = oc.runners()[0].gm.graph
    targets = [n.target for n in forward.nodes]
    assert torch.ops.aten.relu.default not in targets
    assert targets.count(torch.ops.oclcore.gemm.default) == 2
    assert targets.count(torch.ops.oclcore.conv2d.default) == 1


NETWORKS = ["alexnet", "resnet18", "resnet50", "convnext_small", "vgg16", "densenet161", "mobilenet_v2",
            "mobilenet_v3_small", "mobilenet_v3_large", "resnext50_32x4d", "wide_resnet50_2", "mnasnet1_0",
            "efficientnet_b0", "regnet_y_400mf", "inception_v3", "efficientnet_b4", "vit_b_16", "googlenet",
            "squeezenet1_0", "shufflenet_v2_x1_0"]


def _network_twins(name):
    import torchvision

    kwargs = {"aux_logits": False, "init_weights": False} if name in ("inception_v3", "googlenet") else {}

    def make():
        model = getattr(torchvision.models, name)(num_classes=10, **kwargs)
        for m in model.modules():  # dropout and stochastic depth off: both runs see the same function
            if isinstance(getattr(m, "p", None), float):
                m.p = 0.0
        return model

    size = {"inception_v3": 96, "vit_b_16": 224}.get(name, 64)
    return (*_twins(make), torch.randn(2, 3, size, size, device="ocl"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_compiled_network_inference_matches_eager(name, no_fallbacks):
    eager, compiled, x = _network_twins(name)
    eager.eval(), compiled.eval()
    step = torch.compile(compiled, backend="oclcore")
    with torch.no_grad():
        for _ in range(2):  # capture, then replay
            ye, yc = eager(x), step(x)
    assert_close(yc, ye, 1e-4, 1e-5)
    stats = oc.stats()
    assert stats["captures"] == 1 and stats["replays"] == 1 and stats["eager_calls"] == 0, stats


@pytest.mark.slow
@pytest.mark.parametrize("name", NETWORKS)
def test_compiled_network_training_step_matches_eager(name, no_fallbacks):
    eager, compiled, x = _network_twins(name)
    step = torch.compile(compiled, backend="oclcore")
    for _ in range(2):  # capture, then replay
        eager.zero_grad()
        compiled.zero_grad()
        ye, yc = eager(x), step(x)
        ye.sum().backward()
        yc.sum().backward()
    assert_close(yc, ye, 1e-4, 1e-5)
    for (n, p), q in zip(eager.named_parameters(), compiled.parameters()):
        assert_close(q.grad, p.grad, 1e-4, 1e-5)
    stats = oc.stats()
    assert stats["captures"] == 2 and stats["replays"] == 2 and stats["eager_calls"] == 0, stats


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.Adam(p, lr=0.01, fused=True),
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, fused=True),
], ids=["adam-fused", "sgd-fused"])
def test_compiled_step_function_with_a_fused_optimizer(make_opt, no_fallbacks):
    make = lambda: torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))  # noqa: E731
    eager, compiled = _twins(make)
    opt_e, opt_c = make_opt(eager.parameters()), make_opt(compiled.parameters())
    x, y = torch.randn(5, 8, device="ocl"), torch.randint(0, 4, (5,), device="ocl")

    def step(model, opt):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled_step = torch.compile(step, backend="oclcore")
    for _ in range(4):
        assert_close(compiled_step(compiled, opt_c), step(eager, opt_e), 1e-5, 1e-6)
    _assert_same_state(eager, compiled, 1e-5, 1e-6)
    assert oc.stats()["replays"] >= 3


@pytest.mark.parametrize("act", [torch.nn.GELU(), torch.nn.GELU("tanh"), torch.nn.SiLU(), torch.nn.Sigmoid(),
                                 torch.nn.Tanh(), torch.nn.ReLU6()],
                         ids=["gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "relu6"])
def test_inference_activations_run_in_the_gemm_epilogue(act, no_fallbacks):
    """A transformer MLP on (batch, tokens, features): linear, activation, linear."""
    make = lambda: torch.nn.Sequential(torch.nn.Linear(12, 24), act, torch.nn.Linear(24, 12))  # noqa: E731
    eager, compiled = _twins(make)
    step = torch.compile(compiled, backend="oclcore")
    x = torch.randn(2, 5, 12, device="ocl")
    with torch.no_grad():
        for _ in range(2):
            assert_close(step(x), eager(x), 1e-5, 1e-6)
    targets = [n.target for n in oc.runners()[0].gm.graph.nodes]
    assert targets.count(torch.ops.oclcore.gemm.default) == 1


@pytest.mark.parametrize("act", ["relu6", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh"])
def test_gemm_custom_op_activations_forward_and_backward(act, no_fallbacks):
    a, b, bias = torch.randn(5, 7, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    a[0, 0] = 40.0  # (pushes some outputs past ReLU6's top)
    cpu = [t.clone().requires_grad_() for t in (a, b, bias)]
    ocl = [t.to("ocl").requires_grad_() for t in (a, b, bias)]
    want = torch.ops.oclcore.gemm(*cpu, 0.5, act)
    got = torch.ops.oclcore.gemm(*ocl, 0.5, act)
    assert_close(got, want, 1e-9, 1e-9)
    g = torch.randn_like(want)
    want.backward(g)
    got.backward(g.to("ocl"))
    for x, y in zip(ocl, cpu):
        assert_close(x.grad, y.grad, 1e-9, 1e-9)
