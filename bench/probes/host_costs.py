"""Where an op's host time goes on this machine: a small op, a depthwise convolution, batch norm
and a multi-tensor (foreach) op over a network's parameters, each timed whole (through torch),
with oclcore's implementation replaced by one that returns at once (torch's own cost), and in
its parts. Calling-thread CPU time, best of 7 batches.

    python bench/probes/host_costs.py [--model mobilenet_v2]
"""

import argparse
import time

import torch
import torchvision

import oclcore  # noqa: F401  (registers the device)
from oclcore.ops import conv as conv_ops
from oclcore.ops import foreach
from oclcore.torch import dispatch
from oclcore.torch.tensor import empty

aten = torch.ops.aten


def per_call_us(fn, n):
    for _ in range(max(1, n // 10)):
        fn()
    best = float("inf")
    for _ in range(7):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t0) / n * 1e6)
    torch.ocl.synchronize()
    return best


def with_impl(func, impl, fn, n):
    """per_call_us(fn) with oclcore's implementation of ``func`` replaced by ``impl``."""
    saved = dispatch.OPS[func]
    dispatch.OPS[func] = impl
    try:
        return per_call_us(fn, n)
    finally:
        dispatch.OPS[func] = saved


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--busy", type=int, default=0, metavar="N",
                   help="also time a + b while the device works through N queued 4096x4096 matmuls (GPUs)")
    a = p.parse_args()
    rows = []

    def row(name, us):
        rows.append((name, us))
        print(f"{us:>9.1f} us  {name}", flush=True)

    x, y = torch.randn(1024, device="ocl"), torch.randn(1024, device="ocl")
    out = x + y
    row("a + b", per_call_us(lambda: x + y, 3000))
    row("a + b, implementation returns a kept tensor", with_impl(aten.add.Tensor, lambda *a, **k: out,
                                                                lambda: x + y, 3000))
    row("a + b, implementation returns a new tensor",
        with_impl(aten.add.Tensor, lambda *a, **k: empty((1024,), torch.float32, 0), lambda: x + y, 3000))

    if a.busy:
        big = torch.randn(4096, 4096, device="ocl")

        def busy_batch():
            for _ in range(a.busy):
                torch.mm(big, big)
            t0 = time.thread_time()
            for _ in range(3000):
                x + y
            us = (time.thread_time() - t0) / 3000 * 1e6
            torch.ocl.synchronize()
            return us
        row(f"a + b behind {a.busy} queued matmuls", min(busy_batch() for _ in range(5)))

    img = torch.randn(2, 32, 8, 8, device="ocl")
    w = torch.randn(32, 1, 3, 3, device="ocl")
    conv_args = ((1, 1), (1, 1), (1, 1), False, (0, 0), 32)
    row("depthwise conv2d", per_call_us(lambda: torch.conv2d(img, w, None, 1, 1, 1, 32), 2000))
    row("  its implementation alone", per_call_us(lambda: conv_ops.convolution(img, w, None, *conv_args), 2000))
    conv_out = conv_ops.convolution(img, w, None, *conv_args)
    row("  implementation returns a kept tensor", with_impl(aten.convolution.default, lambda *a, **k: conv_out,
                                                            lambda: torch.conv2d(img, w, None, 1, 1, 1, 32), 2000))
    bn = torch.nn.BatchNorm2d(32).to("ocl")
    row("BatchNorm2d training forward (module)", per_call_us(lambda: bn(img), 2000))
    row("  torch.native_batch_norm", per_call_us(
        lambda: torch.native_batch_norm(img, bn.weight.detach(), bn.bias.detach(), bn.running_mean,
                                        bn.running_var, True, 0.1, 1e-5), 2000))
    t = torch.zeros((), dtype=torch.long, device="ocl")
    row("  num_batches_tracked.add_(1)", per_call_us(lambda: t.add_(1), 2000))

    model = torchvision.models.get_model(a.model, weights=None).to("ocl")
    ps = [q.detach() for q in model.parameters()]
    gs = [torch.randn_like(q) for q in ps]
    vs = [torch.rand_like(q) + 0.1 for q in ps]
    scalars = [0.5] * len(ps)
    print(f"multi-tensor ops over the {len(ps)} parameters of {a.model}:")
    row("_foreach_mul_(Scalar)", per_call_us(lambda: torch._foreach_mul_(vs, 1.0), 200))
    row("  implementation returns at once", with_impl(aten._foreach_mul_.Scalar, lambda *a, **k: None,
                                                      lambda: torch._foreach_mul_(vs, 1.0), 200))
    func = aten._foreach_mul_.Scalar
    row("  call key and plan lookup", per_call_us(lambda: foreach._planned(func, (vs, 1.0)), 200))
    key, plan = foreach._planned(func, (vs, 1.0))
    one = foreach._Scalar(1.0)
    row("  plan.run", per_call_us(lambda: plan.run(None, [vs], one, foreach._Y, (1,), None), 200))
    row("_foreach_addcmul_(Scalar)", per_call_us(lambda: torch._foreach_addcmul_(ps, gs, gs, 0.0), 200))
    row("_foreach_addcdiv_(ScalarList)", per_call_us(lambda: torch._foreach_addcdiv_(ps, gs, vs, scalars), 200))
    row("_foreach_sqrt", per_call_us(lambda: torch._foreach_sqrt(vs), 200))
    opt = torch.optim.Adam(model.parameters(), lr=0.0)
    for q, g in zip(model.parameters(), gs):
        q.grad = g
    row("Adam.step (foreach)", per_call_us(opt.step, 50))


if __name__ == "__main__":
    main()
