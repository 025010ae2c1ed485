"""Checks shared by the tests of single convolution algorithms: a spy on the kernels they
launch and the passes the planner ran, inputs in several memory layouts, and a forward and
backward comparison with the algorithm forced against torch CPU in float64."""

import torch
import torch.nn.functional as F

import oclcore.conv
from conftest import DEVICE, assert_close
from oclcore.conv import algorithms, force_algorithm

TOL = 2e-5   # relative to the reference's largest magnitude
PASSES = ("forward", "grad_input", "grad_weight")


def spy_kernels(monkeypatch, file):
    """{"kernels": names of the kernels launched from cl/<file>, "passes": (pass, algorithm)
    of every convolution pass run}, filled while the test runs."""
    seen = {"kernels": [], "passes": []}
    kernel, choose = algorithms.ConvContext.kernel, oclcore.conv.choose

    def spy_kernel(self, f, name, *args, **kwargs):
        if f == file:
            seen["kernels"].append(name)
        return kernel(self, f, name, *args, **kwargs)

    def spy_choose(ctx, g, pass_, *args, **kwargs):
        alg = choose(ctx, g, pass_, *args, **kwargs)
        seen["passes"].append((pass_, alg.name))
        return alg
    monkeypatch.setattr(algorithms.ConvContext, "kernel", spy_kernel)
    monkeypatch.setattr(oclcore.conv, "choose", spy_choose)
    return seen


def on_device(t, layout):
    """A float32 ocl leaf holding t in the given layout (nchw, channels_last, strided: every
    other column of a wider tensor, strided_channels: every other channel, transposed: H and W
    swapped in memory), the view of it to compute with, and the map from the leaf's gradient
    to the view's."""
    t = t.float()
    if layout == "channels_last":
        leaf = t.to(DEVICE).contiguous(memory_format=torch.channels_last).requires_grad_()
        assert not leaf.is_contiguous()
        return leaf, leaf, lambda g: g
    if layout in ("strided", "strided_channels"):   # at an offset, too
        dim = t.dim() - 1 if layout == "strided" else 1
        shape = list(t.shape)
        shape[dim] = 2 * shape[dim] + 1
        index = (slice(None),) * dim + (slice(1, None, 2),)
        big = torch.zeros(shape)
        big[index] = t
        leaf = big.to(DEVICE).requires_grad_()
        return leaf, leaf[index], lambda g: g[index]
    if layout == "transposed":
        leaf = t.transpose(2, 3).contiguous().to(DEVICE).requires_grad_()
        return leaf, leaf.transpose(2, 3), lambda g: g.transpose(2, 3)
    leaf = t.to(DEVICE).requires_grad_()
    return leaf, leaf, lambda g: g


def check(algorithm, x, w, b, kw, layout="nchw", op=None, ref=None):
    """op(x, w, b) on ocl (default F.conv2d(x, w, b, **kw)) with algorithm forced (strictly),
    against ref (default: op) on torch CPU in float64 on the same float32-rounded values: the
    output and the gradients of x, w and b (and zero gradient outside x's view)."""
    op = op or (lambda x, w, b: F.conv2d(x, w, b, **kw))
    ref = ref or op
    inputs = [t.float() for t in (x, w, b) if t is not None]
    ref_in = [t.double().requires_grad_() for t in inputs]
    y = ref(ref_in[0], ref_in[1], ref_in[2] if b is not None else None)
    dy = torch.randn_like(y)
    want = torch.autograd.grad(y, ref_in, dy)
    xo, xv, view_of = on_device(inputs[0], layout)
    rest = [t.to(DEVICE).requires_grad_() for t in inputs[1:]]
    with force_algorithm(algorithm, strict=True):
        yo = op(xv, rest[0], rest[1] if b is not None else None)
        assert_close(yo, y.float(), TOL, TOL)
        got = torch.autograd.grad(yo, [xo] + rest, dy.float().to(DEVICE))
    assert_close(view_of(got[0]), want[0].float(), TOL, TOL)
    outside = got[0].cpu()
    view_of(outside).zero_()
    assert not outside.any()   # the leaf's gradient is zero outside the view
    for g, r in zip(got[1:], want[1:]):
        assert_close(g, r.float(), TOL, TOL)
