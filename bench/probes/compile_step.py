"""A compiled training step of a torchvision network on ocl (torch.compile(backend="oclcore")),
with Adam foreach and Adam fused, outside bench/nets.py: the step's wall time, and the host time of
forward, backward and the optimizer step when the device is synchronised between them.

    python bench/probes/compile_step.py [--model mobilenet_v2] [--batch 32] [--size 224] [--pin-early]

--pin-early pins the process to cores 0 and 1 before torch and OpenCL start (bench/nets.py's order);
otherwise after.
"""
import argparse
import os
import statistics
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--pin-early", action="store_true")
    a = p.parse_args()
    if a.pin_early:
        os.sched_setaffinity(0, [0, 1])
    import torch
    import torchvision

    import oclcore.compile  # noqa: F401  (registers the backend)
    os.sched_setaffinity(0, [0, 1])
    torch.set_num_threads(2)
    sync = torch.ocl.synchronize
    for fused in (False, True):
        torch.manual_seed(0)
        model = torchvision.models.get_model(a.model, weights=None).to("ocl").train()
        x = torch.randn(a.batch, 3, a.size, a.size).to("ocl")
        y = torch.randint(0, 1000, (a.batch,)).to("ocl")
        forward = torch.compile(model, backend="oclcore")
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused or None)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(split=False):
            t = [time.perf_counter()]
            loss = loss_fn(forward(x), y)
            if split:
                sync()
            t.append(time.perf_counter())
            opt.zero_grad()
            loss.backward()
            if split:
                sync()
            t.append(time.perf_counter())
            opt.step()
            t.append(time.perf_counter())
            sync()
            t.append(time.perf_counter())
            return [1e3 * (b - a) for a, b in zip(t, t[1:])]

        for _ in range(3):
            step()
        whole = statistics.median(sum(step()) for _ in range(5))
        phases = [step(True) for _ in range(5)]
        fwd, bwd, opt_ms, drain = (statistics.median(p[i] for p in phases) for i in range(4))
        print(f"{a.model} Adam {'fused' if fused else 'foreach'}: step {whole:.1f} ms; synchronised between "
              f"phases: forward {fwd:.1f}, backward {bwd:.1f}, optimizer {opt_ms:.1f} (+{drain:.1f} to drain) ms",
              flush=True)


if __name__ == "__main__":
    main()
