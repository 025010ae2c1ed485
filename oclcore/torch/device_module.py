"""``torch.ocl``: the device module, with torch.cuda's familiar surface."""

import contextlib

import torch

from .. import runtime
from ..graph import Graph, graph  # noqa: F401  (torch.ocl.Graph / torch.ocl.graph, like torch.cuda's)
from ..ops.device_errors import check_index_errors

_current = 0


def is_available():
    """True when at least one OpenCL device was found."""
    try:
        return len(runtime.devices()) > 0
    except RuntimeError:
        return False


def is_initialized():
    return True


def _is_in_bad_fork():
    return False


def device_count():
    """Number of ocl devices."""
    try:
        return len(runtime.devices())
    except RuntimeError:
        return 0


def _check(index):
    n = device_count()
    if not isinstance(index, int) or not 0 <= index < n:
        raise RuntimeError(f"ocl error: invalid device ordinal {index} ({n} ocl device(s) available)")
    return index


def _index(device=None):
    """Device index from None (current), an int, a string or a torch.device."""
    if device is None:
        return _current
    if isinstance(device, int):
        return _check(device)
    device = torch.device(device)
    if device.type != "ocl":
        raise ValueError(f"Expected an ocl device, but got: {device}")
    return _current if device.index is None else _check(device.index)


def current_device():
    """Index of the current ocl device."""
    return _current


def set_device(device):
    """Makes ``device`` the current ocl device."""
    global _current
    _current = _index(device)


def exchange_device(index):
    """Sets the current device and returns the previous one (for torch.accelerator)."""
    global _current
    prev = _current
    if index is not None and index >= 0:
        _current = _check(index)
    return prev


@contextlib.contextmanager
def device(device):
    """Context manager that makes ``device`` current inside the block."""
    prev = exchange_device(_index(device) if device is not None else None)
    try:
        yield
    finally:
        exchange_device(prev)


def get_device_name(device=None):
    """The OpenCL device's name."""
    return runtime.device(_index(device)).name


class DeviceProperties:
    """Properties of an OpenCL device, named like torch.cuda's where they match."""

    def __init__(self, dev):
        info = dev.info()
        for k, v in info.items():
            setattr(self, k, v)
        self.total_memory = info["global_mem"]
        self.multi_processor_count = info["compute_units"]

    def __repr__(self):
        return (f"_OclDeviceProperties(name='{self.name}', platform='{self.platform}', type={self.type}, "
                f"total_memory={self.total_memory // 2**20}MB, compute_units={self.compute_units})")


def get_device_properties(device=None):
    """A DeviceProperties object for ``device``."""
    return DeviceProperties(runtime.device(_index(device)))


def synchronize(device=None):
    """Waits until all queued work on ``device`` (default: current) has finished; raises an
    out-of-range index that an indexing kernel met meanwhile."""
    index = _index(device)
    runtime.device(index).synchronize()
    check_index_errors(index)


def _stats(device):
    return runtime.device(_index(device)).memory_stats()


def memory_allocated(device=None):
    """Bytes held by live tensors on ``device``."""
    return _stats(device)["allocated_bytes"]


def max_memory_allocated(device=None):
    """Peak of memory_allocated since start or the last reset."""
    return _stats(device)["max_allocated_bytes"]


def memory_reserved(device=None):
    """Bytes reserved from OpenCL by the caching allocator."""
    return _stats(device)["reserved_bytes"]


def max_memory_reserved(device=None):
    """Peak of memory_reserved since start or the last reset."""
    return _stats(device)["max_reserved_bytes"]


def memory_stats(device=None):
    """The caching allocator's statistics as a dict."""
    return _stats(device)


def reset_peak_memory_stats(device=None):
    """Resets the peaks to the current values."""
    runtime.device(_index(device)).reset_peak_stats()


def empty_cache():
    """Releases cached, unused device memory on every ocl device."""
    for d in runtime.devices():
        d.empty_cache()


def memory_summary(device=None, abbreviated=False):
    """A printable table of the allocator's statistics."""
    dev = runtime.device(_index(device))
    s = dev.memory_stats()
    mib = lambda b: f"{b / 2**20:10.2f} MiB"  # noqa: E731
    rows = [
        ("Allocated memory", mib(s["allocated_bytes"]), mib(s["max_allocated_bytes"])),
        ("Reserved memory", mib(s["reserved_bytes"]), mib(s["max_reserved_bytes"])),
        ("Requested memory", mib(s["requested_bytes"]), ""),
        ("Allocations", f"{s['allocations']:>14}", ""),
        ("Frees", f"{s['frees']:>14}", ""),
        ("Cache hits", f"{s['cache_hits']:>14}", ""),
        ("Segments created", f"{s['segments_created']:>14}", ""),
        ("Segments freed", f"{s['segments_freed']:>14}", ""),
        ("Out-of-memory errors", f"{s['ooms']:>14}", ""),
    ]
    line = "=" * 66
    out = [line, f" oclcore memory summary, ocl:{_index(device)} ({dev.name})",
           line, f" {'Metric':<24}{'Current':>18}{'Peak':>20}", "-" * 66]
    out += [f" {name:<24}{cur:>18}{peak:>20}" for name, cur, peak in rows]
    out.append(line)
    return "\n".join(out)


# ---- automatic mixed precision ----

def get_amp_supported_dtype():
    """The dtypes torch.autocast(device_type="ocl") may cast to: float16 and bfloat16 (every
    kernel stores both; devices without cl_khr_fp16 compute in float32)."""
    return [torch.float16, torch.bfloat16]


def is_bf16_supported(including_emulation=True):
    """True: bfloat16 tensors are stored as such and computed in float32 (as torch.cuda says of
    emulated bfloat16)."""
    return True


# ---- random ----

def manual_seed(seed):
    """Seeds the current ocl device's generator."""
    from ..ops import random as _random
    _random.generator(_current).manual_seed(int(seed))


def manual_seed_all(seed):
    """Seeds every ocl device's generator."""
    from ..ops import random as _random
    for i in range(device_count()):
        _random.generator(i).manual_seed(int(seed))


def seed():
    """Seeds the current device's generator with a non-deterministic number."""
    from ..ops import random as _random
    _random.generator(_current).seed()


def seed_all():
    """Seeds every device's generator with non-deterministic numbers."""
    from ..ops import random as _random
    for i in range(device_count()):
        _random.generator(i).seed()


def initial_seed():
    """The current device generator's seed."""
    from ..ops import random as _random
    return _random.generator(_current).initial_seed()


def get_rng_state(device=None):
    """The generator state of ``device`` as a CPU uint8 tensor."""
    from ..ops import random as _random
    return _random.generator(_index(device)).get_state()


def set_rng_state(state, device=None):
    """Restores a state returned by get_rng_state."""
    from ..ops import random as _random
    _random.generator(_index(device)).set_state(state)
