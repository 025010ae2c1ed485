"""The ``ocl`` tensor: a wrapper subclass holding a device Buffer.

Sizes, strides and the storage offset (in elements) live in the wrapper like
any tensor's; the data lives in ``_buf``, shared by every view of it."""

import copy
import math
import warnings

import torch

from .. import runtime

_torch_devices = {}

# The attribute under which an ocl tensor keeps its entry (see :func:`entry`): it describes the
# tensor's geometry and memory, so whatever rebinds those drops it.
ENTRY = "_entry"
_HUGE = 2**31 - 1  # buffers of more bytes may not fit the kernels' int offsets


def torch_device(index):
    """The torch.device ``ocl:index`` (cached)."""
    d = _torch_devices.get(index)
    if d is None:
        d = _torch_devices[index] = torch.device("ocl", index)
    return d


def storage_bytes(size, stride, itemsize):
    """Bytes a tensor of ``size``/``stride`` spans from its first element."""
    extent = 1
    for n, s in zip(size, stride):
        if n == 0:
            return 0
        extent += (n - 1) * s
    return extent * itemsize


_strides_cache = {}


def contiguous_strides(size):
    """Row-major strides for ``size``."""
    st = _strides_cache.get(size)
    if st is None:
        strides = []
        acc = 1
        for n in reversed(size):
            strides.append(acc)
            acc *= max(n, 1)
        st = tuple(reversed(strides))
        if len(_strides_cache) < 4096:
            _strides_cache[tuple(size)] = st
    return st


_TENSOR_DATA = torch._C.TensorBase.data  # the getset descriptor behind ``Tensor.data``


class OclTensor(torch.Tensor):
    """A tensor on an OpenCL device (``device.type == "ocl"``)."""

    _buf: "runtime.rt.Buffer"
    _index: int

    @staticmethod
    def __new__(cls, buf, size, stride, offset, dtype, index, requires_grad=False):
        t = torch.Tensor._make_wrapper_subclass(
            cls, size, strides=stride, storage_offset=offset, dtype=dtype,
            device=torch_device(index), requires_grad=requires_grad)
        t._buf = buf
        t._index = index
        return t

    __torch_function__ = torch._C._disabled_torch_function_impl

    @property
    def data(self):
        """The tensor's data as a tensor that does not require grad (torch's ``.data``)."""
        return _TENSOR_DATA.__get__(self, type(self))

    @data.setter
    def data(self, new):
        # torch's setter swaps the TensorImpl's geometry and dtype, not this object's attributes:
        # the buffer must follow (``module.double()`` and ``p.data = q`` reach here).
        _TENSOR_DATA.__set__(self, new)
        if isinstance(new, OclTensor):
            self._buf, self._index = new._buf, new._index
        self.__dict__.pop(ENTRY, None)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _dispatch(func, args, kwargs)

    def __repr__(self, *, tensor_contents=None):
        cpu = self.detach().to("cpu")
        text = repr(cpu)
        extra = f", device='{self.device}'"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{type(self.grad_fn).__name__}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return text[:-1] + extra + ")"

    def tolist(self):
        """The values as (nested) Python lists (waits for the device)."""
        return self.detach().to("cpu").tolist()

    def __format__(self, spec):
        if self.dim() == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __deepcopy__(self, memo):
        # torch's Tensor.__deepcopy__ clones a storage-less tensor, then deep-copies its __dict__,
        # which holds the device Buffer (not copyable): copy everything but our bookkeeping.
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy "
                               "protocol at the moment.")
        if id(self) in memo:
            return memo[id(self)]
        with torch.no_grad():
            new = self.clone()
        if self.requires_grad:
            new.requires_grad_()
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        state = {k: v for k, v in self.__dict__.items() if k not in ("_buf", "_index", ENTRY)}
        new.__dict__.update(copy.deepcopy(state, memo))
        memo[id(self)] = new
        return new

    def __coerce_same_metadata_as_tangent__(self, expected_metadata, expected_type=None):
        # torch.compile (AOTAutograd) traced this tensor as a plain fake tensor on "ocl":
        # at run time the OclTensor is that tensor.
        return self

    def __reduce_ex__(self, proto):
        # torch's own rebuild function: allowed by weights_only loading, and it
        # honours torch.load's map_location.
        return (torch._utils._rebuild_device_tensor_from_cpu_tensor,
                (self.detach().to("cpu"), self.dtype, str(self.device), self.requires_grad))


def _keep_on_cpu(obj, location):
    # torch.load(map_location="ocl") would move each CPU storage to ocl, but ocl
    # tensors own no torch storage: keep the storage on the CPU and let
    # _rebuild_device_tensor_from_cpu_tensor move the tensor.
    if location.startswith("ocl"):
        return obj
    return None


torch.serialization.register_package(1, lambda obj: None, _keep_on_cpu)

_torch_load = torch.serialization.load


def _ocl_target(map_location):
    if isinstance(map_location, (str, torch.device)):
        device = torch.device(map_location)
        if device.type == "ocl":
            return device
    return None


def _to_ocl(obj, device):
    if isinstance(obj, torch.Tensor) and obj.device.type == "cpu":
        moved = obj.to(device)
        return torch.nn.Parameter(moved, obj.requires_grad) if isinstance(obj, torch.nn.Parameter) else moved
    if isinstance(obj, torch.nn.Module):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _to_ocl(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_to_ocl(v, device) for v in obj)
    return obj


def load(f, map_location=None, *args, **kwargs):
    """torch.load, plus: ``map_location="ocl"`` also moves tensors that were saved on the CPU
    (their storages cannot be placed on ocl while unpickling, so they move afterwards)."""
    result = _torch_load(f, map_location, *args, **kwargs)
    device = _ocl_target(map_location)
    return result if device is None else _to_ocl(result, device)


load.__wrapped__ = _torch_load
torch.load = torch.serialization.load = load


def _dispatch(func, args, kwargs):  # replaced by dispatch.install()
    raise RuntimeError("oclcore dispatch is not installed")


_make = torch.Tensor._make_wrapper_subclass
_allocators = {}  # device index -> (torch device, allocation function, has float64): the hot path skips lookups


def _allocator(index):
    a = _allocators.get(index)
    if a is None:
        dev = runtime.device(index)
        a = _allocators[index] = (torch_device(index), dev.alloc, dev.fp64)
    return a


def empty(size, dtype, index, stride=None, requires_grad=False):
    """A new uninitialised ocl tensor with the given size (and strides)."""
    device, alloc, fp64 = _allocators.get(index) or _allocator(index)
    if type(size) is not tuple:
        size = tuple(size)
    if dtype is torch.float64 and not fp64:
        dev = runtime.device(index)
        raise TypeError(f"ocl:{index} ({dev.name}) does not support float64 (it lacks cl_khr_fp64); "
                        "use float32")
    # (torch gives a tensor made without strides the contiguous ones: cheaper than passing them)
    if stride is None:
        buf = alloc(math.prod(size) * dtype.itemsize)
        t = _make(OclTensor, size, dtype=dtype, device=device, requires_grad=requires_grad)
        stride = _strides_cache.get(size) or contiguous_strides(size)
    else:
        stride = tuple(stride)
        buf = alloc(storage_bytes(size, stride, dtype.itemsize))
        t = _make(OclTensor, size, strides=stride, dtype=dtype, device=device, requires_grad=requires_grad)
    d = t.__dict__
    d["_buf"], d["_index"] = buf, index
    d[ENTRY] = ((dtype, size, stride, index), buf, 0, buf.nbytes > _HUGE)
    return t


def wrap(buf, size, stride, offset, dtype, index):
    """An ocl tensor over ``buf`` with this geometry: OclTensor(...) without the class call's cost."""
    device = _torch_devices.get(index) or torch_device(index)
    if not isinstance(size, tuple):  # (lists would not do as an entry's key)
        size = tuple(size)
    if not isinstance(stride, tuple):
        stride = tuple(stride)
    if offset == 0 and stride == _strides_cache.get(size):  # (cheaper without strides, as in empty)
        t = _make(OclTensor, size, dtype=dtype, device=device)
    else:
        t = _make(OclTensor, size, strides=stride, storage_offset=offset, dtype=dtype, device=device)
    d = t.__dict__
    d["_buf"], d["_index"] = buf, index
    # Every new tensor's entry is known here: reading it back from torch later costs more.
    d[ENTRY] = ((dtype, size, stride, index), buf, offset, buf.nbytes > _HUGE)
    return t


def entry(t):
    """((dtype, shape, strides, device index), buffer, element offset, whether the buffer is huge)
    of ocl tensor ``t``: what op call keys and launches read from an input. empty() and wrap() set
    it when they make a tensor; otherwise it is read from torch at first use. It stays on the tensor
    until its geometry or buffer is rebound (``.data =``, rebind), so a tensor used by several ops
    (a parameter every step, an activation by its consumers and their backward) is read once."""
    d = t.__dict__
    e = d.get(ENTRY)
    if e is None:
        buf = t._buf
        e = d[ENTRY] = ((t.dtype, t.shape, t.stride(), t._index), buf, t.storage_offset(), buf.nbytes > _HUGE)
    return e


def alias(t, size, stride, offset):
    """A view of ``t``'s data with other geometry (and t's dtype)."""
    return wrap(t._buf, size, stride, offset, t.dtype, t._index)


def rebind(t, buf, size, stride, offset=0):
    """Points ocl tensor ``t`` (in place, same Python object) at new data and geometry:
    how out= arguments are resized. Same-type tensors are shallow-copy compatible,
    so ``.data =`` swaps the metadata."""
    t.data = OclTensor(buf, tuple(size), tuple(stride), offset, t.dtype, t._index)
    return t


def resize_out(t, size, stride=None, warn=True):
    """Resizes out= tensor ``t`` to ``size`` if its shape differs, as torch's out= overloads do
    (with ``stride``, default contiguous); returns t. ``warn``: torch's deprecation warning when
    ``t`` had elements (factories such as arange resize without one)."""
    size = tuple(size)
    if tuple(t.shape) == size:
        return t
    if warn and t.numel():
        warnings.warn(f"An output with one or more elements was resized since it had shape {list(t.shape)}, "
                      f"which does not match the required output shape {list(size)}. This behavior is "
                      "deprecated, and in a future PyTorch release outputs will not be resized unless they "
                      "have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, "
                      "to zero elements with t.resize_(0).", UserWarning, stacklevel=4)
    fresh = empty(size, t.dtype, t._index, stride)
    return rebind(t, fresh._buf, size, fresh.stride())
