"""Where a training step's CPU time goes, per thread of the process: CPU time and time spent
waiting for a core (Linux's /proc/<pid>/task/<tid>/schedstat), per step, for each thread that
ran. On a host pinned to few cores, a thread's wait shows the others taking its core: the Python
thread (forward, loss, optimizer), torch's autograd thread (backward), oclcore's launch submitter
(``ocl-submit``) and the OpenCL driver's own threads. Steps as bench/nets.py times them
(bench/host.py's build_step), synchronised around each.

    taskset -c 0,1 python bench/probes/threads.py --models mobilenet_v3_small,densenet161 --batches 64,16
"""

import argparse
import os
import sys
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from host import build_step  # noqa: E402  (bench/host.py)
from oclcore import runtime  # noqa: E402  (importing oclcore registers the device)


def snapshot():
    """{thread id: (name, ns on a CPU, ns waiting for one)} of this process's threads."""
    out = {}
    base = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"{base}/{tid}/schedstat") as f:
                run, wait, _ = (int(v) for v in f.read().split())
        except (OSError, ValueError):
            continue
        out[tid] = (name, run, wait)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v3_small")
    p.add_argument("--batches", default="", help="batch per model, comma-separated (default 32 each)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    models = a.models.split(",")
    batches = [int(b) for b in a.batches.split(",")] if a.batches else [32] * len(models)
    main_tid = str(threading.get_native_id())
    print(runtime.device(0).name)
    for name, batch in zip(models, batches):
        step = build_step(name, batch, a.size, "ocl")
        for _ in range(a.warmup):
            step()
        torch.ocl.synchronize()
        before, t0 = snapshot(), time.perf_counter()
        for _ in range(a.steps):
            step()
            torch.ocl.synchronize()
        wall = (time.perf_counter() - t0) * 1e3 / a.steps
        after = snapshot()
        print(f"{name} b{batch}: {wall:.2f} ms per step; per step and thread, ms on a CPU / ms waiting for one:")
        rows = []
        for tid, (tname, run, wait) in after.items():
            r0, w0 = before.get(tid, (tname, 0, 0))[1:]
            d_run, d_wait = (run - r0) / 1e6 / a.steps, (wait - w0) / 1e6 / a.steps
            if d_run >= 0.05 or d_wait >= 0.05:
                rows.append((d_run, d_wait, tname + (" (main)" if tid == main_tid else "")))
        for d_run, d_wait, tname in sorted(rows, reverse=True):
            print(f"    {tname:<24} {d_run:8.2f} {d_wait:8.2f}")
        print(f"    {'all':<24} {sum(r[0] for r in rows):8.2f} {sum(r[1] for r in rows):8.2f}")


if __name__ == "__main__":
    main()
