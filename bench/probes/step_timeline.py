"""Where a step's wall time goes: host enqueue time, device busy time (kernels) and the device's
idle gaps, for bench/nets.py's eager, captured and compiled steps of one network.

    python bench/probes/step_timeline.py [--model mobilenet_v2] [--modes eager,compile] [--mode infer]
                                         [--pin-early] [--skip-rewrites F,G]

For each mode: the step's wall and host time (median of --iters, synchronised around each step as
bench/nets.py does), then one profiled step: the span from its first kernel's start to its last
kernel's end, the kernels' summed time, and the largest gaps between consecutive kernels (with the
ops on either side, and whether the second kernel was already queued when the first ended: a gap
the host did not cause). Allocator and program-cache counters per step show allocations that
reach OpenCL and kernels built inside the timed steps, and Python's garbage-collector pauses per
step (gc.callbacks) show whether a slow step is a full collection.
"""
import argparse
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def timeline(prof_records):
    """[(op, kernel, queued, start, end)] in device order."""
    rows = [(op, name, e.queued_ns, e.start_ns, e.end_ns) for op, name, _, e in prof_records]
    return sorted(rows, key=lambda r: r[3])


def report(rows, top):
    span = (rows[-1][4] - rows[0][3]) / 1e6
    busy = sum(r[4] - r[3] for r in rows) / 1e6
    gaps = []
    for a, b in zip(rows, rows[1:]):
        gap = b[3] - a[4]
        if gap > 0:
            gaps.append((gap, a, b, b[2] <= a[4]))
    device_side = sum(g for g, *_, ready in gaps if ready) / 1e6
    print(f"  profiled step: {len(rows)} kernels, device span {span:.2f} ms, kernels {busy:.2f} ms, "
          f"idle {span - busy:.2f} ms of which {device_side:.2f} ms with the next kernel already queued")
    for gap, a, b, ready in sorted(gaps, key=lambda g: -g[0])[:top]:
        print(f"    gap {gap / 1e3:9.1f} us  {a[0]}/{a[1]} -> {b[0]}/{b[1]}"
              f"{'  (queued before)' if ready else ''}")


class GcPauses:
    """Python garbage-collection pauses, as (generation, ms), since the last take()."""

    def __init__(self):
        self.pauses, self._start = [], None
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.pauses.append((info["generation"], 1e3 * (time.perf_counter() - self._start)))

    def take(self):
        out, self.pauses = self.pauses, []
        return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mobilenet_v2")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--mode", choices=("train", "infer"), default="train")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--cores", default="0,1")
    p.add_argument("--pin-early", action="store_true",
                   help="pin before torch and OpenCL start (as taskset and bench/nets.py do), not after")
    p.add_argument("--skip-rewrites", default="", help="comma-separated functions of oclcore/compile/rewrite.py "
                   "to leave out of compiled graphs (to measure what one saves)")
    a = p.parse_args()
    cores = [int(c) for c in a.cores.split(",")]
    if a.pin_early:
        os.sched_setaffinity(0, cores)
    import torch

    import nets
    import oclcore

    os.sched_setaffinity(0, cores)
    torch.set_num_threads(len(cores))
    from oclcore.compile import rewrite
    for name in filter(None, a.skip_rewrites.split(",")):
        getattr(rewrite, name)  # (a misspelt name fails here)
        setattr(rewrite, name, lambda gm: 0)
    train = a.mode == "train"
    batch = a.batch or (nets.TRAIN_BATCH.get(a.model, 32) if train else nets.INFER_BATCH)
    dev = oclcore.runtime.device(0)
    print(f"ocl:0 = {dev.name}; {a.model} {a.mode} batch {batch}")
    for mode in a.modes.split(","):
        torch.manual_seed(0)
        model = nets.build_model(a.model, 224, train).to("ocl")
        x = torch.randn(batch, 3, 224, 224).to("ocl")
        y = torch.randint(0, 1000, (batch,)).to("ocl")
        step = nets.STEP_MAKERS[mode](model, x, y, train)
        for _ in range(a.warmup):
            step()
        torch.ocl.synchronize()
        mem0, prog0, launches0 = dev.memory_stats(), oclcore.runtime.rt.program_stats(), oclcore.runtime.rt.launch_count()
        walls, hosts, collections = [], [], []
        pauses = GcPauses()
        for _ in range(a.iters):
            torch.ocl.synchronize()
            pauses.take()
            t0 = time.perf_counter()
            step()
            t1 = time.perf_counter()
            torch.ocl.synchronize()
            walls.append(1e3 * (time.perf_counter() - t0))
            hosts.append(1e3 * (t1 - t0))
            collections.append(pauses.take())
        gc.callbacks.remove(pauses._callback)
        mem1, prog1 = dev.memory_stats(), oclcore.runtime.rt.program_stats()
        per = {k: (mem1[k] - mem0[k]) / a.iters for k in ("allocations", "cache_hits", "segments_created")}
        built = {k: prog1[k] - prog0[k] for k in prog1}
        print(f"{mode}: wall {statistics.median(walls):.2f} ms (all {', '.join(f'{w:.1f}' for w in walls)}), "
              f"host {statistics.median(hosts):.2f} ms, "
              f"{(oclcore.runtime.rt.launch_count() - launches0) / a.iters:.0f} kernels/step; "
              f"per step: {per}; programs during the steps: {built}", flush=True)
        print("  garbage collection per step (ms in gen0/1, full collections): " + "; ".join(
            f"{sum(ms for g, ms in c if g < 2):.1f}" + "".join(f", full {ms:.0f}" for g, ms in c if g == 2)
            for c in collections))
        with oclcore.profile() as prof:
            step()
            records = list(prof.records)
        report(timeline(records), a.top)
        del step, model
        torch.ocl.synchronize()


if __name__ == "__main__":
    main()
