"""Capture and replay of whole device steps, in the manner of torch.cuda.CUDAGraph.

While a graph captures, every op runs as usual and each kernel launch, device
copy and fill is also recorded with its exact arguments. ``replay()`` then
re-issues that command list from Cython: no Python dispatch, no allocation,
no shape logic. Buffers used by the capture stay owned by the graph (its
memory pool), so tensors made during capture keep their memory and replays
write the same places.

Restrictions (as for CUDA graphs):
* static shapes: a replay repeats exactly what was captured; new input data
  is copied into the tensors the capture read (``static_input.copy_(x)``);
* no host synchronisation inside the capture: ``.item()``, ``.cpu()``,
  printing, host-to-device copies and ``synchronize()`` raise CaptureError;
* Python-side values are frozen: a scalar computed on the host (e.g. a
  learning rate or an optimizer step count held on the CPU) keeps its captured
  value. Use ``torch.optim`` optimizers with ``capturable=True`` (their step
  counters then live on the device);
* random ops draw fresh numbers on every replay (their generator counters are
  re-reserved per replay).
Unlike CUDA, capture also executes the work, so the captured step's results
are valid right after capture."""

import contextlib

from . import _runtime

CaptureError = _runtime.CaptureError


class Graph:
    """A captured sequence of device commands that ``replay()`` repeats."""

    def __init__(self):
        self.commands = []
        self._dynamic = []  # (command index, function giving fresh arguments)
        self._captured = False

    def record(self, command):
        """Called by the runtime for every command issued during capture."""
        self.commands.append(command)

    def refresh_last(self, make_args):
        """Makes the last recorded launch take ``make_args()`` as its arguments on every replay
        (random ops use it to draw new numbers)."""
        self._dynamic.append((len(self.commands) - 1, make_args))

    def capture_begin(self):
        """Starts recording (see :func:`graph` for the context manager)."""
        if _runtime.capturing() is not None:
            raise CaptureError("another oclcore graph is already capturing")
        self.commands, self._dynamic, self._captured = [], [], False
        _runtime.set_capture(self)

    def capture_end(self):
        """Stops recording."""
        if _runtime.capturing() is not self:
            raise CaptureError("capture_end() without a matching capture_begin()")
        _runtime.set_capture(None)
        self._captured = True

    def replay(self):
        """Enqueues every captured command again (returns at once)."""
        if not self._captured:
            raise RuntimeError("replay() needs a finished capture")
        for i, make_args in self._dynamic:
            k, g, l, _ = self.commands[i]
            self.commands[i] = (k, g, l, make_args())
        _runtime.replay(self.commands)

    def reset(self):
        """Drops the captured commands and releases the graph's memory."""
        self.commands, self._dynamic, self._captured = [], [], False

    @property
    def num_commands(self):
        return len(self.commands)


def current():
    """The graph being captured, or None."""
    g = _runtime.capturing()
    return g if isinstance(g, Graph) else None


@contextlib.contextmanager
def graph(g):
    """``with oclcore.graph(g): step()`` captures ``step`` into Graph ``g``."""
    g.capture_begin()
    try:
        yield g
    finally:
        if _runtime.capturing() is g:
            g.capture_end()
