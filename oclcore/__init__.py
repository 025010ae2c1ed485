"""oclcore: any OpenCL device as a PyTorch device (``device="ocl"``)."""

from .runtime import devices, get_kernel  # noqa: F401

__version__ = "0.1.0"
