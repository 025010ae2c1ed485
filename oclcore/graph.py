"""Capture and replay of whole device steps, in the manner of torch.cuda.CUDAGraph.

While a graph captures, every op runs as usual and each kernel launch, device
copy and fill is also recorded with its exact arguments. ``replay()`` then
re-issues that command list from one C loop (each launch has its own kernel
handle with its arguments set at the first replay): no Python dispatch, no
argument setting, no allocation, no shape logic. Buffers used by the capture
stay owned by the graph (its memory pool), so tensors made during capture keep
their memory and replays write the same places.

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
import heapq

from . import _runtime

CaptureError = _runtime.CaptureError


class Graph:
    """A captured sequence of device commands that ``replay()`` repeats."""

    def __init__(self):
        self.commands = []
        self._list = None  # the commands as a _runtime.CommandList, made at the first replay
        self._dynamic = []  # (command index, function giving fresh arguments)
        self._allocated = set()  # ids of buffers allocated during capture
        self._captured = False

    def record(self, command):
        """Called by the runtime for every command issued during capture."""
        self.commands.append(command)

    def allocated(self, buf):
        """Called by the runtime for every buffer allocated during capture."""
        self._allocated.add(id(buf))

    def refresh_last(self, make_args):
        """Makes the last recorded launch take ``make_args()`` as its arguments on every replay
        (random ops use it to draw new numbers)."""
        self._dynamic.append((len(self.commands) - 1, make_args))

    def capture_begin(self):
        """Starts recording (see :func:`graph` for the context manager)."""
        if _runtime.capturing() is not None:
            raise CaptureError("another oclcore graph is already capturing")
        self.reset()
        _runtime.set_capture(self)

    def capture_end(self):
        """Stops recording."""
        if _runtime.capturing() is not self:
            raise CaptureError("capture_end() without a matching capture_begin()")
        _runtime.set_capture(None)
        self._captured = True

    def replay(self, swap=None):
        """Enqueues every captured command again (returns at once). ``swap`` maps
        captured buffers to buffers this replay uses in their place."""
        if not self._captured:
            raise RuntimeError("replay() needs a finished capture")
        if self._list is None:
            self._list = _runtime.CommandList(self.commands)
        for i, make_args in self._dynamic:
            self._list.set_args(i, make_args())
        self._list.replay(swap or {})

    def reset(self):
        """Drops the captured commands and releases the graph's memory."""
        self.commands, self._dynamic, self._captured, self._list = [], [], False, None
        self._allocated = set()

    def share_memory(self, keep=()):
        """Lets buffers allocated during capture whose lifetimes (first to last command
        using them) do not overlap share memory, except those in ``keep`` (e.g. buffers
        the caller reads after a replay); returns the bytes released. Replays stay
        identical: the queue is in order, so a buffer is reused only after its last
        user. Buffers that random ops re-bind per replay are left alone."""
        keep = {id(b) for b in keep}
        for i, _ in self._dynamic:
            keep.update(id(b) for b in _buffers(self.commands[i]))
        first, last, bufs = {}, {}, {}
        for i, c in enumerate(self.commands):
            for b in _buffers(c):
                key = id(b)
                if key in self._allocated and key not in keep:
                    bufs[key] = b
                    first.setdefault(key, i)
                    last[key] = i
        order = sorted(first, key=first.get)
        home, free, busy, released = {}, [], [], 0  # busy: heap of (last use, key, physical buffer)
        for key in order:
            start = first[key]
            while busy and busy[0][0] < start:
                free.append(heapq.heappop(busy)[2])
            need = bufs[key].nbytes
            fits = [p for p in free if p.nbytes >= need]
            if fits:
                p = min(fits, key=lambda p: p.nbytes)
                free.remove(p)
                home[key] = p
                released += need
            else:
                p = bufs[key]
            heapq.heappush(busy, (last[key], key, p))
        if home:
            swap = {bufs[k]: p for k, p in home.items()}
            self.commands = [_swap_buffers(c, swap) for c in self.commands]
            self._list = None
        return released

    @property
    def num_commands(self):
        return len(self.commands)


def _buffers(command):
    if command[0] == "copy":
        return command[1:3]
    if command[0] == "fill":
        return command[1:2]
    return [a for a in command[3] if type(a) is _runtime.Buffer]


def _swap_buffers(command, swap):
    if command[0] == "copy":
        return (command[0], swap.get(command[1], command[1]), swap.get(command[2], command[2])) + command[3:]
    if command[0] == "fill":
        return (command[0], swap.get(command[1], command[1])) + command[2:]
    k, g, l, args = command
    return (k, g, l, tuple(swap.get(a, a) if type(a) is _runtime.Buffer else a for a in args))


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
