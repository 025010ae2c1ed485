"""Host (CPU) time of eager training (or inference) steps on ocl: milliseconds per step and
microseconds per launched kernel, for small torchvision networks on tiny inputs, where the
device's own work is negligible and the step's time is the Python/torch/OpenCL-enqueue cost of
its ops.

A step is forward, CrossEntropyLoss, zero_grad, backward and Adam (foreach, the default) in
train mode, as bench/nets.py times it; --mode infer times eval no_grad forward passes instead.
After warm-up steps, each timed step is bracketed by time.thread_time() and time.perf_counter()
without synchronising inside; the device is synchronised between steps. ``cpu ms`` (the calling
thread's CPU time) is the measure: on PoCL the device's threads and other processes share the
host's cores, so wall-clock time (``wall ms``) also counts waiting for a core. Backward runs on
the calling thread (torch.autograd.set_multithreading_enabled(False)) so that its CPU time
counts too; --autograd-thread keeps torch's device thread for backward (then ``cpu ms`` misses
it). Kernels per step come from oclcore's launch counter; ``us/kernel`` is cpu time per kernel.
Medians over the timed steps. Run with POCL_MAX_PTHREAD_COUNT=1 on a small machine to leave the
host thread a core.

--ops times oclcore's dispatch per aten op instead (the outermost op of each call, as torch hands
it over): calls per step, microseconds per call and milliseconds per step, next to the step's
whole host time; what is left is torch's own work (modules, autograd, the Python boundary).

--profile runs the steps of the first model under cProfile and prints the top entries by own
time and by cumulative time (cProfile inflates the cost of small Python functions).

    python bench/host.py                                   # mobilenet_v2, mobilenet_v3_small, resnet18
    python bench/host.py --models resnet18 --batch 2 --size 32 --iters 20
    python bench/host.py --models mobilenet_v2,resnet18 --mode infer --batch 64 --size 224
    python bench/host.py --models mobilenet_v2 --profile --top 40
    python bench/host.py --models mobilenet_v3_small --ops --top 25
"""

import argparse
import collections
import cProfile
import pstats
import statistics
import time
import warnings

import torch
import torchvision

import oclcore
from oclcore import runtime


def build_step(name, batch, size, device, mode="train", adam=None):
    """A training (or, with mode "infer", an eval no_grad inference) step closure for torchvision
    network ``name`` on ``device`` (random weights); ``adam``: extra torch.optim.Adam arguments
    (e.g. {"fused": True})."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None).to(device)
    x = torch.randn(batch, 3, size, size).to(device)
    if mode == "infer":
        model.eval()

        def infer():
            with torch.no_grad():
                model(x)
        return infer
    model.train()
    y = torch.randint(0, 1000, (batch,)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, **(adam or {}))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def measure(step, sync, iters):
    """(median wall ms, median calling-thread CPU ms, kernels per step) over ``iters`` steps."""
    wall, cpu = [], []
    launches = runtime.rt.launch_count()
    for _ in range(iters):
        sync()
        t0, c0 = time.perf_counter(), time.thread_time()
        step()
        t1, c1 = time.perf_counter(), time.thread_time()
        wall.append((t1 - t0) * 1e3)
        cpu.append((c1 - c0) * 1e3)
    sync()
    kernels = (runtime.rt.launch_count() - launches) / iters
    return statistics.median(wall), statistics.median(cpu), kernels


def profile(step, sync, iters, top):
    """Prints the top cProfile entries of ``iters`` steps (by own time, then cumulative)."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iters):
        step()
    prof.disable()
    sync()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def op_times(step, sync, iters, top):
    """Prints oclcore's dispatch time per aten op over ``iters`` steps (outermost dispatches only)."""
    from oclcore.torch import dispatch, tensor

    total, calls = collections.Counter(), collections.Counter()
    depth = [0]
    clock = time.perf_counter

    def timed(func, args, kwargs):
        depth[0] += 1
        t0 = clock()
        try:
            return dispatch.dispatch(func, args, kwargs)
        finally:
            depth[0] -= 1
            if not depth[0]:
                total[func] += clock() - t0
                calls[func] += 1

    sync()
    tensor._dispatch = timed
    launches = runtime.rt.launch_count()
    try:
        t0 = clock()
        for _ in range(iters):
            step()
        t1 = clock()
    finally:
        dispatch.install()
    sync()
    step_ms = (t1 - t0) / iters * 1e3
    inside = sum(total.values()) / iters * 1e3
    kernels = (runtime.rt.launch_count() - launches) / iters
    print(f"{step_ms:.2f} ms per step (wall, unsynchronised), {kernels:.0f} kernels, "
          f"{sum(calls.values()) / iters:.0f} dispatches: {inside:.2f} ms inside oclcore's dispatch, "
          f"{step_ms - inside:.2f} ms in torch and the model's Python")
    print(f"{'ms/step':>8}{'calls':>7}{'us/call':>9}  op")
    for func, t in total.most_common(top):
        print(f"{t / iters * 1e3:>8.2f}{calls[func] / iters:>7.0f}{t / calls[func] * 1e6:>9.1f}  {func}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2,mobilenet_v3_small,resnet18")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=32, help="input height and width")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--device", default="ocl")
    p.add_argument("--mode", choices=["train", "infer"], default="train",
                   help="training steps (default) or eval no_grad forward passes")
    p.add_argument("--autograd-thread", action="store_true",
                   help="run backward on torch's autograd device thread (its CPU time is then not counted)")
    p.add_argument("--profile", action="store_true", help="cProfile the first model's steps instead")
    p.add_argument("--ops", action="store_true", help="time oclcore's dispatch per aten op instead")
    p.add_argument("--top", type=int, default=30, help="entries --profile prints")
    a = p.parse_args()
    sync = torch.ocl.synchronize if a.device.startswith("ocl") else (lambda: None)
    if not a.autograd_thread:
        torch.autograd.set_multithreading_enabled(False)
    names = a.models.split(",")
    if a.profile or a.ops:
        for name in names[:1] if a.profile else names:
            step = build_step(name, a.batch, a.size, a.device, a.mode)
            for _ in range(a.warmup):
                step()
            sync()
            if a.profile:
                profile(step, sync, a.iters, a.top)
            else:
                print(f"{name}, {a.mode}, batch {a.batch}, {a.size}x{a.size}: ", end="")
                op_times(step, sync, a.iters, a.top)
        return
    print(f"{a.mode}, batch {a.batch}, {a.size}x{a.size}, {a.iters} steps after {a.warmup} warm-up")
    print(f"{'model':<22}{'cpu ms/step':>12}{'wall ms':>9}{'kernels':>9}{'us/kernel':>11}")
    for name in names:
        oclcore.reset_fallbacks()
        step = build_step(name, a.batch, a.size, a.device, a.mode)
        for _ in range(a.warmup):
            step()
        wall, cpu, kernels = measure(step, sync, a.iters)
        per = cpu / kernels * 1e3 if kernels else float("nan")
        print(f"{name:<22}{cpu:>12.2f}{wall:>9.2f}{kernels:>9.0f}{per:>11.1f}", flush=True)
        if oclcore.fallbacks():
            print(f"  CPU fallbacks: {oclcore.fallbacks()}")


if __name__ == "__main__":
    main()
