"""What torch itself costs per op on each route an out-of-tree device can take, with oclcore's
own work taken out: host microseconds per call (calling thread's CPU time, median of rounds) of

* native: torch's CPU kernels (the floor: argument parsing, autograd, the dispatcher);
* backend-key Python kernel: a Python function registered for a dispatch key with
  torch.library (what a device whose tensors own a torch storage, such as OpenReg's, uses),
  returning a tensor made beforehand;
* wrapper subclass: a ``_make_wrapper_subclass`` tensor whose ``__torch_dispatch__`` returns a
  tensor made beforehand (oclcore's route), and the same for detach, which must make a new
  wrapper; a device with storage gets detach and views from torch's C++ instead.

    python bench/probes/dispatch_routes.py [--calls 20000] [--rounds 5]
"""

import argparse
import statistics
import time

import torch

aten = torch.ops.aten


class Wrapper(torch.Tensor):
    """The least a wrapper-subclass device does per op: return a tensor made beforehand."""

    @staticmethod
    def __new__(cls, n):
        return torch.Tensor._make_wrapper_subclass(cls, (n,), dtype=torch.float32)

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        if func is aten.add.Tensor:
            return RESULT
        if func is aten.detach.default:
            return Wrapper(16)
        raise NotImplementedError(func)


RESULT = Wrapper(16)


def per_call_us(fn, calls):
    """Calling-thread CPU microseconds per call of ``fn``."""
    t0 = time.thread_time()
    for _ in range(calls):
        fn()
    return (time.thread_time() - t0) / calls * 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    x, y = torch.randn(16), torch.randn(16)
    xg = torch.randn(16, requires_grad=True)
    made = torch.randn(16)
    lib = torch.library.Library("aten", "IMPL")  # mul on the CPU becomes a Python kernel for this run
    lib.impl("mul.Tensor", lambda u, v: made, "CPU")
    w, wg = Wrapper(16), Wrapper(16).requires_grad_()
    assert (x * y) is made and (w + w) is RESULT, "the Python kernels did not run"
    cases = [
        ("native add", lambda: x + y),
        ("native add, input requires grad", lambda: xg + y),
        ("native detach", lambda: x.detach()),
        ("native view", lambda: x.view(4, 4)),
        ("backend-key Python kernel (mul)", lambda: x * y),
        ("backend-key Python kernel, input requires grad", lambda: xg * y),
        ("wrapper subclass add", lambda: w + w),
        ("wrapper subclass add, input requires grad", lambda: wg + w),
        ("wrapper subclass detach (new wrapper)", lambda: w.detach()),
        ("_make_wrapper_subclass alone", lambda: Wrapper(16)),
    ]
    times = {name: [] for name, _ in cases}
    for _ in range(a.rounds):
        for name, fn in cases:
            per_call_us(fn, a.calls // 10)
            times[name].append(per_call_us(fn, a.calls))
    print(f"torch {torch.__version__}; calling-thread CPU us per call, median of {a.rounds} rounds")
    for name, _ in cases:
        print(f"{name:<50} {statistics.median(times[name]):7.2f}")


if __name__ == "__main__":
    main()
