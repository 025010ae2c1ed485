"""Routing aten ops to oclcore's implementations.

``OPS`` maps an aten OpOverload to its implementation; the hot path is one
dict lookup. An op without an entry is tried through torch's own
decompositions (so it still runs on the device as simpler ops) and otherwise
runs on the CPU: inputs copied there, results copied back, a warning once per
op, and a count in :func:`fallbacks`. ``OCLCORE_STRICT=1`` makes such an op
raise instead."""

import collections
import os
import sys
import threading
import warnings

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from . import tensor as _tensor
from .tensor import OclTensor

OPS = {}
_fallback_counts = collections.Counter()
_warned = set()
_decomposing = threading.local()


def register(*funcs):
    """Decorator: ``fn`` implements each aten OpOverload in ``funcs`` on ocl."""
    def deco(fn):
        for f in funcs:
            OPS[f] = fn
        return fn
    return deco


def dispatch(func, args, kwargs):
    """Runs aten ``func`` for ocl tensors."""
    impl = OPS.get(func)
    try:
        if impl is not None:
            return impl(*args, **kwargs) if kwargs else impl(*args)
        return _unhandled(func, args, kwargs or {})
    except Exception as e:
        if threading.current_thread() is threading.main_thread() or _nested(func, args):
            raise
        failed = WorkerError(e, func)
        n = len(func._schema.returns)
        return failed if n == 1 else (failed,) * n


class WorkerError:
    """Stands in for the result of an op that failed on torch's autograd device thread.

    A Python exception leaving __torch_dispatch__ on that thread terminates the
    process (torch 2.14), while a result torch cannot convert raises a normal
    RuntimeError in the thread that called backward(), quoting this object's
    repr. So the original error reaches the user as that RuntimeError's text."""

    def __init__(self, error, func):
        self.error, self.func = error, func

    def __repr__(self):
        return (f"<the result of {self.func.name()}, which failed on the ocl device with "
                f"{type(self.error).__name__}: {self.error}>")


def _nested(func, args):
    """True unless this dispatch was entered straight from torch's C++ (no Python caller):
    only the outermost op on the worker thread converts its error, inner ones raise to it."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name != "__torch_dispatch__":
        frame = frame.f_back
    return frame is None or frame.f_back is not None


def fallbacks():
    """{op name: times it ran on the CPU} since the last reset."""
    return dict(_fallback_counts)


def reset_fallbacks():
    """Clears the fallback counts (warnings already given stay given)."""
    _fallback_counts.clear()


def unregistered(func, args, kwargs):
    """Runs ``func`` the way an op without an implementation runs: torch's decompositions, else
    the CPU fallback (for implementations that handle only some cases)."""
    return _unhandled(func, args, kwargs)


def _unhandled(func, args, kwargs):
    active = getattr(_decomposing, "ops", None)
    if active is None:
        active = _decomposing.ops = set()
    if func not in active:
        active.add(func)
        try:
            out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
            decomp = _decomposition(func)
            if decomp is not None:
                out = decomp(*args, **kwargs)
                if out is not NotImplemented:  # (a decomposition may decline a case: the CPU runs it)
                    return out
        finally:
            active.discard(func)
    return cpu_fallback(func, args, kwargs)


_decomp_table = None


def _decomposition(func):
    global _decomp_table
    if _decomp_table is None:
        from torch._decomp import decomposition_table

        _decomp_table = decomposition_table
    return _decomp_table.get(func)


def _device_of(flat):
    for x in flat:
        if isinstance(x, OclTensor):
            return x.device
    return _tensor.torch_device(0)


def cpu_fallback(func, args, kwargs):
    """Runs ``func`` on the CPU with copies of the ocl inputs and brings the results back."""
    name = func.name()
    if os.environ.get("OCLCORE_STRICT", "") not in ("", "0"):
        raise RuntimeError(f"oclcore: {name} has no OpenCL implementation (OCLCORE_STRICT is set, "
                           "so it does not fall back to the CPU)")
    _fallback_counts[name] += 1
    if name not in _warned:
        _warned.add(name)
        warnings.warn(f"oclcore: {name} has no OpenCL implementation yet; it runs on the CPU "
                      "(inputs and results are copied)", stacklevel=3)
    flat, spec = tree_flatten((args, kwargs))
    device = _device_of(flat)
    cpu_flat = []
    for x in flat:
        if isinstance(x, OclTensor):
            x = x.to("cpu")
        elif isinstance(x, torch.device) and x.type == "ocl":
            x = torch.device("cpu")
        cpu_flat.append(x)
    cpu_args, cpu_kwargs = tree_unflatten(cpu_flat, spec)
    result = func(*cpu_args, **cpu_kwargs)

    # Arguments the op writes to get the CPU result copied back.
    written = {}
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            orig = kwargs.get(arg.name) if arg.kwarg_only or i >= len(args) else args[i]
            new = cpu_kwargs.get(arg.name) if arg.kwarg_only or i >= len(args) else cpu_args[i]
            pairs = zip(orig, new) if isinstance(orig, (list, tuple)) else ((orig, new),)  # (Tensor(a!)[] too)
            for o, n in pairs:
                if isinstance(o, OclTensor):
                    o.copy_(n)
                    written[id(n)] = o

    out_flat, out_spec = tree_flatten(result)
    back = []
    for x in out_flat:
        if isinstance(x, torch.Tensor):
            orig = written.get(id(x))
            x = orig if orig is not None else x.to(device)
        back.append(x)
    return tree_unflatten(back, out_spec)


def install():
    """Points OclTensor's __torch_dispatch__ at this module."""
    _tensor._dispatch = dispatch
