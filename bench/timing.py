"""Timing helpers shared by the bench scripts."""

import statistics
import time


def median_seconds(fn, sync, min_time=0.2, max_reps=200):
    """Median seconds per call of ``fn``: one warm-up call, then enough repetitions to fill
    ``min_time`` (at least 3, at most ``max_reps``), the device synchronised around each."""
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    reps = int(min(max(min_time / once, 3), max_reps))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
