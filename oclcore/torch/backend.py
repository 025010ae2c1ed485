"""Registering ``ocl`` with torch as the renamed PrivateUse1 backend.

torch's Python backend guard always reports device 0 and a count of 1 and
cannot synchronize (see DESIGN.md). The bridge below is the one place that
fills those gaps: torch.accelerator's device-index and synchronize calls go
through torch._C functions, which are wrapped to answer from torch.ocl when
the current accelerator is ocl and to defer to torch otherwise."""

import sys
import types

import torch
from torch.utils.backend_registration import _setup_privateuseone_for_python_backend

from .. import runtime
from . import device_module, native_guard, optimizers

_installed = False


class _Hooks(torch._C._acc.PrivateUse1Hooks):
    def is_available(self):
        return device_module.is_available()

    def has_primary_context(self, dev_id):
        return True

    def is_built(self):
        return True


_PRIVATE_USE1 = torch._C._autograd.DeviceType.PrivateUse1


class _Guard(torch._C._acc.DeviceGuard):
    # What torch asks when native_guard (its C++ twin) cannot be built.
    def type_(self):  # torch's C++ asks for every device guard: a thousand times a training step
        return _PRIVATE_USE1


def _is_ocl():
    acc = torch._C._accelerator_getAccelerator()
    return acc is not None and acc.type == "ocl"


def _bridge(name, ocl_impl):
    original = getattr(torch._C, name)

    def bridged(*args):
        return ocl_impl(*args) if _is_ocl() else original(*args)

    bridged.__name__ = name
    bridged.__doc__ = f"{name}, answered by torch.ocl when the accelerator is ocl (oclcore bridge)."
    setattr(torch._C, name, bridged)


def _sync(index=-1):
    device_module.synchronize(None if index is None or index < 0 else index)


def _set_index(index):
    if index is not None and index >= 0:
        device_module.set_device(index)


def _maybe_exchange(index):
    return device_module.exchange_device(index) if index is not None and index >= 0 else \
        device_module.current_device()


def _module():
    mod = types.ModuleType("torch.ocl", device_module.__doc__)
    for name in dir(device_module):
        if not name.startswith("__"):
            setattr(mod, name, getattr(device_module, name))
    return mod


def install():
    """Registers the ocl device, its module torch.ocl and the accelerator bridge (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    mod = _module()
    sys.modules["torch.ocl"] = mod
    _setup_privateuseone_for_python_backend("ocl", backend_module=mod, hook=_Hooks(), device_guard=_Guard())
    native_guard.install(runtime.cache_dir())  # (the same answers as _Guard, without Python)
    optimizers.install()
    _bridge("_accelerator_synchronizeDevice", _sync)
    _bridge("_accelerator_getDeviceIndex", device_module.current_device)
    _bridge("_accelerator_setDeviceIndex", _set_index)
    _bridge("_accelerator_exchangeDevice", device_module.exchange_device)
    _bridge("_accelerator_maybeExchangeDevice", _maybe_exchange)
