"""The GEMM tuner end to end on ocl:0 (PoCL here): it searches, writes the
user database (redirected to a temporary OCLCORE_CACHE_DIR), the planner
then uses the tuned parameters, failing candidates are skipped, and the
``oclcore tune gemm`` command runs."""

import json

import numpy as np
import pytest

import oclcore.__main__
from oclcore import runtime
from oclcore.gemm import database, planner, tuner
from oclcore.gemm.cli import DeviceIO


@pytest.fixture
def user_db(tmp_path, monkeypatch):
    """A fresh, empty user database for this test."""
    monkeypatch.setenv("OCLCORE_CACHE_DIR", str(tmp_path))
    path = database.user_db_path()
    assert path.startswith(str(tmp_path))
    return path


# Small corners of the search spaces: PoCL compiles some large register tiles for 20 s, which a
# test cannot afford; the search itself is the same.
SMALL_TILED = dict(MWG=(16, 32), NWG=(16, 32), KWG=(8, 16), MDIMC=(8,), NDIMC=(8,), MDIMA=(8,),
                   NDIMB=(8,), KWI=(1, 2), VWM=(1, 2), VWN=(1, 2), STRM=(0,), STRN=(0,), SA=(0, 1),
                   SB=(0, 1))
SMALL_DIRECT = dict(WGD=(8, 16), MDIMCD=(8,), NDIMCD=(8,), KWID=(1, 2), VWMD=(1,), VWND=(1,),
                    PADA=(1,), PADB=(0, 1))


@pytest.fixture(scope="module")
def io():
    return DeviceIO(0)


def _entry(path, io):
    with open(path) as f:
        entries = json.load(f)["entries"]
    mine = [e for e in entries if e["device"] == io.info["name"] and e["dtype"] == "float32"]
    assert len(mine) == 1, entries
    return mine[0]


def _gemm_matches_numpy(io, M, N, K):
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    a, b, c = io.upload(A), io.upload(B), io.upload(np.full((M, N), np.nan, np.float32))
    planner.gemm(io.get_kernel, io.info, a, 0, K, 1, b, 0, N, 1, c, 0, N, 1, M, N, K, alloc=io.alloc)
    out = io.download(c, (M, N), np.float32)
    ref = A.astype(np.float64) @ B
    tol = 4 * (K + 3) * 2.0 ** -24 * (np.abs(A).astype(np.float64) @ np.abs(B))
    assert np.all(np.abs(out - ref) <= tol)


def test_tune_writes_user_entry_that_the_planner_prefers(user_db, io):
    shipped = database.lookup(io.info, "tiled")
    result = tuner.tune(io.get_kernel, io.info, io.upload, io.download, io.alloc, kind="tiled",
                        M=64, budget_s=10, seed=1, space=SMALL_TILED,
                        progress=False)
    assert result["params"] is not None and result["gflops"] > 0
    assert result["tried"] >= 2
    entry = _entry(user_db, io)
    assert entry["tiled"] == result["params"]
    assert entry["meta"]["tiled"]["problem"] == [64, 64, 64]
    assert database.lookup(io.info, "tiled") == result["params"]
    plan = planner.plan_gemm(io.info, 300, 300, 300, kind="tiled", split=1)
    assert plan.params == result["params"]
    if result["params"] != shipped:   # the plan cache must notice the new database
        # the automatic plan uses the tuned set or the small set derived from it
        tuned = (result["params"], planner._small_set(io.info, "float32", result["params"])[0])
        assert planner._cached_plan(io.info, 300, 300, 300, 1, "float32", (300, 1, 0), (300, 1, 0),
                                    (300, 1, 0), 0, 0, None, None).params in tuned
    _gemm_matches_numpy(io, 300, 300, 300)


def test_candidates_that_fail_to_build_are_skipped(user_db, io):
    """Every direct candidate with PADB == 0 (the database's starting point on PoCL has it) gets
    broken source; the search reports those as failed and still finds a working one."""
    def get_kernel(files, defines, name, signature):
        broken = "this is not OpenCL C;" if defines.get("PADB") == 0 else ""
        return runtime.get_kernel(files, defines, name, signature, io.dev, extra_source=broken)

    space = dict(tuner.DIRECT_SPACE, WGD=(16, 32), MDIMCD=(8,), NDIMCD=(8,), KWID=(2,), VWMD=(1,),
                 VWND=(1, 2), PADA=(1,))
    start = database.lookup(io.info, "direct")
    result = tuner.tune(get_kernel, io.info, io.upload, io.download, io.alloc, kind="direct", M=32,
                        budget_s=3, space=space, progress=False)
    assert result["params"] is not None
    assert result["params"]["PADB"] == 1
    if start.get("PADB") == 0:
        assert result["failed"] >= 1
    assert _entry(user_db, io)["direct"] == result["params"]


def test_wrong_results_are_rejected(io):
    """A candidate computing wrong numbers is never chosen: _measure returns None for it."""
    prob = tuner._Problem(32, 32, 32, "float32", io.upload, io.download, io.alloc, 0)
    params = database.lookup(io.info, "direct")

    def get_kernel(files, defines, name, signature):
        k = io.get_kernel(files, defines, name, signature)

        class Wrong:
            def launch(self, gsize, lsize, args):
                args = list(args)
                args[3] = 2.0 * args[3]           # alpha doubled: wrong result
                return k.launch(gsize, lsize, args)

            def launch_timed(self, gsize, lsize, args):
                return self.launch(gsize, lsize, args)
        return Wrong()

    assert tuner._measure(io.get_kernel, io.info, prob, "direct", params, 1) is not None
    assert tuner._measure(get_kernel, io.info, prob, "direct", params, 1) is None


def test_cli_tune_gemm(user_db, io, capsys, monkeypatch):
    monkeypatch.setattr(tuner, "TILED_SPACE", SMALL_TILED)
    monkeypatch.setattr(tuner, "DIRECT_SPACE", SMALL_DIRECT)
    rc = oclcore.__main__.main(["tune", "gemm", "--budget", "8", "--sizes", "64"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert user_db in out
    entry = _entry(user_db, io)
    for family in ("tiled", "direct", "crossover"):
        assert family in entry, entry
    assert database.lookup(io.info, "crossover") == entry["crossover"]
    _gemm_matches_numpy(io, 70, 90, 50)


def test_cli_rejects_bad_arguments(user_db, capsys):
    assert oclcore.__main__.main(["tune", "gemm", "--budget", "0"]) == 2
    assert oclcore.__main__.main(["tune", "gemm", "--budget", "5", "--sizes", "0"]) == 2
    assert oclcore.__main__.main(["tune", "gemm", "--budget", "5", "--device", "99"]) == 1


# ---- measured plans of problem shapes -------------------------------------------------------------

SMALL_SET = dict(MWG=32, NWG=16, KWG=16, MDIMC=8, NDIMC=8, MDIMA=8, NDIMB=8, KWI=2, VWM=2, VWN=2, STRM=0,
                 STRN=0, SA=1, SB=1)


def _batched_matches_numpy(io, M, N, K, batch):
    """C[b] = A[b] @ B[b]^T (B stored N x K) through planner.gemm, against numpy."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((batch, M, K)).astype(np.float32)
    B = rng.standard_normal((batch, N, K)).astype(np.float32)
    a, b, c = io.upload(A), io.upload(B), io.upload(np.full((batch, M, N), np.nan, np.float32))
    planner.gemm(io.get_kernel, io.info, a, 0, K, 1, b, 0, 1, K, c, 0, N, 1, M, N, K, batch=batch,
                 a_bs=M * K, b_bs=N * K, c_bs=M * N, alloc=io.alloc)
    ref = A.astype(np.float64) @ B.transpose(0, 2, 1)
    tol = 4 * (K + 3) * 2.0 ** -24 * (np.abs(A).astype(np.float64) @ np.abs(B).transpose(0, 2, 1))
    assert np.all(np.abs(io.download(c, (batch, M, N), np.float32) - ref) <= tol)


def test_a_measured_plan_is_what_the_planner_takes(user_db, io):
    """A problem's recorded set and split replace the cost model's choice for that shape and layout
    only; a record the device cannot run is ignored."""
    M, N, K, batch = 40, 36, 300, 2
    strides = ((K, 1, M * K), (1, K, N * K), (N, 1, M * N))
    key = planner.problem_key(M, N, K, batch, *strides)
    assert key == "36x40x300x2 ak bk"   # C is computed transposed (contiguous along N)
    before = planner.plan_gemm(io.info, M, N, K, batch, "float32", *strides)
    database.save_user_problem(io.info, "float32", dict(problem=key, set=SMALL_SET, split=2))
    plan = planner.plan_gemm(io.info, M, N, K, batch, "float32", *strides)
    assert (plan.family, plan.params, plan.split) == ("measured", tuner.P.complete("tiled", SMALL_SET), 2)
    other = planner.plan_gemm(io.info, M, N, K + 1, batch, "float32", (K + 1, 1, M * (K + 1)),
                              (1, K + 1, N * (K + 1)), strides[2])
    assert other.family != "measured"
    _batched_matches_numpy(io, M, N, K, batch)   # through the plan cache, which sees the new record
    database.save_user_problem(io.info, "float32", dict(problem=key, set=dict(SMALL_SET, MWG=1 << 16), split=2))
    assert len(_entry(user_db, io)["problems"]) == 1
    again = planner.plan_gemm(io.info, M, N, K, batch, "float32", *strides)
    assert (again.family, again.params, again.split) == (before.family, before.params, before.split)


def test_tune_problem_times_sets_and_splits_and_records_the_winner(user_db, io, monkeypatch):
    monkeypatch.setattr(tuner, "TILED_SPACE", SMALL_TILED)
    monkeypatch.setattr(tuner, "COMMON_SETS", [SMALL_SET])
    r = tuner.tune_problem(io.get_kernel, io.info, io.upload, io.download, io.alloc, 40, 36, 300, 2,
                           trans_b=True, budget_s=6)
    assert r["key"] == "36x40x300x2 ak bk" and r["tried"] >= 2 and r["plan_s"] > 0
    record = database.measured(io.info, "float32", r["key"])
    if r["params"] is not None and r["best_s"] < 0.97 * r["plan_s"]:
        assert record["set"] == r["params"] and record["split"] == r["split"]
        assert planner.plan_gemm(io.info, 40, 36, 300, 2, "float32", (300, 1, 12000), (1, 300, 10800),
                                 (36, 1, 1440)).family == "measured"
    else:
        assert record is None
    _batched_matches_numpy(io, 40, 36, 300, 2)


@pytest.mark.parametrize("strides", [
    ((1, 40, 0), (1, 30, 30 * 36), (1, 40, 40 * 36)),        # A column-major and shared, B and C column-major
    ((30, 1, 0), (36, 1, 30 * 36 + 4), (36, 1, 40 * 36 + 8)),  # gaps between the batches of B and C
])
def test_tune_problem_takes_a_callers_layout(user_db, io, strides, monkeypatch):
    """Problems as layers issue them (strides in elements, not just the tuner's own layouts): the
    reference follows those strides, so a plan is timed only when it computes them right."""
    monkeypatch.setattr(tuner, "TILED_SPACE", SMALL_TILED)
    monkeypatch.setattr(tuner, "COMMON_SETS", [SMALL_SET])
    r = tuner.tune_problem(io.get_kernel, io.info, io.upload, io.download, io.alloc, 40, 36, 30, 2,
                           budget_s=2, strides=strides)
    assert r["key"] == planner.problem_key(40, 36, 30, 2, *strides) and r["plan_s"] > 0
    prob = tuner._Problem(40, 36, 30, "float32", io.upload, io.download, io.alloc, 0, 2, strides=strides)
    assert not prob.check()   # nothing computed yet: C holds zeros, the reference does not
    auto = prob.plan(io.info)
    assert prob.seconds(io.get_kernel, auto, 1) is not None and prob.check()
    with pytest.raises(ValueError, match="negative strides"):
        tuner._Problem(4, 4, 4, "float32", io.upload, io.download, io.alloc, 0, strides=((-4, 1, 0),) * 3)


def test_cli_tune_gemm_problems(user_db, io, capsys, monkeypatch):
    monkeypatch.setattr(tuner, "TILED_SPACE", SMALL_TILED)
    monkeypatch.setattr(tuner, "COMMON_SETS", [SMALL_SET])
    rc = oclcore.__main__.main(["tune", "gemm", "--budget", "4", "--problems", "24x20x64x3:st"])
    out = capsys.readouterr().out
    assert rc == 0 and "20x24x64x3 ak bk0: planner" in out, out
    for bad, why in (("24x20", "MxNxK"), ("24x0x5", "positive"), ("2x3x4:nx", "two letters")):
        assert oclcore.__main__.main(["tune", "gemm", "--budget", "4", "--problems", bad]) == 2
        assert why in capsys.readouterr().err
