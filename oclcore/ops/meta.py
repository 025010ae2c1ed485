"""Output geometry and dtype of an op, from torch's own meta kernels.

Running an op on meta tensors gives exactly torch's broadcasting, type
promotion, output layout and argument checks. Results are cached by the
inputs' shapes, strides and dtypes (and scalar types), so a training loop
pays for the meta call once per distinct signature. When the meta call
rejects the input, the op is replayed on zero-memory CPU stand-ins so the
user sees the CPU's wording of the error."""

import warnings

import torch

from ..torch.tensor import OclTensor, entry

_cache = {}
_MISSING = object()


def _sig(x, floats=True):
    """Cache-key part for one argument. Ints and bools count by value (sizes, dims); floats
    too unless ``floats`` is False (scale factors can shape a result, scalar operands cannot)."""
    t = type(x)
    if t is OclTensor:  # the common case first: the key is built on every op
        return (x.dtype, x.shape, x.stride())
    if t is float:
        return (float, x) if floats else float
    if t is int or t is bool:
        return (t, x)
    if isinstance(x, torch.Tensor):
        return (x.device.type, x.dtype, tuple(x.shape), x.stride())
    if isinstance(x, (list, tuple)):
        return tuple(_sig(e, floats) for e in x)
    if isinstance(x, dict):
        return tuple((k, _sig(v, floats)) for k, v in x.items())
    if isinstance(x, (bool, int)):
        return (type(x), x)
    if isinstance(x, (float, complex)):
        return (type(x), x) if floats else type(x)
    return x


def call_key(tensors, others=()):
    """A cache key for an op's call: per tensor argument its dtype, shape, strides and device (None
    for an absent one), then the other arguments (hashable, lists as tuples). None when a tensor is
    not an ocl tensor: such calls (mixed devices) take the checked path every time. For ops that
    cache a plan of their own per call signature, after :func:`infer` passed once."""
    key = []
    for t in tensors:
        if t is None:
            key.append(None)
        elif type(t) is OclTensor:
            key.append(entry(t)[0])
        else:
            return None
    for a in others:
        key.append(tuple(a) if type(a) is list else a)
    return tuple(key)


def _to_meta(x):
    if isinstance(x, OclTensor):
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
    if isinstance(x, (list, tuple)):
        return type(x)(_to_meta(e) for e in x)
    if isinstance(x, torch.device) and x.type == "ocl":
        return torch.device("meta")
    return x


def _to_cpu_standin(x):
    if isinstance(x, OclTensor):
        if x.numel() <= 1 << 22:  # real memory, so in-place checks behave as on the CPU
            return torch.zeros(x.shape, dtype=x.dtype)
        return torch.zeros((), dtype=x.dtype).expand(x.shape)
    if isinstance(x, (list, tuple)):
        return type(x)(_to_cpu_standin(e) for e in x)
    if isinstance(x, torch.device) and x.type == "ocl":
        return torch.device("cpu")
    return x


def check_devices(args, what):
    """Raises torch's device-mismatch error when ocl tensors meet CPU tensors of dim > 0
    (0-dim CPU tensors are scalars and allowed) or another ocl device."""
    dev = None
    for x in args:
        if isinstance(x, torch.Tensor):
            if isinstance(x, OclTensor):
                if dev is None:
                    dev = x.device
                elif x.device != dev:
                    raise RuntimeError("Expected all tensors to be on the same device, but found at least "
                                       f"two devices, {dev} and {x.device}!")
            elif x.dim() > 0:
                other = dev or "ocl:0"
                raise RuntimeError("Expected all tensors to be on the same device, but found at least two "
                                   f"devices, {other} and {x.device}! (when checking argument for {what})")


def infer(func, args, kwargs=None, floats=True):
    """The meta result of ``func(*args, **kwargs)``: tensors with the output's shape, strides, dtype.
    ``floats=False`` lets calls that differ only in float values share a cache entry (elementwise
    ops, whose scalar operands never change the result's geometry)."""
    key = (func, tuple([_sig(a, floats) for a in args]), _sig(kwargs, floats) if kwargs else None)
    r = _cache.get(key, _MISSING)
    if r is _MISSING:  # (None is a result too: in-place ops' meta kernels return nothing)
        check_devices(args, func.name())
        margs = _to_meta(args)
        mkw = {k: _to_meta(v) for k, v in kwargs.items()} if kwargs else {}
        try:
            with warnings.catch_warnings():  # (the op warns itself, on every call)
                warnings.filterwarnings("ignore", message="An output with one or more elements was resized")
                r = func(*margs, **mkw)
        except Exception:
            cargs = _to_cpu_standin(args)
            ckw = {k: _to_cpu_standin(v) for k, v in kwargs.items()} if kwargs else {}
            # Raises with the CPU's message; where only the meta kernel fails (e.g. upsampling
            # an empty batch) the CPU result gives the geometry.
            r = _as_meta(func(*cargs, **ckw))
        _cache[key] = r
    return r


def _as_meta(r):
    if isinstance(r, torch.Tensor):
        return torch.empty_strided(r.shape, r.stride(), dtype=r.dtype, device="meta")
    if isinstance(r, (list, tuple)):
        return type(r)(_as_meta(e) for e in r)
    return r


def _non_overlapping_and_dense(t):
    expected = 1
    for d in sorted(range(t.dim()), key=lambda d: t.stride(d)):
        n = t.shape[d]
        if n != 1:
            if t.stride(d) != expected:
                return False
            expected *= n
    return True


def check_overlap(out, inputs):
    """Raises torch's errors for a written tensor that overlaps itself or partially overlaps an
    input (meta tensors have no memory, so torch's meta kernels cannot check this)."""
    if any(n > 1 and s == 0 for n, s in zip(out.shape, out.stride())):
        raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a "
                           "single memory location. Please clone() the tensor before performing the operation.")
    check_input_overlap(out, inputs)


def check_input_overlap(out, inputs):
    """The part of :func:`check_overlap` that depends on the operands' memory, not only on their
    geometry: for callers that checked this geometry of ``out`` before."""
    for x in inputs:
        if x is out or not isinstance(x, OclTensor) or x._buf is not out._buf or not x.numel() or not out.numel():
            continue
        # torch's get_overlap_status: only dense, non-overlapping operands are judged
        if not (_non_overlapping_and_dense(x) and _non_overlapping_and_dense(out)):
            continue
        a0, a1 = out.storage_offset() * out.element_size(), (out.storage_offset() + out.numel()) * out.element_size()
        b0, b1 = x.storage_offset() * x.element_size(), (x.storage_offset() + x.numel()) * x.element_size()
        full = a0 == b0 and a1 == b1 and x.stride() == out.stride()
        if not full and a0 < b1 and b0 < a1:
            raise RuntimeError("unsupported operation: some elements of the input tensor and the written-to tensor "
                               "refer to a single memory location. Please clone() the tensor before performing "
                               "the operation.")
