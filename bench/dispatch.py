"""Host time per small-tensor op through torch on ocl (a + b, relu, sum), next to
a bare launch of a trivial kernel on the same device and the same ops on torch
CPU, in one run. Ops only enqueue, so the loop measures host time; the device
is synchronised once per batch of ops. Host time is the calling thread's CPU
time (time.thread_time), so device work competing for the same cores (PoCL)
does not count as dispatch cost; --wall reports wall-clock time instead.

    python bench/dispatch.py [--device N] [--ops 2000]
"""

import argparse
import statistics
import time

import torch

import oclcore
from oclcore import runtime


def per_op_us(fn, n, repeats, sync, clock=time.thread_time):
    times = []
    for _ in range(repeats):
        sync()
        t0 = clock()
        for _ in range(n):
            fn()
        t1 = clock()
        sync()
        times.append((t1 - t0) / n * 1e6)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--size", type=int, default=1024, help="elements per tensor")
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
    ops = {"a + b": (lambda: x + y, lambda: xc + yc),
           "relu": (lambda: torch.relu(x), lambda: torch.relu(xc)),
           "sum": (lambda: x.sum(), lambda: xc.sum())}
    for f in [bare] + [f for pair in ops.values() for f in pair]:  # warm-up, builds kernels
        for _ in range(20):
            f()
    sync()
    oclcore.reset_fallbacks()
    bare_us = per_op_us(bare, a.ops, a.repeats, sync, clock)
    print(f"device: {device} {dev.name} ({dev.platform}, driver {dev.driver_version}); "
          f"{a.size}-element float32 tensors; median of {a.repeats} x {a.ops} ops; "
          f"{'wall' if a.wall else 'host thread CPU'} time")
    print(f"{'op':<10}{'ocl us/op':>12}{'bare launch':>13}{'over bare':>11}{'torch CPU':>11}")
    for name, (f_ocl, f_cpu) in ops.items():
        us = per_op_us(f_ocl, a.ops, a.repeats, sync, clock)
        cpu = per_op_us(f_cpu, a.ops, a.repeats, lambda: None, clock)
        print(f"{name:<10}{us:>12.1f}{bare_us:>13.1f}{us - bare_us:>+11.1f}{cpu:>11.1f}")
    if oclcore.fallbacks():
        print("CPU fallbacks during the run:", oclcore.fallbacks())


if __name__ == "__main__":
    main()
