"""GEMM parameter tuner: random sampling plus local refinement over the
kernel parameter space, timed on the device with launch events, every
candidate checked against numpy; winners go to the user database.
tune_problem() instead times tiled sets at every split of K on one problem
shape (a layer's GEMM) and records the winner as a measured plan for it.

Host I/O comes from the caller: upload(ndarray) -> buffer,
download(buffer, shape, np_dtype) -> ndarray, alloc(nbytes) -> buffer.
"""
import random
import time

import numpy as np

from . import database, params as P
from . import planner
from .planner import DTYPES, event_elapsed_ns, plan_gemm, run_gemm

TILED_SPACE = dict(MWG=(16, 32, 64, 128), NWG=(16, 32, 64, 128), KWG=(8, 16, 32),
                   MDIMC=(4, 8, 16, 32), NDIMC=(4, 8, 16, 32), MDIMA=(4, 8, 16, 32),
                   NDIMB=(4, 8, 16, 32), KWI=(1, 2, 4, 8), VWM=(1, 2, 4, 8), VWN=(1, 2, 4, 8),
                   STRM=(0, 1), STRN=(0, 1), SA=(0, 1), SB=(0, 1))
DIRECT_SPACE = dict(WGD=(8, 16, 32, 64), MDIMCD=(4, 8, 16, 32), NDIMCD=(4, 8, 16, 32),
                    KWID=(1, 2, 4, 8), VWMD=(1, 2, 4, 8), VWND=(1, 2, 4, 8), PADA=(0, 1),
                    PADB=(0, 1))
# Work-group tiles (M, N, K, threads along M and N, KWI, vector widths) that problem tuning
# tries before random ones: square and oblong tiles of 64 to 256 threads.
COMMON_SETS = [dict(MWG=m, NWG=n, KWG=k, MDIMC=mc, NDIMC=nc, MDIMA=mc, NDIMB=nc, KWI=kwi, VWM=vm, VWN=vn,
                    STRM=1, STRN=1, SA=1, SB=1)
               for m, n, k, mc, nc, kwi, vm, vn in [
                   (64, 64, 32, 8, 8, 4, 4, 4), (64, 128, 32, 8, 16, 4, 4, 4), (128, 64, 32, 16, 8, 4, 4, 4),
                   (64, 128, 16, 16, 16, 2, 4, 4), (128, 64, 16, 16, 16, 2, 4, 4), (64, 64, 32, 16, 16, 4, 4, 4),
                   (64, 64, 16, 16, 8, 2, 4, 4),
                   (32, 128, 32, 8, 16, 4, 4, 4), (128, 32, 32, 16, 8, 4, 4, 4), (32, 64, 32, 8, 8, 4, 4, 4),
                   (64, 32, 32, 8, 8, 4, 4, 4), (128, 128, 16, 16, 16, 2, 4, 4), (64, 128, 32, 16, 16, 4, 4, 4)]]
NP_DTYPE = {"float32": np.float32, "float64": np.float64, "float16": np.float16}
EPS = {"float32": 2.0 ** -24, "float64": 2.0 ** -53, "float16": 2.0 ** -11}


def _normalise(kind, p):
    """Parameters that do not affect the kernel are pinned so that equal
    kernels are not timed twice (MDIMA/NDIMB only matter with SA/SB)."""
    q = dict(p)
    if kind == "tiled":
        if not q["SA"]:
            q["MDIMA"] = q["MDIMC"]
        if not q["SB"]:
            q["NDIMB"] = q["NDIMC"]
    return q


def _key(p):
    return tuple(sorted(p.items()))


def _random_valid(kind, space, device_info, dtype, rng, tries=20000):
    errors = P.tiled_errors if kind == "tiled" else P.direct_errors
    for _ in range(tries):
        p = _normalise(kind, {k: rng.choice(v) for k, v in space.items()})
        if not errors(p, device_info, dtype):
            return p
    return None


def _neighbours(kind, p, space, device_info, dtype):
    errors = P.tiled_errors if kind == "tiled" else P.direct_errors
    out = []
    for k, values in space.items():
        if p[k] not in values:
            continue
        i = values.index(p[k])
        for j in (i - 1, i + 1):
            if 0 <= j < len(values):
                q = _normalise(kind, dict(p, **{k: values[j]}))
                if not errors(q, device_info, dtype):
                    out.append(q)
    return out


class _Problem:
    """Device-resident operands of one tuning problem plus its reference: batch products of an
    M x K A (one shared by every batch when shared_a) and a K x N B (stored N x K when
    trans_b), row-major; or, given ``strides`` ((row, col, batch) of A, B and C in elements,
    non-negative, as plan_gemm takes them), operands laid out exactly so."""

    def __init__(self, M, N, K, dtype, upload, download, alloc, seed, batch=1, trans_b=False, shared_a=False,
                 strides=None):
        rng = np.random.default_rng(seed)
        npd = NP_DTYPE[dtype]
        self.M, self.N, self.K, self.batch, self.dtype, self.download = M, N, K, batch, dtype, download
        if strides is None:
            strides = ((K, 1, 0 if shared_a else M * K), (1, K, N * K) if trans_b else (N, 1, K * N),
                       (N, 1, M * N))
        self.strides = tuple(tuple(st) for st in strides)
        a_s, b_s, c_s = self.strides
        if min(min(st) for st in self.strides) < 0:
            raise ValueError("gemm tuner: negative strides are not supported")
        a_flat = rng.uniform(-1, 1, self._extent(M, K, a_s)).astype(npd)
        b_flat = rng.uniform(-1, 1, self._extent(K, N, b_s)).astype(npd)
        A, B = self._view(a_flat, M, K, a_s), self._view(b_flat, K, N, b_s)
        self.ref = A.astype(np.float64) @ B.astype(np.float64)
        self.tol = 4 * K * EPS[dtype] * (np.abs(A).astype(np.float64) @ np.abs(B)) + 1e-30
        self.a, self.b = upload(a_flat), upload(b_flat)
        self.c_size = self._extent(M, N, c_s)
        self.c = upload(np.zeros(self.c_size, npd))
        self.alloc = alloc

    def _extent(self, rows, cols, st):
        return 1 + planner._max_index(0, rows, cols, st[0], st[1], self.batch, st[2])

    def _view(self, flat, rows, cols, st):
        size = flat.itemsize
        return np.lib.stride_tricks.as_strided(flat, (self.batch, rows, cols), (st[2] * size, st[0] * size, st[1] * size))

    def plan(self, device_info, **kw):
        """plan_gemm for this problem (keywords force kind, params, split)."""
        return plan_gemm(device_info, self.M, self.N, self.K, self.batch, self.dtype, *self.strides, **kw)

    def seconds(self, get_kernel, plan, reps):
        """Median device time (s) of plan's launches (packing and reduction included), or None
        when its result is wrong."""
        run = lambda: run_gemm(plan, get_kernel, self.a, 0, self.b, 0, self.c, 0, 1.0, 0.0,
                               alloc=self.alloc, timing=True)
        run()
        if not self.check():
            return None
        return float(np.median([sum(event_elapsed_ns(e) for e in run()) * 1e-9 for _ in range(reps)]))

    def check(self):
        flat = self.download(self.c, (self.c_size,), NP_DTYPE[self.dtype])
        out = self._view(flat, self.M, self.N, self.strides[2]).astype(np.float64)
        return bool(np.all(np.abs(out - self.ref) <= self.tol))


def _measure(get_kernel, device_info, prob, kind, p, reps):
    """Median kernel time (s) of parameter set p, or None if it fails to
    build, launch or compute the right result."""
    try:
        # split=1: time the kernel itself, not a split-K pair of launches.
        plan = plan_gemm(device_info, prob.M, prob.N, prob.K, 1, prob.dtype, kind=kind, params=p,
                         split=1)
        run = lambda: run_gemm(plan, get_kernel, prob.a, 0, prob.b, 0, prob.c, 0, 1.0, 0.0,
                               alloc=prob.alloc, timing=True)
        run()
        if not prob.check():
            return None
        times = [event_elapsed_ns(run()[-1]) * 1e-9 for _ in range(reps)]
        return float(np.median(times))
    except Exception:  # candidates that fail to build/launch are skipped
        return None


def tune(get_kernel, device_info, upload, download, alloc, kind="tiled", M=None, N=None, K=None,
         dtype="float32", budget_s=60.0, seed=0, reps=3, space=None, save=True, progress=True):
    """Search kind's ('tiled' or 'direct') parameters for an M x N x K problem
    (defaults: 1024^3 on GPUs, 256^3 on CPUs for tiled; 128^3 / 64^3 for
    direct) within budget_s seconds.  Starts from the database's current
    choice, then alternates random valid samples with refinement around the
    best (one parameter moved one step).  Saves the winner to the user
    database when save.  Returns dict(params, gflops, tried, failed)."""
    gpu = "cpu" not in str(device_info.get("type", "gpu")).lower()
    if M is None:
        M = N = K = (1024 if gpu else 256) if kind == "tiled" else (128 if gpu else 64)
    N = N or M
    K = K or M
    space = space or (TILED_SPACE if kind == "tiled" else DIRECT_SPACE)
    rng = random.Random(seed)
    prob = _Problem(M, N, K, dtype, upload, download, alloc, seed)
    flops = 2.0 * M * N * K
    start_p = P.resolve(kind, database.lookup(device_info, kind, dtype), device_info, dtype)
    queue = [_normalise(kind, start_p)]
    seen, results = set(), {}
    best, best_t, failed = None, None, 0
    refine = []
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=int(budget_s), desc="tune %s %s" % (kind, dtype), unit="s", mininterval=1.0)
        except ImportError:
            bar = None
    t0 = time.time()
    n_random = 0
    while time.time() - t0 < budget_s:
        if queue:
            p = queue.pop(0)
        elif refine and n_random >= 3:
            p = refine.pop(rng.randrange(len(refine)))
        else:
            p = _random_valid(kind, space, device_info, dtype, rng)
            n_random += 1
            if p is None:
                break
        k = _key(p)
        if k in seen:
            continue
        seen.add(k)
        t = _measure(get_kernel, device_info, prob, kind, p, reps)
        results[k] = t
        if t is None:
            failed += 1
        elif best_t is None or t < best_t:
            best, best_t = p, t
            refine = [q for q in _neighbours(kind, p, space, device_info, dtype) if _key(q) not in seen]
        if bar is not None:
            now = time.time()
            bar.update(min(int(now - t0), int(budget_s)) - bar.n)
            bar.set_postfix(tried=len(seen), best="%.1f GF/s" % (flops / best_t * 1e-9) if best_t else "-")
    if bar is not None:
        bar.close()
    if best is None:
        return dict(params=None, gflops=0.0, tried=len(seen), failed=failed)
    gflops = flops / best_t * 1e-9
    if save:
        database.save_user_entry(device_info, dtype, kind, best, gflops=round(gflops, 2),
                                 problem=[M, N, K])
    return dict(params=best, gflops=gflops, tried=len(seen), failed=failed)


def tune_crossover(get_kernel, device_info, upload, download, alloc, dtype="float32",
                   sizes=(32, 64, 128, 192, 256, 384, 512), reps=3, save=True):
    """Time direct vs tiled (packing included) on square problems with the
    database's current parameters; the smallest size from which tiled keeps
    winning becomes min_indirect_size.  Returns the crossover dict."""
    winner = {}
    for s in sizes:
        prob = _Problem(s, s, s, dtype, upload, download, alloc, s)
        times = {}
        for kind in ("direct", "tiled"):
            try:
                plan = plan_gemm(device_info, s, s, s, 1, dtype, kind=kind)
                run = lambda: run_gemm(plan, get_kernel, prob.a, 0, prob.b, 0, prob.c, 0,
                                       alloc=alloc, timing=True)
                run()
                if not prob.check():
                    raise RuntimeError("%s kernel gives wrong results at %d" % (kind, s))
                times[kind] = float(np.median(
                    [sum(event_elapsed_ns(e) for e in run()) for _ in range(reps)]))
            except RuntimeError:
                raise
            except Exception:
                times[kind] = float("inf")
        winner[s] = "tiled" if times["tiled"] < times["direct"] else "direct"
    size = sizes[-1] * 2
    for s in reversed(sizes):
        if winner[s] != "tiled":
            break
        size = s
    x = {"min_indirect_size": int(size), "min_indirect_dim": 16}
    if save:
        database.save_user_entry(device_info, dtype, "crossover", x)
    return x


def tune_problem(get_kernel, device_info, upload, download, alloc, M, N, K, batch=1, trans_b=False,
                 shared_a=False, dtype="float32", budget_s=30.0, seed=0, reps=3, save=True, strides=None):
    """Times tiled sets on one problem (see _Problem for the layout) at every split of K the
    planner would consider: the database's sets, COMMON_SETS, then random valid ones until
    budget_s; ``strides`` (see _Problem) lays the operands out as a caller does. Every
    candidate's result is checked. When the best beats the planner's own plan
    by 3% it is recorded for this problem (user database) when save. Returns dict(key, plan_s,
    best_s, params, split, tried, failed)."""
    rng = random.Random(seed)
    prob = _Problem(M, N, K, dtype, upload, download, alloc, seed, batch, trans_b, shared_a, strides)
    key = planner.problem_key(M, N, K, batch, *prob.strides)
    auto = prob.plan(device_info)
    plan_s = prob.seconds(get_kernel, auto, reps)
    if plan_s is None:
        raise RuntimeError("gemm: the planner's plan for %s gives wrong results" % key)
    big = P.resolve("tiled", database.lookup(device_info, "tiled", dtype), device_info, dtype)
    known = [q for _, q, _ in planner._tiled_candidates(device_info, dtype, big, 1.0)] + COMMON_SETS
    queue = [_normalise("tiled", P.complete("tiled", q)) for q in known]
    seen, tried, failed = set(), 0, 0
    best = (plan_s, None, None)
    cu = planner._compute_units(device_info)
    real, acc = DTYPES[dtype][:2]
    t0 = time.time()
    while time.time() - t0 < budget_s:
        q = queue.pop(0) if queue else _random_valid("tiled", TILED_SPACE, device_info, dtype, rng)
        if q is None:
            break
        if _key(q) in seen or P.tiled_errors(q, device_info, dtype):
            continue
        seen.add(_key(q))
        tiles = -(-M // q["MWG"]) * -(-N // q["NWG"]) * batch
        for S in planner._split_candidates(K, q["KWG"], real == acc and tiles < 2 * cu):
            if time.time() - t0 >= budget_s:
                break
            tried += 1
            try:
                t = prob.seconds(get_kernel, prob.plan(device_info, kind="tiled", params=q, split=S), reps)
            except Exception:  # sets the compiler or the device rejects are skipped
                t = None
            if t is None:
                failed += 1
            elif t < best[0]:
                best = (t, q, S)
    best_s, params, split = best
    if save and params is not None and best_s < 0.97 * plan_s:
        database.save_user_problem(device_info, dtype, dict(problem=key, set=params, split=split,
                                                            us=round(best_s * 1e6, 1)))
    return dict(key=key, plan_s=plan_s, best_s=best_s, params=params, split=split, tried=tried, failed=failed)
