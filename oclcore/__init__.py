"""oclcore: any OpenCL device as a PyTorch device (``device="ocl"``)."""

from .runtime import devices, get_kernel  # noqa: F401
from .torch import install as _install
from .torch.dispatch import fallbacks, reset_fallbacks  # noqa: F401
from .torch.to_device import to_device  # noqa: F401
from .profiler import profile  # noqa: F401

__version__ = "0.1.0"

_install()
