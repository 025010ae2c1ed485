"""Kernel time per call of a function, from OpenCL events (oclcore.profile()): the probes' clock."""
import collections

import torch

import oclcore


def kernel_us(fn, names=None, reps=10):
    """{kernel name: mean device us per call} of ``fn()`` over ``reps`` calls after one warm-up
    call, for the kernels in ``names`` (all when None)."""
    fn()
    torch.ocl.synchronize()
    with oclcore.profile() as prof:
        for _ in range(reps):
            fn()
        torch.ocl.synchronize()
    out = collections.defaultdict(float)
    for _, name, _, start, end in prof.times():
        if names is None or name in names:
            out[name] += (end - start) / 1e3 / reps
    return out
