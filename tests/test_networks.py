"""Whole torchvision networks (random weights): one training step on ocl agrees
with the same step on the CPU, with no op falling back to the CPU.

The step is forward, cross entropy (summed over auxiliary heads), backward and
an SGD step (momentum, weight decay). Logits, every parameter gradient, the
updated parameters and the batch-norm running statistics are compared with a
float64 CPU run of the same step: at these small inputs batch norm often
normalises over a handful of values, so gradients are ill-conditioned and a
float32 CPU run is no exact reference either. A tensor passes when the ocl
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

import oclcore

torchvision = pytest.importorskip("torchvision")
from torchvision.models.vision_transformer import VisionTransformer  # noqa: E402
from torchvision.ops import StochasticDepth  # noqa: E402

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

    ref64 = training_step(copy.deepcopy(model).double(), x.double(), y)
    cpu32 = training_step(copy.deepcopy(model), x, y)
    oclcore.reset_fallbacks()
    ocl_model = copy.deepcopy(model).to(DEVICE)
    del model
    ocl = training_step(ocl_model, x.to(DEVICE), y.to(DEVICE))
    bad = []
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
    assert not bad, f"{name}: {len(bad)} tensors disagree with the float64 CPU reference:\n" + "\n".join(bad)


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
