"""Tuning the GEMMs of one model on this device: ``oclcore.tune_gemms(model, x)``.

One pass of the model (eval forward under no_grad, or with ``train=True`` forward and backward
of the outputs' sum) runs with oclcore's launch replay off, so that every layer plans, and the
GEMM planner's entry point logs each problem it receives (its sizes and operand layouts, from
convolutions, linear layers and matmuls alike). The planner's plan for each problem is timed on
the device; the heaviest problems (time times how often the pass issues it) without a measured
plan yet go to the tuner, which records a plan 3% faster than the planner's in the user
database (as ``oclcore tune gemm --problems`` does). Later processes plan those problems that
way: the records are keyed by sizes and layout, so they serve the same model at the same batch
size and image size."""

import collections
import statistics
import time

import torch

from .gemm import database, planner, tuner
from .gemm.cli import DeviceIO
from .ops import memo

Problem = collections.namedtuple("Problem", "M N K batch a_strides b_strides c_strides")
Tuned = collections.namedtuple("Tuned", "key count planner_us best_us recorded")


def model_problems(model, *inputs, train=False):
    """Counter of the GEMM Problems one eager pass of ``model`` on ``inputs`` (on ocl) plans."""
    logged = collections.Counter()
    original_plan, original_memo = planner._cached_plan, memo.Memo.__call__

    def logging_plan(info, M, N, K, batch, dtype, a_s, b_s, c_s, *rest):
        if dtype == "float32":
            logged[Problem(M, N, K, batch, a_s, b_s, c_s)] += 1
        return original_plan(info, M, N, K, batch, dtype, a_s, b_s, c_s, *rest)

    planner._cached_plan = logging_plan
    memo.Memo.__call__ = lambda self, key, inputs, run: run()
    try:
        if train:
            model.train()
            out = model(*inputs)
            loss = sum(t.float().sum() for t in _tensors(out))
            loss.backward()
        else:
            model.eval()
            with torch.no_grad():
                model(*inputs)
    finally:
        planner._cached_plan, memo.Memo.__call__ = original_plan, original_memo
    return logged


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in _tensors(o)] if isinstance(out, (list, tuple)) else []


def plan_seconds(io, problem, reps=3):
    """Median device time (s) of the planner's plan for ``problem`` on uninitialised operands."""
    M, N, K, batch, a_s, b_s, c_s = problem
    plan = planner.plan_gemm(io.info, M, N, K, batch, "float32", a_s, b_s, c_s)

    def extent(rows, cols, st):   # bytes
        return 4 * (1 + planner._max_index(0, rows, cols, st[0], st[1], batch, st[2]))

    a, b, c = io.alloc(extent(M, K, a_s)), io.alloc(extent(K, N, b_s)), io.alloc(extent(M, N, c_s))
    run = lambda: planner.run_gemm(plan, io.get_kernel, a, 0, b, 0, c, 0, alloc=io.alloc, timing=True)
    run()
    return statistics.median(sum(planner.event_elapsed_ns(e) for e in run()) * 1e-9 for _ in range(reps))


Ranked = collections.namedtuple("Ranked", "seconds problem count key")


def rank(io, counts):
    """The problems of ``counts`` (a Counter of Problems) without a measured plan on io's device,
    as Ranked(seconds of the planner's plan, problem, count, database key), heaviest (seconds
    times count) first. Empty problems and those with negative strides (the tuner cannot lay
    them out) are left out."""
    ranked = []
    for problem, count in counts.items():
        key = planner.problem_key(*problem)
        if min(problem[:4]) > 0 and min(min(st) for st in problem[4:]) >= 0 \
                and database.measured(io.info, "float32", key) is None:
            ranked.append(Ranked(plan_seconds(io, problem), problem, count, key))
    ranked.sort(key=lambda r: -r.seconds * r.count)
    return ranked


def tune_ranked(io, ranked, budget_s, progress=None):
    """The tuner on each Ranked problem in turn, sharing ``budget_s`` seconds; winners 3% faster
    than the planner are recorded in the user database. Returns a list of Tuned."""
    report, start = [], time.time()
    for i, r in enumerate(ranked):
        share = (budget_s - (time.time() - start)) / (len(ranked) - i)
        t = tuner.tune_problem(io.get_kernel, io.info, io.upload, io.download, io.alloc, *r.problem[:4],
                               budget_s=max(share, 0.0), strides=r.problem[4:])
        recorded = t["params"] is not None and t["best_s"] < 0.97 * t["plan_s"]
        report.append(Tuned(r.key, r.count, t["plan_s"] * 1e6, t["best_s"] * 1e6, recorded))
        if progress is not None:
            progress(f"{r.key} x{r.count}: planner {t['plan_s'] * 1e6:.1f} us, best {t['best_s'] * 1e6:.1f} us"
                     f"{' (recorded)' if recorded else ''}")
    return report


def tune_gemms(model, *inputs, train=False, budget_s=60.0, top=20, progress=None):
    """Tunes the GEMM problems of one pass of ``model`` on ``inputs`` (both on an ocl device):
    the ``top`` heaviest without a measured plan share ``budget_s`` seconds of the tuner (timing
    every problem's planner plan, to rank them, comes on top), and winners are recorded in the
    user database. ``progress(text)`` hears about each problem. Returns a list of
    Tuned(key, count, planner_us, best_us, recorded), heaviest first."""
    device = next((t.device for t in inputs if isinstance(t, torch.Tensor)), None)
    if device is None or device.type != "ocl":
        raise ValueError("oclcore.tune_gemms: the inputs must be tensors on an ocl device")
    if budget_s <= 0 or top < 1:
        raise ValueError("oclcore.tune_gemms: budget_s must be positive and top at least 1")
    io = DeviceIO(device.index or 0)
    return tune_ranked(io, rank(io, model_problems(model, *inputs, train=train))[:top], budget_s, progress)
