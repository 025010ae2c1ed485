"""How a training step's time splits into forward (with the loss), backward and the optimizer step,
on ocl at the seed's sizes (input Bx3x224x224, Adam). Each phase is timed from a synchronised
device to its last op's return (``ms``: the host's enqueue time, which is the phase's time when
the step is host-bound) and to the device's end (``synced``); ``cpu`` is the calling thread's CPU
time (backward runs on torch's autograd thread, so it has no cpu column). Medians of --iters steps.

    python bench/probes/step_phases.py [--model mobilenet_v2] [--batch 32] [--iters 15]
"""

import argparse
import statistics
import time

import torch
import torchvision

import oclcore  # noqa: F401  (registers the device)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=15)
    a = p.parse_args()
    model = torchvision.models.get_model(a.model, weights=None).to("ocl")
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(a.batch, 3, a.size, a.size, device="ocl")
    y = torch.randint(0, 1000, (a.batch,), device="ocl")
    loss_fn = torch.nn.CrossEntropyLoss()
    sync = torch.ocl.synchronize
    for _ in range(a.warmup):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    rows = {k: [] for k in ("forward", "forward synced", "forward cpu", "backward synced", "optimizer",
                            "optimizer synced", "optimizer cpu")}
    for _ in range(a.iters):
        opt.zero_grad(set_to_none=True)
        sync()
        t0, c0 = time.perf_counter(), time.thread_time()
        loss = loss_fn(model(x), y)
        t1, c1 = time.perf_counter(), time.thread_time()
        sync()
        t1s = time.perf_counter()
        loss.backward()
        sync()
        t2, c2 = time.perf_counter(), time.thread_time()
        opt.step()
        t3, c3 = time.perf_counter(), time.thread_time()
        sync()
        t3s = time.perf_counter()
        for k, v in (("forward", t1 - t0), ("forward synced", t1s - t0), ("forward cpu", c1 - c0),
                     ("backward synced", t2 - t1s), ("optimizer", t3 - t2), ("optimizer synced", t3s - t2),
                     ("optimizer cpu", c3 - c2)):
            rows[k].append(v * 1e3)
    print(f"{a.model}, batch {a.batch}, {a.size}x{a.size}, median of {a.iters} steps (ms):")
    for k, v in rows.items():
        print(f"  {k:<17} {statistics.median(v):8.2f}")


if __name__ == "__main__":
    main()
