"""Running one aten graph as a captured command list.

The first call with a new input signature (shapes, strides, offsets, dtypes,
and which inputs share memory) runs the graph through the eager ops while
oclcore.graph captures its device commands; afterwards buffers whose
lifetimes do not overlap are made to share memory. Later calls replay the
commands from Cython with the buffers swapped: each input's captured buffer
for the buffer of the tensor passed now, and each output's for a fresh
allocation, so results are never overwritten by a later replay and inputs
are never copied. A graph that cannot be captured (it reads values on the
host or runs an op on the CPU) runs eagerly at that signature from then on.

Compiling and capturing leave hundreds of thousands of new Python objects, enough to make
Python's next full garbage collection due; left alone it came a few steps later and took
a training step from 20 to 230 ms on the H200 host (bench/probes/step_timeline.py), so a
capture ends with that collection. (Not followed by gc.freeze() as at import: frozen objects
in reference cycles, such as a dropped compiled model holding captured device buffers, would
never be freed.)"""

import gc

import torch

from .. import graph as _graph
from ..torch.tensor import OclTensor

_NoSubclassChecks = torch._C.DisableTorchFunctionSubclass


def signature(args):
    """What a capture depends on: tensor geometry and dtype, memory sharing between the
    inputs, and the values of everything else."""
    first_with_buffer = {}
    key = []
    with _NoSubclassChecks():  # (tensor attributes read a third faster; OclTensor has no torch function)
        for i, a in enumerate(args):
            if type(a) is OclTensor:
                shared = first_with_buffer.setdefault(id(a._buf), i)
                key.append((a.shape, a.stride(), a.storage_offset(), a.dtype, a._index, shared))
            elif isinstance(a, torch.Tensor):
                return None  # CPU tensors (and others) change without the graph knowing
            else:
                key.append(a)
    return tuple(key)


class _Output:
    """How to rebuild one output tensor of a replay."""

    __slots__ = ("source", "size", "stride", "offset", "dtype", "index", "requires_grad")

    def __init__(self, source, t):
        self.source = source  # ("input", k) or ("buffer", captured buffer)
        self.size, self.stride, self.offset = tuple(t.shape), t.stride(), t.storage_offset()
        self.dtype, self.index, self.requires_grad = t.dtype, t._index, t.requires_grad


class Capture:
    """One graph captured at one input signature."""

    def __init__(self, gm, args):
        self.graph = _graph.Graph()
        with _graph.graph(self.graph):
            outs = gm(*args)
        self.tuple_out = isinstance(outs, (tuple, list))
        outs = list(outs) if self.tuple_out else [outs]
        self.input_buffers = [a._buf if type(a) is OclTensor else None for a in args]
        by_input = {id(b): k for k, b in enumerate(self.input_buffers) if b is not None}
        self.outputs = []
        for o in outs:
            if type(o) is not OclTensor:
                self.outputs.append(o)
            elif id(o._buf) in by_input:
                self.outputs.append(_Output(("input", by_input[id(o._buf)]), o))
            else:
                self.outputs.append(_Output(("buffer", o._buf), o))
        keep = [b for b in self.input_buffers if b is not None] + [o._buf for o in outs if type(o) is OclTensor]
        self.bytes_shared = self.graph.share_memory(keep)
        self.first_outputs = outs

    def __call__(self, args):
        swap = {}
        for old, a in zip(self.input_buffers, args):
            if old is not None and a._buf is not old:
                swap[old] = a._buf
        fresh = {}
        for o in self.outputs:
            if type(o) is _Output and o.source[0] == "buffer":
                old = o.source[1]
                if old not in fresh:
                    fresh[old] = swap[old] = old.device.alloc(old.nbytes)
        self.graph.replay(swap)
        outs = []
        for o in self.outputs:
            if type(o) is not _Output:
                outs.append(o)
                continue
            kind, where = o.source
            buf = args[where]._buf if kind == "input" else fresh[where]
            outs.append(OclTensor(buf, o.size, o.stride, o.offset, o.dtype, o.index, o.requires_grad))
        return outs if self.tuple_out else outs[0]


class GraphRunner:
    """The compiled form of one aten graph (forward or backward): capture per input
    signature, then replay."""

    def __init__(self, gm):
        self._boxed_call = True  # AOTAutograd passes the arguments as one list we may empty
        self.gm = gm
        self.captures = {}
        self.eager = set()
        self.stats = {"captures": 0, "replays": 0, "eager_calls": 0}

    def __call__(self, boxed):
        args = list(boxed)
        boxed.clear()
        key = signature(args)
        cap = self.captures.get(key) if key is not None else None
        if cap is not None:
            self.stats["replays"] += 1
            return cap(args)
        if key is not None and key not in self.eager and _graph.current() is None:
            try:
                cap = Capture(self.gm, args)
            except _graph.CaptureError:
                self.eager.add(key)
            else:
                self.captures[key] = cap
                self.stats["captures"] += 1
                gc.collect()
                outs, cap.first_outputs = cap.first_outputs, None
                return outs if cap.tuple_out else outs[0]
        self.stats["eager_calls"] += 1
        return self.gm(*args)
