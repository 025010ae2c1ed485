"""The GEMM problems a network's eager pass issues on ocl, the planner's kernel time for each
(weighted by how often the pass issues it), and with --tune SECONDS the tuner on the heaviest
ones: a measured plan 3% faster than the planner's is recorded in the user database (as
``oclcore tune gemm --problems`` does), whose "problems" records can then be shipped.

One pass of each network (bench/nets.py's models, random weights): eval forward under no_grad
(--mode infer) or forward and backward (--mode train), with oclcore's launch replay switched off
so that every layer plans, and the GEMM planner's entry point wrapped to log every problem.
Problems already recorded in the database, and those running faster than --fast, are not tuned.
With several models the problems are pooled (per-pass weights add up).

    python bench/probes/net_gemms.py --models inception_v3 --batch 64 --mode infer --tune 200 --top 25
"""
import argparse
import collections
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from nets import build_model  # noqa: E402

import oclcore  # noqa: E402,F401  (registers the ocl device)
from oclcore.gemm import database, planner, tuner  # noqa: E402
from oclcore.gemm.cli import DeviceIO  # noqa: E402
from oclcore.ops import memo  # noqa: E402


def pass_problems(name, batch, image, device, train):
    """Counter of the (M, N, K, batch, a strides, b strides, c strides) of every GEMM one eager
    pass of network ``name`` plans."""
    logged = collections.Counter()
    original_plan, original_memo = planner._cached_plan, memo.Memo.__call__

    def logging_plan(info, M, N, K, b, dtype, a_s, b_s, c_s, *rest):
        logged[(M, N, K, b, a_s, b_s, c_s)] += 1
        return original_plan(info, M, N, K, b, dtype, a_s, b_s, c_s, *rest)

    model = build_model(name, image, train).to(device)
    x = torch.randn(batch, 3, image, image, device=device)
    planner._cached_plan = logging_plan
    memo.Memo.__call__ = lambda self, key, inputs, run: run()
    try:
        if train:
            out = model.train()(x)
            (out if isinstance(out, torch.Tensor) else out[0]).sum().backward()
        else:
            with torch.no_grad():
                model.eval()(x)
    finally:
        planner._cached_plan, memo.Memo.__call__ = original_plan, original_memo
    return logged


def plan_seconds(io, prob, reps=3):
    """Median kernel time (s) of the planner's plan for ``prob`` (uninitialised operands: only
    timing, no check; the tuner checks what it records)."""
    M, N, K, batch, a_s, b_s, c_s = prob
    plan = planner.plan_gemm(io.info, M, N, K, batch, "float32", a_s, b_s, c_s)

    def extent(rows, cols, strides):
        return 4 * (1 + (rows - 1) * abs(strides[0]) + (cols - 1) * abs(strides[1]) + (batch - 1) * abs(strides[2]))

    a, b, c = io.alloc(extent(M, K, a_s)), io.alloc(extent(K, N, b_s)), io.alloc(extent(M, N, c_s))
    run = lambda: planner.run_gemm(plan, io.get_kernel, a, 0, b, 0, c, 0, alloc=io.alloc, timing=True)
    run()
    return statistics.median(sum(planner.event_elapsed_ns(e) for e in run()) * 1e-9 for _ in range(reps))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=lambda s: [m for m in s.split(",") if m], default=["inception_v3"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--mode", choices=("infer", "train"), default="infer")
    p.add_argument("--tune", type=float, default=0.0, help="tuner seconds, shared by the --top problems")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--fast", type=float, default=35.0,
                   help="TFLOP/s above which a problem is not tuned (already near the kernels' best)")
    p.add_argument("--device", type=int, default=0)
    a = p.parse_args()
    ocl = torch.device("ocl", a.device)
    io = DeviceIO(a.device)
    counts = collections.Counter()
    for name in a.models:
        counts.update(pass_problems(name, a.batch, a.image, ocl, a.mode == "train"))
    rows = []
    for prob, count in counts.items():
        seconds = plan_seconds(io, prob)
        tflops = 2.0 * prob[0] * prob[1] * prob[2] * prob[3] / seconds * 1e-12
        key = planner.problem_key(*prob)
        rows.append((count * seconds, key, count, seconds, tflops, prob,
                     database.measured(io.info, "float32", key) is not None))
    rows.sort(key=lambda row: -row[0])
    total = sum(row[0] for row in rows)
    print(f"{','.join(a.models)} b{a.batch} {a.mode}: {len(rows)} GEMM problems, {total * 1e3:.2f} ms of planned GEMM "
          f"kernels per pass on {io.info.get('name')}")
    for weighted, key, count, seconds, tflops, prob, recorded in rows:
        why = " (recorded)" if recorded else ""
        print(f"  {key:34s} x{count:<3d} {seconds * 1e6:8.1f} us {tflops:5.1f} TFLOP/s {weighted * 1e3:6.3f} ms{why}")
    chosen = [row for row in rows if not row[6] and row[4] < a.fast and min(min(st) for st in row[5][4:]) >= 0][:a.top]
    if a.tune <= 0 or not chosen:
        return
    saved = 0.0
    for weighted, key, count, seconds, tflops, prob, recorded in chosen:
        M, N, K, batch = prob[:4]
        r = tuner.tune_problem(io.get_kernel, io.info, io.upload, io.download, io.alloc, M, N, K, batch,
                               budget_s=a.tune / len(chosen), strides=prob[4:])
        gain = r["plan_s"] - r["best_s"] if r["best_s"] < 0.97 * r["plan_s"] else 0.0
        saved += gain * count
        print(f"tuned {key:34s} planner {r['plan_s'] * 1e6:8.1f} us, best {r['best_s'] * 1e6:8.1f} us "
              f"(split {r['split']}, {r['tried']} plans){' recorded' if gain else ''}", flush=True)
    print(f"recorded plans save {saved * 1e3:.2f} ms per pass (of {total * 1e3:.2f}); user database: "
          f"{database.user_db_path()}")


if __name__ == "__main__":
    main()
