"""Training step time under each of several settings of one process, interleaved: blocks of --block
steps per setting, the settings' order reversed every round, so that a host whose speed drifts
(the lent GPU machine's does, between and within runs) weighs on every setting alike. Settings:
``poll=US`` (how long the launch submitter polls before sleeping, microseconds; needs a submitter),
``wake=N`` (launches handed over before a sleeping submitter is woken, Device.submit_batch)
``guard=native|python`` (torch's device guard for ocl: the C++ one or torch's Python one) and
``composites=on|off`` (oclcore's autograd-key overrides of composite ops, oclcore/torch/composites.py) and
``adam=foreach|fused`` (the step's optimizer: Adam with foreach=True, torch's default elsewhere,
or fused=True, oclcore's default; each runs on a model of its own, built alike). Steps as bench/nets.py times them (input Bx3x224x224 and
labels on the device, forward, CrossEntropyLoss, zero_grad, backward, Adam; synchronised around
each step). Prints, per model and setting, the median and the mean step time (ms), the ratio of
medians to the first setting and the median CPU time of the calling thread per step (forward,
loss and optimizer step: backward runs on torch's autograd thread). Compare the settings of one
knob per run (a setting leaves the other knobs as they were).

    python bench/probes/interleaved.py --models mobilenet_v2,efficientnet_b0 --settings poll=300,poll=0
    python bench/probes/interleaved.py --settings guard=native,guard=python
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from host import build_step  # noqa: E402  (bench/host.py)
from oclcore import runtime  # noqa: E402  (importing oclcore registers the device)
from oclcore.torch import backend, composites, native_guard  # noqa: E402


ADAM = {"adam=foreach": {"foreach": True}, "adam=fused": {"fused": True}}  # the step's Adam arguments


def apply(setting, dev):
    """Puts ``setting`` (see the module's docstring) into effect."""
    knob, value = setting.split("=")
    if knob == "poll":
        dev.submit_poll_us = int(value)
    elif knob == "wake":
        dev.submit_batch = int(value)
    elif knob == "guard" and value == "python":
        torch._C._acc.register_python_privateuseone_device_guard(backend._Guard())
    elif knob == "guard" and value == "native":
        if native_guard.install(runtime.cache_dir()) != "native":
            raise SystemExit(f"the native guard is not available: {native_guard.status()}")
    elif knob == "adam" and value in ("foreach", "fused"):
        pass  # (the step itself differs: see main)
    elif knob == "composites" and value in ("on", "off"):
        if composites._lib is not None:
            composites._lib._destroy()
            composites._lib = None
        if value == "on":
            composites.install()
    else:
        raise SystemExit(f"unknown setting {setting!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2")
    p.add_argument("--batches", default="", help="batch per model, comma-separated (default 32 each)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--settings", default="poll=300,poll=0", help="settings to compare, comma-separated")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--block", type=int, default=4, help="steps per setting per round")
    a = p.parse_args()
    dev = runtime.device(0)
    settings = a.settings.split(",")
    if any(s.startswith(("poll=", "wake=")) for s in settings) and dev.submit_poll_us is None:
        raise SystemExit(f"{dev.name} has no launch submitter: set OCLCORE_SUBMIT_THREAD=1")
    models = a.models.split(",")
    batches = [int(b) for b in a.batches.split(",")] if a.batches else [32] * len(models)
    print(f"{dev.name}; settings {settings}; {a.rounds} rounds of {a.block} steps each")
    for name, batch in zip(models, batches):
        steps = {}  # per Adam setting (None: the same step for every other setting)
        for s in settings:
            key = s if s in ADAM else None
            if key not in steps:
                steps[key] = build_step(name, batch, a.size, "ocl", adam=ADAM.get(s))
                for _ in range(a.warmup):
                    steps[key]()
        torch.ocl.synchronize()
        times = {s: [] for s in settings}
        cpu = {s: [] for s in settings}
        for r in range(a.rounds):
            for s in (settings if r % 2 == 0 else settings[::-1]):
                apply(s, dev)
                step = steps[s if s in ADAM else None]
                for _ in range(a.block):
                    torch.ocl.synchronize()
                    t0, c0 = time.perf_counter(), time.thread_time()
                    step()
                    c1 = time.thread_time()
                    torch.ocl.synchronize()
                    times[s].append((time.perf_counter() - t0) * 1e3)
                    cpu[s].append((c1 - c0) * 1e3)
        base = statistics.median(times[settings[0]])
        for s in settings:
            med = statistics.median(times[s])
            print(f"{name:<20} b{batch:<4} {s:<14} median {med:8.2f} ms, mean {statistics.mean(times[s]):8.2f} ms, "
                  f"{med / base:5.3f} of the first setting; thread cpu {statistics.median(cpu[s]):7.2f} ms")
        apply(settings[0], dev)


if __name__ == "__main__":
    main()
