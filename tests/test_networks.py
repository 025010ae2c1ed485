"""Whole torchvision networks (random weights): one training step on ocl agrees
with the same step on the CPU, with no op falling back to the CPU.

The step is forward, cross entropy (summed over auxiliary heads), backward and
an SGD step (momentum, weight decay). Logits, every parameter gradient, the
updated parameters and the batch-norm running statistics are compared with a
float64 CPU run of the same step: at these small inputs batch norm often
normalises over a handful of values, so gradients are ill-conditioned and a
float32 CPU run is no exact reference either. For the same reason a value can
lie within rounding noise of a ReLU's 0 or of its max-pool window's maximum,
fall on one side on ocl and on the other in float64, and so send a gradient
elsewhere: both CPU runs therefore take ocl's decisions wherever a derivative
jumps (Decisions), and the step fails if more than a few of those decisions,
or any far from float64's own, differ. A tensor passes when the ocl
error is within a small factor of the float32 CPU error, or within a few
thousand float32 roundings of the tensor's scale (the larger of its own
magnitude and a small share of its kind's largest magnitude, so gradients that
are zero in exact arithmetic compare as rounding noise).

Dropout and stochastic depth cannot agree across devices (different random
streams), so they are switched off for the compared step; a second step on ocl
with them on (and an Adam step, as in bench/nets.py) proves those ops run on
the device too.

    pytest tests/test_networks.py              # fast subset
    pytest tests/test_networks.py -m slow      # the issue's 20 networks
"""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

import oclcore
import torchvision
from torchvision.models.vision_transformer import VisionTransformer
from torchvision.ops import StochasticDepth

DEVICE = "ocl"
BATCH = 2
CLASSES = 10
EPS32 = torch.finfo(torch.float32).eps
ERROR_FACTOR = 16.0  # ocl error may exceed the float32 CPU error by this factor (its convolutions round ~3-4x more)
ROUNDINGS = 2000  # ...or this many float32 roundings of the tensor's scale
SCALE_SHARE = 1e-3  # a tensor's scale is at least this share of the largest tensor of its kind

# name -> (input side, constructor keyword arguments). Batch norm over batch 2
# on 1x1 maps is too ill-conditioned for any float32 comparison (the float32 CPU
# run itself is off by percents), so inputs leave the last maps at least 2x2:
# 64 for the stride-32 networks, 107 for inception_v3 (whose auxiliary head
# needs 299, so it is off).
NETWORKS = {
    "alexnet": (64, {}),
    "resnet18": (64, {}),
    "resnet50": (64, {}),
    "convnext_small": (64, {}),
    "vgg16": (64, {}),
    "densenet161": (64, {}),
    "mobilenet_v2": (64, {}),
    "mobilenet_v3_small": (64, {}),
    "mobilenet_v3_large": (64, {}),
    "resnext50_32x4d": (64, {}),
    "wide_resnet50_2": (64, {}),
    "mnasnet1_0": (64, {}),
    "efficientnet_b0": (64, {}),
    "regnet_y_400mf": (64, {}),
    "inception_v3": (107, {"init_weights": True, "aux_logits": False}),
    "efficientnet_b4": (64, {}),
    "vit_b_16": (32, {"image_size": 32}),
    "googlenet": (64, {"init_weights": True}),
    "squeezenet1_0": (64, {}),
    "shufflenet_v2_x1_0": (64, {}),
}


def build(name):
    """A torchvision network with random weights (seeded) and CLASSES outputs; 'tiny_vit' is a
    two-layer vision transformer for the fast subset."""
    torch.manual_seed(0)
    if name == "tiny_vit":
        return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                 mlp_dim=64, num_classes=CLASSES)
    return torchvision.models.get_model(name, weights=None, num_classes=CLASSES, **NETWORKS[name][1])


def random_layers(model):
    """The modules whose training-mode output depends on a random stream."""
    return [m for m in model.modules() if isinstance(m, (nn.modules.dropout._DropoutNd, StochasticDepth))]


def outputs_of(result):
    """The logits followed by any auxiliary heads' logits (inception_v3, googlenet)."""
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for t in result if t is not None]


def _relu(input, inplace=False):
    return input, inplace, ((0.0, True),), (torch.zeros_like, lambda x: x)


def _hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return (input, inplace, ((min_val, True), (max_val, False)),
            (lambda x: torch.full_like(x, min_val), lambda x: x, lambda x: torch.full_like(x, max_val)))


def _hardswish(input, inplace=False):
    return input, inplace, ((-3.0, True), (3.0, False)), (torch.zeros_like, lambda x: x * (x + 3) / 6, lambda x: x)


def _hardsigmoid(input, inplace=False):
    return input, inplace, ((-3.0, True), (3.0, False)), (torch.zeros_like, lambda x: x / 6 + 0.5, torch.ones_like)


# The piecewise activations: function -> its call's arguments parsed into (input, inplace, cuts,
# pieces). x is in piece i when it lies past i of the cuts (threshold, strict): x > threshold if
# strict, else x >= threshold, the tie rules of torch's CPU backward kernels.
PIECEWISE = {
    F.relu: _relu, torch.relu: _relu, torch.Tensor.relu: _relu,
    torch.relu_: lambda input: _relu(input, True), torch.Tensor.relu_: lambda input: _relu(input, True),
    F.hardtanh: _hardtanh,
    F.hardtanh_: lambda input, min_val=-1.0, max_val=1.0: _hardtanh(input, min_val, max_val, True),
    F.relu6: lambda input, inplace=False: _hardtanh(input, 0.0, 6.0, inplace),
    F.hardswish: _hardswish, F.hardsigmoid: _hardsigmoid,
}
FLIP_SHARE = 1e-4  # at most this share of a step's decisions may differ from float64's...
FLIP_NEAR = 1e-3  # ...each less than this share of its call's largest |input| away from agreeing


def scale_of(x):
    """The largest |x| (at least the smallest float64), the unit of a decision's distance from agreeing."""
    return max(max_abs(x), torch.finfo(torch.float64).tiny)


def cut_masks(x, cuts):
    """For each cut, whether the elements of ``x`` lie past it."""
    return [(x > t) if strict else (x >= t) for t, strict in cuts]


def piece_of(masks):
    """The piece index (int8) of each element, from its cut masks."""
    return sum(m.to(torch.int8) for m in masks)


def record_piecewise(func, args, kwargs):
    """Runs the activation; its decision is the cut masks of its input (read before an in-place
    write)."""
    x, _, cuts, _ = PIECEWISE[func](*args, **kwargs)
    masks = cut_masks(x, cuts)
    return func(*args, **kwargs), masks


def replay_piecewise(func, args, kwargs, masks):
    """The activation's pieces evaluated where ``masks`` put each element, the elements whose own
    piece differs, and how far those lie from a cut (in units of the largest |input|)."""
    x, inplace, cuts, pieces = PIECEWISE[func](*args, **kwargs)
    chosen = piece_of([m.cpu() for m in masks])
    flipped = piece_of(cut_masks(x, cuts)) != chosen
    gaps = torch.stack([(x.detach()[flipped] - t).abs() for t, _ in cuts]).amin(0) / scale_of(x)
    source = x.clone() if inplace else x  # the pieces' saved tensors must outlive the in-place write
    y = pieces[0](source)
    for i, piece in enumerate(pieces[1:], 1):
        y = torch.where(chosen == i, piece(source), y)
    return x.copy_(y) if inplace else y, flipped, gaps


def _max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return input, (kernel_size, stride, padding, dilation, ceil_mode), return_indices


MAX_POOLS = {F.max_pool2d: False, F.max_pool2d_with_indices: True}  # -> return_indices by default


def record_max_pool(func, args, kwargs):
    """Runs the pooling; its decision is the index of each window's maximum."""
    x, pool, return_indices = _max_pool2d(*args, **{"return_indices": MAX_POOLS[func], **kwargs})
    out, index = F.max_pool2d_with_indices(x, *pool)
    return (out, index) if return_indices else out, index


def replay_max_pool(func, args, kwargs, index):
    """Each window's element at ``index`` (gradients flow to it), the windows where it is not the
    maximum, and by how much (in units of the largest |input|)."""
    x, pool, return_indices = _max_pool2d(*args, **{"return_indices": MAX_POOLS[func], **kwargs})
    top = F.max_pool2d(x.detach(), *pool)
    index = index.cpu()
    out = x.flatten(2).gather(2, index.flatten(2)).view_as(top)
    flipped = out.detach() < top
    return (out, index) if return_indices else out, flipped, (top - out.detach())[flipped] / scale_of(x)


# Functions with discontinuous derivatives -> (record on ocl, replay on the CPU).
DECISIONS = {**{f: (record_piecewise, replay_piecewise) for f in PIECEWISE},
             **{f: (record_max_pool, replay_max_pool) for f in MAX_POOLS}}


class Decisions(TorchFunctionMode):
    """Records, on ocl, the decision of every function with a discontinuous derivative (DECISIONS:
    an activation's piece, a max pool's index), call by call; replayed on a CPU run of the same
    step, it evaluates those functions as ocl decided. Values within rounding noise of a decision's
    boundary (batch norm over batch 2 amplifies rounding ~1000x) then cannot send a gradient
    elsewhere in exact than in float32 arithmetic. An activation's pieces are read from its ocl
    input, so the activation kernels stay under test; a max pool's indices are ocl's own, checked
    by the float64 replay: ``flips`` lists where that run decides otherwise."""

    def __init__(self, recorded=None):
        super().__init__()
        self.recorded = recorded  # None: record into self.calls
        self.calls = []
        self.flips = []  # (call, function, decisions flipped, farthest flip from agreeing)
        self.decisions = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in DECISIONS:
            return func(*args, **kwargs)
        record, replay = DECISIONS[func]
        if self.recorded is None:
            result, decision = record(func, args, kwargs)
            self.calls.append((func, decision))
            return result
        call = len(self.calls)
        assert call < len(self.recorded), f"call {call} of {func.__name__} was not recorded on ocl"
        recorded_func, decision = self.recorded[call]
        assert recorded_func is func, (call, func, recorded_func)
        self.calls.append((func, None))
        result, flipped, gaps = replay(func, args, kwargs, decision)
        self.decisions += flipped.numel()
        if gaps.numel():
            self.flips.append((call, func.__name__, gaps.numel(), gaps.max().item()))
        return result

    def problems(self):
        """Why this float64 replay does not stand for ocl's step, if it does not: ocl decided many
        elements otherwise, or one far from a boundary (a wrong mask, not rounding), or made other
        calls."""
        bad = [f"call {c} ({f}): {n} decisions differ from float64's, up to {gap:.3g} of the largest |input| "
               f"from agreeing" for c, f, n, gap in self.flips if gap >= FLIP_NEAR]
        flipped = sum(n for _, _, n, _ in self.flips)
        if flipped > FLIP_SHARE * self.decisions:
            bad.append(f"{flipped} of {self.decisions} decisions differ from float64's")
        if len(self.calls) != len(self.recorded):
            bad.append(f"{len(self.calls)} decision calls on the CPU, {len(self.recorded)} on ocl")
        return bad


def training_step(model, x, y, random=False, optimizer="sgd"):
    """One step in train mode (random layers on only if ``random``); returns the logits, the
    gradients and parameters after the optimizer step (by name) and the buffers. The tensors are
    the model's own: read them before the next step."""
    model.train()
    for m in random_layers(model):
        m.train(random)
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    opt.zero_grad()
    outs = outputs_of(model(x))
    loss = sum(nn.functional.cross_entropy(o, y) for o in outs)
    loss.backward()
    opt.step()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    params = {n: p.detach() for n, p in model.named_parameters()}
    return {"logits": outs[0].detach()}, grads, params, dict(model.named_buffers())


def max_abs(t):
    return t.detach().double().abs().max().item() if t.numel() else 0.0


def mismatches(kind, ocl, cpu32, ref64):
    """Names and errors of the tensors (dicts name -> tensor) where ocl is off the float64
    reference by more than ERROR_FACTOR times the float32 CPU error and more than ROUNDINGS
    float32 roundings of the tensor's scale."""
    assert ocl.keys() == cpu32.keys() == ref64.keys(), (kind, set(ocl) ^ set(ref64), set(cpu32) ^ set(ref64))
    largest = max((max_abs(t) for t in ref64.values() if t.is_floating_point()), default=0.0)
    bad = []
    for name, ref in ref64.items():
        a, c = ocl[name].detach().cpu(), cpu32[name].detach()
        ref = ref.detach().double() if ref.is_floating_point() else ref
        assert a.shape == ref.shape, (kind, name, a.shape, ref.shape)
        if not ref.is_floating_point():
            if not torch.equal(a, c):
                bad.append(f"{kind} {name}: {a.tolist()} != {c.tolist()}")
            continue
        if not torch.isfinite(a).all():
            bad.append(f"{kind} {name}: non-finite values on ocl")
            continue
        err_ocl = max_abs(a.double() - ref)
        err_cpu = max_abs(c.double() - ref)
        scale = max(max_abs(ref), SCALE_SHARE * largest)
        if err_ocl > ERROR_FACTOR * err_cpu and err_ocl > ROUNDINGS * EPS32 * scale:
            bad.append(f"{kind} {name}: ocl error {err_ocl:.3g}, float32 CPU error {err_cpu:.3g}, "
                       f"scale {scale:.3g}")
    return bad


def check_network(name, side):
    """Runs the step on ocl, CPU float32 and CPU float64 and asserts agreement and no fallbacks."""
    model = build(name)
    torch.manual_seed(1)
    x = torch.randn(BATCH, 3, side, side)
    y = torch.randint(0, CLASSES, (BATCH,))

    oclcore.reset_fallbacks()
    ocl_model = copy.deepcopy(model).to(DEVICE)
    with Decisions() as chosen:
        ocl = training_step(ocl_model, x.to(DEVICE), y.to(DEVICE))
    with Decisions(chosen.calls) as replay:
        ref64 = training_step(copy.deepcopy(model).double(), x.double(), y)
    with Decisions(chosen.calls):
        cpu32 = training_step(model, x, y)
    del model, chosen
    bad = replay.problems()
    for kind, (o, c, r) in zip(("output", "grad", "param", "buffer"), zip(ocl, cpu32, ref64)):
        bad += mismatches(kind, o, c, r)
    del ocl, cpu32, ref64
    if random_layers(ocl_model):  # the random layers' ops, and Adam, must run on the device too
        torch.manual_seed(2)
        live, live_grads, _, _ = training_step(ocl_model, x.to(DEVICE), y.to(DEVICE), random=True,
                                               optimizer="adam")
        assert torch.isfinite(live["logits"]).all().item(), f"{name}: non-finite logits with dropout on"
        assert all(torch.isfinite(g).all().item() for g in live_grads.values()), f"{name}: non-finite gradients"
    fell_back = oclcore.fallbacks()
    assert not fell_back, f"{name}: ops fell back to the CPU: {fell_back}"
    assert not bad, f"{name}: {len(bad)} disagreements with the float64 CPU reference:\n" + "\n".join(bad)


FAST = {"resnet18": 64, "mobilenet_v3_small": 64, "tiny_vit": 32}


@pytest.mark.parametrize("name", list(FAST))
def test_network_training_step(name):
    check_network(name, FAST[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_training_step_full(name):
    check_network(name, NETWORKS[name][0])


def test_mismatches_catches_a_wrong_gradient():
    """The comparison must fail on a real error, not only on shapes."""
    ref = {"w": torch.linspace(-1, 1, 50, dtype=torch.float64)}
    cpu = {"w": ref["w"].float()}
    assert mismatches("grad", {"w": cpu["w"].clone()}, cpu, ref) == []
    wrong = cpu["w"].clone()
    wrong[3] += 1e-3
    assert len(mismatches("grad", {"w": wrong}, cpu, ref)) == 1


def test_decisions_follow_ocl_and_catch_a_wrong_one():
    """The float64 replay takes the recorded pieces, gradient included; it accepts a decision that
    rounding put past the cut and reports one far from it (a wrong mask)."""
    x64 = torch.randn(20000, dtype=torch.float64)
    x64[0], x64[1] = -1e-9, 0.5
    near, far = x64.float(), x64.float()
    near[0], far[1] = 1e-9, -0.5

    def replayed(recorded_input):
        with Decisions() as chosen:
            F.relu(recorded_input)
        x = x64.clone().requires_grad_()
        with Decisions(chosen.calls) as replay:
            y = F.relu(x)
            y.sum().backward()
        return y, x.grad, replay.problems()

    y, grad, problems = replayed(near)
    assert problems == [] and y[0].item() == -1e-9 and grad[0].item() == 1.0
    assert torch.equal(y[2:], x64[2:].clamp(min=0)) and torch.equal(grad[2:], (x64[2:] > 0).double())
    y, grad, problems = replayed(far)
    assert len(problems) == 1 and "call 0 (relu): 1 decisions" in problems[0] and grad[1].item() == 0.0
