"""Factory ops for the PrivateUse1 (``ocl``) key: tensors made from nothing.

Ops whose inputs include an ocl tensor reach ``__torch_dispatch__``; these
have no tensor input, so torch routes them by the ``device=`` argument to the
PrivateUse1 kernels registered here."""

import torch

from . import tensor as _tensor

_lib = None


def _index(device):
    if device is None:
        return 0
    if type(device) is not torch.device:
        device = torch.device(device)
    index = device.index
    return index if index is not None else 0


def _check_sizes(size):
    for n in size:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: {list(size)}")


def _empty(size, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    size = tuple(size)
    _check_sizes(size)
    stride = None
    if memory_format is torch.channels_last and len(size) == 4:
        n, c, h, w = size
        stride = (h * w * c, 1, w * c, c)
    return _tensor.empty(size, dtype or torch.get_default_dtype(), _index(device), stride)


def _empty_strided(size, stride, dtype=None, layout=None, device=None, pin_memory=None):
    _check_sizes(size)
    return _tensor.empty(tuple(size), dtype or torch.get_default_dtype(), _index(device), tuple(stride))


def install():
    """Registers the factory kernels (once)."""
    global _lib
    if _lib is not None:
        return
    _lib = torch.library.Library("aten", "IMPL")
    _lib.impl("empty.memory_format", _empty, "PrivateUse1")
    _lib.impl("empty_strided", _empty_strided, "PrivateUse1")
    _lib.impl("_copy_from", _copy_from, "PrivateUse1")
    _lib.impl("tril_indices", _triangle_indices(torch.tril_indices), "PrivateUse1")
    _lib.impl("triu_indices", _triangle_indices(torch.triu_indices), "PrivateUse1")


def _triangle_indices(cpu_op):
    """tril_indices / triu_indices on ocl: the (2, n) index tensor made on the CPU (torch's checks
    and layout) and copied over; a factory that runs once per shape."""
    def impl(row, col, offset=0, dtype=None, layout=None, device=None, pin_memory=None):
        return cpu_op(row, col, offset, dtype=dtype or torch.long).to(torch.device("ocl", _index(device)))
    return impl


def _copy_from(src, dst, non_blocking=False):
    # Reached with the Python key excluded (e.g. torch.tensor(data, device="ocl")).
    from ..ops.copy import copy_into

    return copy_into(dst, src)
