"""``oclcore.profile()``: time every kernel with OpenCL events, grouped by the
aten op that launched it and by kernel, exportable as a Chrome trace."""

import collections
import contextlib
import json

from . import _runtime, runtime
from .torch import dispatch as _dispatch
from .torch import tensor as _tensor


class Profile:
    """The kernels launched inside an ``oclcore.profile()`` block and their device times."""

    def __init__(self):
        self.records = []  # (op, kernel name, device index, event)
        self._op = None
        self._times = None

    def _record(self, kernel, event):
        self.records.append((self._op or "<direct>", kernel.name, kernel.device.index, event))

    def _dispatch(self, func, args, kwargs):
        outer = self._op
        if outer is None:
            self._op = func.name()
        try:
            return _dispatch.dispatch(func, args, kwargs)
        finally:
            self._op = outer

    def times(self):
        """[(op, kernel, device, start_ns, end_ns)] for every launch (waits for the device)."""
        if self._times is None:
            self._times = [(op, name, dev, e.start_ns, e.end_ns) for op, name, dev, e in self.records]
            self.records = [(op, name, dev, None) for op, name, dev, _ in self.records]
        return self._times

    def summary(self, by="kernel"):
        """{op or kernel name: (launches, total ms)} sorted by total time, largest first."""
        acc = collections.defaultdict(lambda: [0, 0.0])
        for op, name, _, start, end in self.times():
            key = name if by == "kernel" else op
            acc[key][0] += 1
            acc[key][1] += (end - start) / 1e6
        return dict(sorted(((k, tuple(v)) for k, v in acc.items()), key=lambda kv: -kv[1][1]))

    def total_ms(self):
        """Device time summed over every kernel."""
        return sum((end - start) for *_, start, end in self.times()) / 1e6

    def table(self, top=20, by="kernel"):
        """A text table of the ``top`` kernels (or ops, by="op") by total device time."""
        total = self.total_ms() or 1e-12
        rows = list(self.summary(by).items())[:top]
        width = max([len(by)] + [len(k) for k, _ in rows]) + 2
        lines = [f"{by:<{width}}{'launches':>10}{'total ms':>12}{'mean us':>11}{'share':>8}"]
        for k, (n, ms) in rows:
            lines.append(f"{k:<{width}}{n:>10}{ms:>12.3f}{ms * 1e3 / n:>11.1f}{100 * ms / total:>7.1f}%")
        lines.append(f"{'all kernels':<{width}}{len(self.times()):>10}{self.total_ms():>12.3f}")
        return "\n".join(lines)

    def export_chrome_trace(self, path):
        """Writes the launches as a Chrome trace (chrome://tracing, Perfetto)."""
        times = self.times()
        t0 = min((t[3] for t in times), default=0)
        events = [{"name": name, "cat": op, "ph": "X", "ts": (start - t0) / 1e3,
                   "dur": (end - start) / 1e3, "pid": f"ocl:{dev}", "tid": 0, "args": {"op": op}}
                  for op, name, dev, start, end in times]
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)
        return path


@contextlib.contextmanager
def profile():
    """Context manager: ``with oclcore.profile() as prof: ...; print(prof.table())``."""
    prof = Profile()
    devs = runtime.devices()
    previous = [d.profiling for d in devs]
    for d in devs:
        d.profiling = True
    _runtime.set_launch_recorder(prof._record)
    _tensor._dispatch = prof._dispatch
    try:
        yield prof
    finally:
        _runtime.set_launch_recorder(None)
        _dispatch.install()
        for d, was in zip(devs, previous):
            d.synchronize()
        prof.times()
        for d, was in zip(devs, previous):
            d.profiling = was
