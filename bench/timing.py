"""Timing helpers shared by the bench scripts."""

import math
import statistics
import time


def median_seconds(fn, sync, min_time=0.2, max_reps=200, group_time=2e-3):
    """Median seconds per call of ``fn`` in steady state: one warm-up call, then groups of
    back-to-back calls with the device synchronised around each group (enough calls that a
    group lasts ``group_time``, as a training loop issues them), and enough groups to fill
    ``min_time`` (at least 3, at most ``max_reps``).  Timing each call between two
    synchronisations would add the host's wake-up latency to every call, which is not what
    a stream of kernels pays."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    per_group = max(1, min(50, math.ceil(group_time / once)))
    reps = int(min(max(min_time / (once * per_group), 3), max_reps))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(per_group):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / per_group)
    return statistics.median(times)


def kernel_seconds(fn, sync, reps=5):
    """Device time per call of ``fn`` on ocl: the OpenCL event times of every kernel it launches
    (oclcore.profile()), summed, averaged over ``reps`` calls after one warm-up call. Next to
    median_seconds it shows how much of a call's stream time the host adds."""
    import oclcore

    fn()
    sync()
    with oclcore.profile() as prof:
        for _ in range(reps):
            fn()
        sync()
    return sum(end - start for *_, start, end in prof.times()) / 1e9 / reps
