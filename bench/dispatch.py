"""Host time per small-tensor op through torch on ocl (a + b, relu, reductions, softmax, matmul), next to
a bare launch of a trivial kernel on the same device and the same ops on torch
CPU, in one run. Ops only enqueue, so the loop measures host time; the device
is synchronised once per batch of ops. Host time is the calling thread's CPU
time (time.thread_time), so device work competing for the same cores (PoCL)
does not count as dispatch cost; --wall reports wall-clock time instead.

The dim ops (sum(dim), mean(dim), amax(dim), softmax) reduce the rows of the
same elements viewed as a (size / row, row) matrix.

    python bench/dispatch.py [--device N] [--ops 2000] [--size 1024] [--row 32] [--wall]
"""

import argparse
import statistics
import time

import torch

import oclcore
from oclcore import runtime


def batch_us(fn, n, sync, clock):
    sync()
    t0 = clock()
    for _ in range(n):
        fn()
    t1 = clock()
    sync()
    return (t1 - t0) / n * 1e6


def per_op_us(fns, n, repeats, sync, clock=time.thread_time):
    """Median host time per call of each function in ``fns`` (name -> function). The batches go
    round-robin, so a burst of load from elsewhere on the machine touches every row alike."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(batch_us(fn, n, sync, clock))
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--size", type=int, default=1024, help="elements per tensor")
    p.add_argument("--row", type=int, default=32, help="row length for the dim ops (divides --size)")
    p.add_argument("--wall", action="store_true", help="wall-clock time instead of thread CPU time")
    a = p.parse_args()
    clock = time.perf_counter if a.wall else time.thread_time
    dev = runtime.device(a.device)
    device = f"ocl:{a.device}"
    sync = dev.synchronize

    prog = dev.build("__kernel void add1(__global float* x, int off, int n) { int i = get_global_id(0);"
                     " if (i < n) x[off + i] += 1.0f; }", "", "bench_dispatch")
    k = prog.kernel("add1", "Bii")
    buf = dev.alloc(a.size * 4)
    args, g = (buf, 0, a.size), (a.size,)
    bare = lambda: k.launch(g, None, args)  # noqa: E731

    x, y = torch.randn(a.size, device=device), torch.randn(a.size, device=device)
    xc, yc = x.cpu(), y.cpu()
    m, mc = x.view(-1, a.row), xc.view(-1, a.row)
    b3, b3c = m.view(-1, 4, a.row), mc.view(-1, 4, a.row)  # a batch of (4, row) matrices
    ops = {"a + b": (lambda: x + y, lambda: xc + yc),
           "relu": (lambda: torch.relu(x), lambda: torch.relu(xc)),
           "sum": (lambda: x.sum(), lambda: xc.sum()),
           "sum(dim)": (lambda: m.sum(1), lambda: mc.sum(1)),
           "mean(dim)": (lambda: m.mean(1), lambda: mc.mean(1)),
           "amax(dim)": (lambda: m.amax(1), lambda: mc.amax(1)),
           "softmax": (lambda: torch.softmax(m, 1), lambda: torch.softmax(mc, 1)),
           "matmul 2-D": (lambda: m @ m.t(), lambda: mc @ mc.t()),
           "matmul 3-D": (lambda: b3 @ b3.transpose(1, 2), lambda: b3c @ b3c.transpose(1, 2))}
    for f in [bare] + [f for pair in ops.values() for f in pair]:  # warm-up, builds kernels
        for _ in range(20):
            f()
    sync()
    oclcore.reset_fallbacks()
    us = per_op_us({"bare": bare, **{name: f for name, (f, _) in ops.items()}}, a.ops, a.repeats, sync, clock)
    # torch's CPU ops run after all ocl batches: their OpenMP threads keep spinning for a while
    # afterwards, which on a small machine slows whatever is measured next
    cpu_us = per_op_us({name: f for name, (_, f) in ops.items()}, a.ops, a.repeats, sync, clock)
    bare_us = us["bare"]
    print(f"device: {device} {dev.name} ({dev.platform}, driver {dev.driver_version}); "
          f"{a.size}-element float32 tensors (rows of {a.row} for the dim ops); median of {a.repeats} x {a.ops} "
          "ops (round-robin); "
          f"{'wall' if a.wall else 'host thread CPU'} time")
    print(f"{'op':<12}{'ocl us/op':>12}{'bare launch':>13}{'over bare':>11}{'torch CPU':>11}")
    for name in ops:
        print(f"{name:<12}{us[name]:>12.1f}{bare_us:>13.1f}{us[name] - bare_us:>+11.1f}{cpu_us[name]:>11.1f}")
    if oclcore.fallbacks():
        print("CPU fallbacks during the run:", oclcore.fallbacks())


if __name__ == "__main__":
    main()
