"""oclcore: any OpenCL device as a PyTorch device (``device="ocl"``)."""

import gc

from .runtime import devices, get_kernel  # noqa: F401
from .torch import install as _install
from .torch.dispatch import fallbacks, reset_fallbacks  # noqa: F401
from .torch.to_device import to_device  # noqa: F401
from .profiler import profile  # noqa: F401
from .model_tuning import tune_gemms  # noqa: F401

__version__ = "0.1.0"

_install()

# Python's full garbage collections scan every live object, and torch's import leaves some 350 000
# that live as long as the process: one such collection paused an eager training step for 110-200 ms
# (bench/nets.py on the H200, and on PoCL). Frozen, the objects alive now are left out of cyclic
# collection (reference counting still frees them): the same collection takes a few milliseconds.
gc.freeze()
