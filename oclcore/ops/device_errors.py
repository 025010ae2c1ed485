"""Out-of-range indices met by kernels, raised at the next synchronisation.

An indexing kernel that reads an index tensor on the device checks each index, records the first
bad one in a per-device flag buffer and carries on with index 0 (never reading outside memory).
The host does not wait for it: like torch's CUDA device-side asserts, the error surfaces at the
next point that waits for the device anyway (a copy to the host, .item(), synchronize, or an op
whose output size depends on the data), where :func:`check_index_errors` reads the flag."""

import torch

from .. import runtime

_errors = {}  # device index -> [flag Buffer, whether launches since the last check may have set it]


def error_buffer(index):
    """The flag Buffer an indexing kernel on ocl:index writes a bad index into (marks it pending)."""
    entry = _errors.get(index)
    if entry is None:
        buf = runtime.device(index).alloc(24)
        buf.write(torch.zeros(3, dtype=torch.int64))
        entry = _errors[index] = [buf, False]
    entry[1] = True
    return entry[0]


def check_index_errors(index=None):
    """Raises IndexError if an indexing kernel on ocl:index (default: every device) met an
    out-of-range index since the last check; waits for those kernels."""
    for i, entry in _errors.items():
        if (index is None or i == index) and entry[1]:
            buf, entry[1] = entry[0], False
            flag = torch.empty(3, dtype=torch.int64)
            buf.read(flag)
            if flag[0]:
                buf.write(torch.zeros(3, dtype=torch.int64))
                raise IndexError(f"index {int(flag[1])} is out of bounds for dimension with size {int(flag[2])}")
