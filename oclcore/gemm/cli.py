"""``oclcore tune gemm``: tunes the GEMM kernels of one OpenCL device and
stores the winners in the user database, which the planner prefers over the
shipped entries.

The budget is split between the three searches in proportion to what they
decide: the tiled kernel (most of the FLOPs of large problems), the direct
kernel (small and skinny problems) and the direct/tiled crossover, which is
measured last with the freshly tuned parameters.  With --problems the budget goes to those
shapes instead, each recording its best set and split when it beats the planner; with --model,
to the heaviest problems of one pass of a torchvision model (oclcore.tune_gemms)."""

import sys
import time

import numpy as np

from . import database, tuner

TILED_SHARE, DIRECT_SHARE = 0.6, 0.25   # the crossover gets what is left
CROSSOVER_SIZES = (32, 64, 128, 192, 256, 384, 512)
_MIN_STAGE_S = 1.0


class DeviceIO:
    """The tuner's view of one device through oclcore's runtime: kernels,
    buffers, and host transfers built on Buffer.write / Buffer.read."""

    def __init__(self, index):
        from .. import runtime

        self.dev = runtime.device(index)
        self.info = self.dev.info()
        self._runtime = runtime

    def get_kernel(self, files, defines, name, signature):
        """The runtime's cached kernel on this device."""
        return self._runtime.get_kernel(files, defines, name, signature, self.dev)

    def alloc(self, nbytes):
        """A device buffer of at least one byte."""
        return self.dev.alloc(max(int(nbytes), 1))

    def upload(self, array):
        """A device buffer holding a copy of array."""
        array = np.ascontiguousarray(array)
        buf = self.alloc(array.nbytes)
        if array.nbytes:
            buf.write(array)
        return buf

    def download(self, buf, shape, dtype):
        """The contents of buf as an ndarray of shape and dtype."""
        out = np.empty(shape, dtype)
        if out.nbytes:
            buf.read(out)
        return out


def _problem_sizes(sizes, gpu):
    """(tiled size, direct size, crossover sizes) for the requested square sizes."""
    if not sizes:
        return None, None, CROSSOVER_SIZES
    sizes = sorted({int(s) for s in sizes if int(s) > 0})
    if not sizes:
        raise ValueError("--sizes needs positive sizes")
    direct = min(sizes[0], 256 if gpu else 128)   # the direct kernel only serves small problems
    ladder = sorted(set(s for s in CROSSOVER_SIZES if s <= 2 * sizes[-1]) | set(sizes))
    return sizes[-1], direct, tuple(ladder)


def parse_problem(text):
    """'MxNxK[xBATCH][:AB]' -> (M, N, K, batch, trans_b, shared_a); ValueError with the reason."""
    shape, _, layout = text.partition(":")
    try:
        dims = [int(v) for v in shape.lower().split("x")]
    except ValueError:
        dims = []
    if len(dims) not in (3, 4) or min(dims) < 1:
        raise ValueError("problem %r is not MxNxK or MxNxKxBATCH with positive sizes" % text)
    layout = layout or "nn"
    if len(layout) != 2 or layout[0] not in "ns" or layout[1] not in "nt":
        raise ValueError("problem %r: the layout after ':' is two letters, A's (n or s) and B's (n or t)" % text)
    M, N, K = dims[:3]
    batch = dims[3] if len(dims) == 4 else 1
    return M, N, K, batch, layout[1] == "t", layout[0] == "s"


def _tune_problems(io, problems, budget):
    """tune_problem for each shape, the budget shared equally; returns how many were recorded."""
    recorded = 0
    for text, (M, N, K, batch, trans_b, shared_a) in problems:
        _stage("problem %s, %.0f s" % (text, budget / len(problems)))
        try:
            r = tuner.tune_problem(io.get_kernel, io.info, io.upload, io.download, io.alloc, M, N, K, batch,
                                   trans_b, shared_a, budget_s=budget / len(problems))
        except Exception as e:   # e.g. the problem does not fit the device: report, go on
            print("   skipped: %s" % (e,), flush=True)
            continue
        flops = 2.0 * M * N * K * batch
        line = "   %s: planner %.1f GFLOP/s" % (r["key"], flops / r["plan_s"] * 1e-9)
        if r["params"] is not None and r["best_s"] < 0.97 * r["plan_s"]:
            recorded += 1
            line += ", recorded %.1f GFLOP/s (split %d): %s" % (flops / r["best_s"] * 1e-9, r["split"], r["params"])
        else:
            line += ", kept (nothing 3%% faster among %d plans)" % r["tried"]
        print(line, flush=True)
    return recorded


def _stage(title):
    print("== " + title, flush=True)


def _tune_family(io, kind, size, budget_s):
    """tuner.tune for one kernel family; None (after saying why) when it fails."""
    _stage("%s kernel, %s, %.0f s" % (kind, "%d^3" % size if size else "default size", budget_s))
    try:
        result = tuner.tune(io.get_kernel, io.info, io.upload, io.download, io.alloc, kind=kind,
                            M=size, budget_s=budget_s, progress=True)
    except Exception as e:   # e.g. the problem does not fit the device: report, go on
        print("   skipped: %s" % (e,), flush=True)
        return None
    if result["params"] is None:
        print("   no working configuration among %d tried" % result["tried"], flush=True)
        return None
    print("   best %.1f GFLOP/s after %d configurations (%d failed): %s"
          % (result["gflops"], result["tried"], result["failed"], result["params"]), flush=True)
    return result


def _tune_crossover(io, sizes, deadline):
    _stage("direct/tiled crossover")
    affordable = [s for s in sizes if s <= 128 or time.time() < deadline]
    try:
        x = tuner.tune_crossover(io.get_kernel, io.info, io.upload, io.download, io.alloc,
                                 sizes=tuple(affordable))
    except Exception as e:   # a kernel computing wrong results must not be trusted, nor crash us
        print("   skipped: %s" % (e,), flush=True)
        return None
    print("   tiled from %d^3 (and every dimension >= %d)"
          % (x["min_indirect_size"], x["min_indirect_dim"]), flush=True)
    return x


def _tune_model(args, budget):
    """``--model NAME``: oclcore.tune_gemms on one pass of that torchvision model."""
    try:
        import torch
        import torchvision

        from ..model_tuning import tune_gemms
        model = torchvision.models.get_model(args.model, weights=None)
    except (ImportError, ValueError) as e:
        print("oclcore tune gemm: --model needs torchvision and one of its model names: %s" % e, file=sys.stderr)
        return 2
    if args.batch < 1 or args.image < 1 or args.top < 1:
        print("oclcore tune gemm: --batch, --image and --top must be positive", file=sys.stderr)
        return 2
    device = torch.device("ocl", int(args.device))
    x = torch.randn(args.batch, 3, args.image, args.image).to(device)
    print("Tuning the GEMMs of %s (%s pass, batch %d, %dx%d) on %s, budget %.0f s"
          % (args.model, "training" if args.train else "inference", args.batch, args.image, args.image,
             DeviceIO(int(args.device)).info.get("name"), budget), flush=True)
    report = tune_gemms(model.to(device), x, train=args.train, budget_s=budget, top=args.top,
                        progress=lambda text: print("   " + text, flush=True))
    saved = sum((r.planner_us - r.best_us) * r.count for r in report if r.recorded)
    print("Recorded %d of %d plans, %.1f us less GEMM time per pass, in %s."
          % (sum(r.recorded for r in report), len(report), saved, database.user_db_path()), flush=True)
    return 0


def main(args):
    """Run ``oclcore tune gemm`` with parsed arguments (what, budget, sizes,
    device). Returns the process exit status."""
    if getattr(args, "what", "gemm") != "gemm":
        print("oclcore tune: only 'gemm' can be tuned", file=sys.stderr)
        return 2
    budget = float(args.budget)
    if budget <= 0:
        print("oclcore tune gemm: --budget must be positive", file=sys.stderr)
        return 2
    try:
        io = DeviceIO(int(args.device))
    except Exception as e:
        print("oclcore tune gemm: no OpenCL device %s: %s" % (args.device, e), file=sys.stderr)
        return 1
    if getattr(args, "model", None):
        return _tune_model(args, budget)
    problems = getattr(args, "problems", None)
    if problems:
        try:
            problems = [(p, parse_problem(p)) for p in problems]
        except ValueError as e:
            print("oclcore tune gemm: %s" % e, file=sys.stderr)
            return 2
        print("Tuning %d GEMM problems on %s, budget %.0f s" % (len(problems), io.info.get("name"), budget),
              flush=True)
        recorded = _tune_problems(io, problems, budget)
        if recorded:
            print("Wrote %d measured plans to %s." % (recorded, database.user_db_path()), flush=True)
        return 0
    gpu = "cpu" not in str(io.info.get("type", "gpu")).lower()
    try:
        tiled_size, direct_size, cross_sizes = _problem_sizes(args.sizes, gpu)
    except ValueError as e:
        print("oclcore tune gemm: %s" % e, file=sys.stderr)
        return 2
    print("Tuning GEMM on %s (%s), budget %.0f s" % (io.info.get("name"), io.info.get("platform"), budget),
          flush=True)
    start = time.time()
    saved = []
    if _tune_family(io, "tiled", tiled_size, max(budget * TILED_SHARE, _MIN_STAGE_S)):
        saved.append("tiled")
    left = budget - (time.time() - start)
    if _tune_family(io, "direct", direct_size, max(min(budget * DIRECT_SHARE, left), _MIN_STAGE_S)):
        saved.append("direct")
    if _tune_crossover(io, cross_sizes, start + budget):
        saved.append("crossover")
    print("Took %.0f s." % (time.time() - start))
    if not saved:
        print("Nothing was written: no configuration ran correctly on this device.", flush=True)
        return 1
    print("Wrote %s to %s (used in preference to the shipped database)."
          % (", ".join(saved), database.user_db_path()), flush=True)
    return 0
