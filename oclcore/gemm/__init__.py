"""oclcore GEMM core: CLBlast-style tiled and direct OpenCL GEMM kernels,
their parameter database, planner and tuner.

Public API:
  gemm(get_kernel, device_info, A, a_off, a_rs, a_cs, B, ..., C, ..., M, N, K,
       alpha, beta, batch, a_bs, b_bs, c_bs, bias, bias_off, bias_dim, act,
       dtype, alloc)                     one call: plan + enqueue
  plan_gemm(device_info, M, N, K, ...) -> GemmPlan     (cacheable per shape)
  run_gemm(plan, get_kernel, A, a_off, B, b_off, C, c_off, ...) -> events
  tune(...)                              search parameters on the device
  database.lookup / database.save_user_entry, params.* validation
"""
from .planner import (ACTIVATIONS, GemmPlan, choose_kind, event_elapsed_ns, gemm, plan_gemm,
                      run_gemm)
from .tuner import tune, tune_crossover

__all__ = ["ACTIVATIONS", "GemmPlan", "choose_kind", "event_elapsed_ns", "gemm", "plan_gemm",
           "run_gemm", "tune", "tune_crossover"]
