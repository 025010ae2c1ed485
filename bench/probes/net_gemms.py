"""The GEMM problems of the seed networks' eager passes on ocl (oclcore.model_tuning), pooled
over several networks: each problem's planner time and TFLOP/s, weighted by how often the
passes issue it, and with --tune SECONDS the tuner on the heaviest ones that have no measured
plan and run below --fast TFLOP/s. Winners land in the user database, from which
bench/probes/ship_records.py copies them into the shipped one.

    python bench/probes/net_gemms.py --models inception_v3,resnet50 --batch 64 --mode infer --tune 200 --top 25
"""
import argparse
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from nets import build_model  # noqa: E402

import oclcore  # noqa: E402,F401  (registers the ocl device)
from oclcore import model_tuning  # noqa: E402
from oclcore.gemm import database  # noqa: E402
from oclcore.gemm.cli import DeviceIO  # noqa: E402


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
    train = a.mode == "train"
    counts = collections.Counter()
    for name in a.models:
        x = torch.randn(a.batch, 3, a.image, a.image, device=ocl)
        counts.update(model_tuning.model_problems(build_model(name, a.image, train).to(ocl), x, train=train))
    ranked = model_tuning.rank(io, counts)
    tflops = {r.key: 2.0 * r.problem.M * r.problem.N * r.problem.K * r.problem.batch / r.seconds * 1e-12
              for r in ranked}
    total = sum(r.seconds * r.count for r in ranked)
    print(f"{','.join(a.models)} b{a.batch} {a.mode}: {len(counts)} GEMM problems, {len(ranked)} without a measured "
          f"plan taking {total * 1e3:.2f} ms of planned GEMM kernels per pass on {io.info.get('name')}")
    for r in ranked:
        print(f"  {r.key:34s} x{r.count:<3d} {r.seconds * 1e6:8.1f} us {tflops[r.key]:5.1f} TFLOP/s "
              f"{r.seconds * r.count * 1e3:6.3f} ms")
    chosen = [r for r in ranked if tflops[r.key] < a.fast][:a.top]
    if a.tune <= 0 or not chosen:
        return
    report = model_tuning.tune_ranked(io, chosen, a.tune, progress=lambda text: print("tuned " + text, flush=True))
    saved = sum((t.planner_us - t.best_us) * t.count for t in report if t.recorded)
    print(f"recorded plans save {saved * 1e-3:.2f} ms per pass (of {total * 1e3:.2f}); user database: "
          f"{database.user_db_path()}")


if __name__ == "__main__":
    main()
