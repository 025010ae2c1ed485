"""oclcore.tune_gemms and ``oclcore tune gemm --model``: the GEMM problems a model's pass plans,
their ranking (problems with a measured plan left out), the tuner run on each with the caller's
layout, winners recorded in the user database (redirected to a temporary OCLCORE_CACHE_DIR)
and then planned that way, and the errors."""

import pytest
import torch

import oclcore
import oclcore.__main__
from conftest import DEVICE
from oclcore import model_tuning
from oclcore.gemm import database, planner, tuner
from oclcore.gemm.cli import DeviceIO
from oclcore.ops import memo


@pytest.fixture
def user_db(tmp_path, monkeypatch):
    monkeypatch.setenv("OCLCORE_CACHE_DIR", str(tmp_path))
    return database.user_db_path()


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 4 * 4, 5)).to(DEVICE)


def _x():
    return torch.randn(3, 3, 6, 6).to(DEVICE)


def test_a_pass_logs_its_problems_and_restores_the_planner():
    plan, replay = planner._cached_plan, memo.Memo.__call__
    infer = model_tuning.model_problems(_model(), _x())
    train = model_tuning.model_problems(_model(), _x(), train=True)
    assert planner._cached_plan is plan and memo.Memo.__call__ is replay
    # the linear layer: 3 rows of 128 features times the 5 x 128 weight, transposed
    linear = [p for p in infer if p.K == 128]
    assert len(linear) == 1 and sorted((linear[0].M, linear[0].N)) == [3, 5]
    assert sum(infer.values()) >= 2                  # the convolution and the linear layer
    assert set(infer) < set(train)                   # backward adds the gradients' products
    for p in train:
        assert isinstance(p, model_tuning.Problem) and len(p.a_strides) == 3


def test_a_failing_pass_restores_the_planner_too():
    plan = planner._cached_plan
    with pytest.raises(RuntimeError):
        model_tuning.model_problems(_model(), torch.randn(3, 4, 6, 6).to(DEVICE))   # 4 channels, not 3
    assert planner._cached_plan is plan


def test_rank_leaves_out_measured_problems(user_db):
    io = DeviceIO(0)
    counts = model_tuning.model_problems(_model(), _x(), train=True)
    ranked = model_tuning.rank(io, counts)
    assert {r.key for r in ranked} == {planner.problem_key(*p) for p in counts}
    assert all(r.seconds > 0 for r in ranked)
    weights = [r.seconds * r.count for r in ranked]
    assert weights == sorted(weights, reverse=True)
    database.save_user_problem(io.info, "float32", dict(problem=ranked[0].key, set=tuner.COMMON_SETS[0], split=1))
    assert ranked[0].key not in {r.key for r in model_tuning.rank(io, counts)}
    P = model_tuning.Problem
    odd = {P(4, 4, 0, 1, (0, 1, 0), (4, 1, 0), (4, 1, 16)): 1,           # nothing to multiply
           P(4, 4, 4, 1, (4, -1, 0), (4, 1, 16), (4, 1, 16)): 1}         # a reversed operand
    assert model_tuning.rank(io, odd) == []


def test_winners_are_recorded_and_then_planned(user_db, monkeypatch):
    """tune_gemms passes each problem with its layout to the tuner; a result 3% faster is recorded
    (the tuner is stubbed to report one for the first problem) and the planner then takes it."""
    calls = []
    small = dict(tuner.COMMON_SETS[0])

    def fake(get_kernel, info, upload, download, alloc, M, N, K, batch, budget_s, strides):
        calls.append((M, N, K, batch, strides, budget_s))
        key = planner.problem_key(M, N, K, batch, *strides)
        faster = len(calls) == 1
        if faster:
            database.save_user_problem(info, "float32", dict(problem=key, set=small, split=1))
        return dict(key=key, plan_s=1e-4, best_s=5e-5 if faster else 1e-4, params=small if faster else None,
                    split=1, tried=3, failed=0)
    monkeypatch.setattr(tuner, "tune_problem", fake)
    lines = []
    report = oclcore.tune_gemms(_model(), _x(), train=True, budget_s=3, top=2, progress=lines.append)
    assert len(report) == len(calls) == len(lines) == 2
    assert report[0].recorded and not report[1].recorded and "(recorded)" in lines[0]
    assert 0 < calls[0][5] <= 3 and all(len(c[4]) == 3 for c in calls)
    M, N, K, batch, strides, _ = calls[0]
    assert planner.plan_gemm(DeviceIO(0).info, M, N, K, batch, "float32", *strides).family == "measured"


def test_tune_gemms_end_to_end(user_db):
    """The real tuner on a small budget: every reported problem was timed, and whatever it
    recorded is a plan the planner takes."""
    report = oclcore.tune_gemms(_model(), _x(), budget_s=2, top=2)
    assert 1 <= len(report) <= 2
    io = DeviceIO(0)
    for t in report:
        assert t.planner_us > 0 and t.best_us <= t.planner_us and t.count >= 1
        assert (database.measured(io.info, "float32", t.key) is not None) == t.recorded


def test_errors():
    with pytest.raises(ValueError, match="ocl device"):
        oclcore.tune_gemms(_model().cpu(), torch.randn(3, 3, 6, 6))
    with pytest.raises(ValueError, match="budget_s"):
        oclcore.tune_gemms(_model(), _x(), budget_s=0)


def test_cli_model(user_db, capsys):
    assert oclcore.__main__.main(["tune", "gemm", "--model", "resnet18", "--batch", "1", "--image", "32",
                                  "--budget", "1", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "Tuning the GEMMs of resnet18 (inference pass, batch 1, 32x32)" in out and "Recorded" in out
    assert oclcore.__main__.main(["tune", "gemm", "--model", "no_such_net"]) == 2
    assert "needs torchvision and one of its model names" in capsys.readouterr().err
    assert oclcore.__main__.main(["tune", "gemm", "--model", "resnet18", "--batch", "0"]) == 2
