"""Tiled GEMM parameter sets on deep-learning shapes (kernel times from OpenCL events): the
planner's plan next to every candidate set forced in turn (the planner still picks packing and
split-K for each), per problem. The data behind the database's shape-class sets.

Problems: the deep-learning rows of bench/gemm.py, and the 1x1 convolutions of efficientnet_b0
and mobilenet_v2 as GEMMs at batch 64 (forward: the weight shared by every image).

    python bench/probes/gemm_sets.py [--candidates 48] [--seed 0] [--out sets.json]

--splits times the database's sets and the tuner's COMMON_SETS (no random sets) at every split of K
the planner would consider for each problem, so that the cost model's occupancy and split terms
can be fitted offline against complete data.

--records FILE... prints, from earlier --out files, the database "problems" records (measured
plans) of every problem whose best set and split beat the planner's plan by 3% (no device needed).
"""
import argparse
import collections
import json
import random
import statistics
import sys
import time

import torch
import torchvision

import oclcore  # noqa: F401  (registers the ocl device)
from oclcore import runtime
from oclcore.gemm import params as P, planner, tuner
from oclcore.ops import linalg

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from gemm import DL_SHAPES  # noqa: E402

def problems(batch):
    """name -> (M, N, K, batch, a strides, b strides, c strides)."""
    out = collections.OrderedDict()
    for name, (M, N, K, b, tb) in DL_SHAPES.items():
        sb = (1, K, N * K) if tb else (N, 1, K * N)
        out[name] = (M, N, K, b, (K, 1, M * K), sb, (N, 1, M * N))
    seen = set()
    for net in ("efficientnet_b0", "mobilenet_v2"):
        m = torchvision.models.get_model(net)
        found = []

        def hook(mod, inp, o):
            if mod.kernel_size == (1, 1) and mod.groups == 1 and o.shape[-1] > 1:
                found.append((mod.out_channels, o.shape[-1] * o.shape[-2], mod.in_channels))
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.register_forward_hook(hook)
        with torch.no_grad():
            m.eval()(torch.randn(1, 3, 224, 224))
        for Co, HW, Ci in found:
            if (Co, HW, Ci) not in seen:
                seen.add((Co, HW, Ci))
                out[f"{net} 1x1 {Ci}->{Co} {HW}"] = (Co, HW, Ci, batch, (Ci, 1, 0), (HW, 1, Ci * HW),
                                                     (HW, 1, Co * HW))
    return out


def kernel_seconds(plan, get, bufs, dev, reps=5):
    a, b, c = bufs
    ts = []
    for _ in range(reps + 1):
        ev = planner.run_gemm(plan, get, a, 0, b, 0, c, 0, alloc=dev.alloc, timing=True)
        torch.ocl.synchronize()
        ts.append(sum(e.end_ns - e.start_ns for e in ev) * 1e-9)
    return statistics.median(ts[1:])


def records(paths, batch):
    """The measured-plan records of the --out files at ``paths`` (later files win per problem)."""
    shapes = problems(batch)
    found = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for row in data["results"]:
            timed = [s for s in row["sets"] if "us" in s]
            if not timed or row["problem"] not in shapes:
                continue
            best = min(timed, key=lambda s: s["us"])
            if best["us"] < 0.97 * row["auto_us"]:
                M, N, K, B, sa, sb, sc = shapes[row["problem"]]
                q = tuner._normalise("tiled", P.complete("tiled", data["candidates"][best["index"]]))
                found[row["problem"]] = dict(problem=planner.problem_key(M, N, K, B, sa, sb, sc), set=q,
                                             split=best["split"], us=round(best["us"], 1),
                                             note="%s: planner %.1f us" % (row["problem"], row["auto_us"]))
    return list(found.values())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=48, help="random valid sets beside the common ones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64, help="images of the 1x1 convolution problems")
    p.add_argument("--only", default="", help="substring filter on problem names")
    p.add_argument("--splits", action="store_true", help="every candidate split per set (no random sets)")
    p.add_argument("--out", default=None, help="JSON file for every timing")
    p.add_argument("--records", nargs="+", metavar="FILE", help="print measured-plan records from --out files")
    a = p.parse_args()
    if a.records:
        print(json.dumps(records(a.records, a.batch), indent=1, sort_keys=True))
        return
    ctx = linalg.device_context(0)
    info = ctx.info
    dev = runtime.device(0)
    print("device:", info.get("name"), info.get("driver_version"), flush=True)
    get = lambda f, d, n, s: runtime.get_kernel(f, d, n, s, dev)
    rng = random.Random(a.seed)
    space = dict(tuner.TILED_SPACE, MWG=(32, 64, 128), NWG=(32, 64, 128), KWG=(16, 32), VWM=(2, 4),
                 VWN=(2, 4), KWI=(2, 4, 8), MDIMC=(8, 16, 32), NDIMC=(8, 16, 32))
    cands, keys = [], set()
    big = planner.database.lookup(info, "tiled", "float32")
    small = planner.database.lookup(info, "tiled_small", "float32")
    for q in [s for s in (big, small) if s] + tuner.COMMON_SETS:
        q = tuner._normalise("tiled", P.complete("tiled", q))
        if not P.tiled_errors(q, info, "float32") and tuner._key(q) not in keys:
            keys.add(tuner._key(q))
            cands.append(q)
    tries = 0
    while not a.splits and len(cands) < len(tuner.COMMON_SETS) + 2 + a.candidates and tries < 100000:
        tries += 1
        q = tuner._random_valid("tiled", space, info, "float32", rng)
        if q is not None and tuner._key(q) not in keys and q["MDIMC"] * q["NDIMC"] >= 64:
            keys.add(tuner._key(q))
            cands.append(q)
    print(f"{len(cands)} candidate sets", flush=True)
    results = []
    totals = collections.defaultdict(float)
    t_start = time.time()
    for name, (M, N, K, B, sa, sb, sc) in problems(a.batch).items():
        if a.only and a.only not in name:
            continue
        A = torch.randn(max(sa[2] * B, M * K), device="ocl")
        Bt = torch.randn(K * N * B, device="ocl")
        C = torch.empty(M * N * B, device="ocl")
        bufs = (A._buf, Bt._buf, C._buf)
        auto = planner.plan_gemm(info, M, N, K, B, "float32", sa, sb, sc)
        t_auto = kernel_seconds(auto, get, bufs, dev)
        row = dict(problem=name, M=M, N=N, K=K, batch=B, auto_us=t_auto * 1e6,
                   auto=dict(kind=auto.kind, params=auto.params, split=auto.split), sets=[])
        best = (t_auto, None, auto)
        for i, q in enumerate(cands):
            splits = (None,)
            if a.splits:
                tiles = -(-M // q["MWG"]) * -(-N // q["NWG"]) * B  # (either orientation: a bound)
                splits = planner._split_candidates(K, q["KWG"], tiles < 2 * planner._compute_units(info))
            for S in splits:
                try:
                    plan = planner.plan_gemm(info, M, N, K, B, "float32", sa, sb, sc, kind="tiled", params=q,
                                             split=S)
                    t = kernel_seconds(plan, get, bufs, dev)
                except Exception as e:  # a set the compiler or device rejects
                    row["sets"].append(dict(index=i, split=S, error=str(e)[:80]))
                    continue
                row["sets"].append(dict(index=i, us=t * 1e6, split=plan.split))
                if t < best[0]:
                    best = (t, i, plan)
        flops = 2.0 * M * N * K * B
        totals["auto"] += t_auto
        totals["best"] += best[0]
        print(f"{name:40s} auto {auto.kind[0]}{auto.family[-5:]:>6s} S{auto.split:<3d} {t_auto * 1e6:8.1f} us "
              f"{flops / t_auto / 1e9:7.0f} GF/s | best set {best[1]} S{best[2].split:<3d} {best[0] * 1e6:8.1f} us "
              f"{flops / best[0] / 1e9:7.0f} GF/s  ({time.time() - t_start:.0f}s)", flush=True)
        results.append(row)
        if a.out:  # after every problem, so that a run cut short keeps what it measured
            with open(a.out, "w") as f:
                json.dump(dict(device=info.get("name"), candidates=cands, results=results), f)
    print(f"total auto {totals['auto'] * 1e3:.3f} ms, best per problem {totals['best'] * 1e3:.3f} ms")
    # sets ranked by total time over the problems where every set ran (geometric view of fit)
    score = []
    for i, q in enumerate(cands):
        ts = [next((s["us"] for s in r["sets"] if s["index"] == i and "us" in s), None) for r in results]
        if all(t is not None for t in ts):
            rel = [t / min(r["auto_us"], *(s.get("us", 1e30) for s in r["sets"])) for t, r in zip(ts, results)]
            score.append((sum(ts), statistics.geometric_mean(rel), i))
    score.sort()
    for tot, g, i in score[:12]:
        print(f"set {i:3d} total {tot / 1e3:8.3f} ms geo-rel {g:5.2f} {cands[i]}")


if __name__ == "__main__":
    main()
