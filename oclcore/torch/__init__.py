"""torch integration: the ocl device, its tensor type, dispatch, factories, composite overrides
and autocast."""

from . import autocast, backend, composites, dispatch, factories, tensor  # noqa: F401


def install():
    """Makes ``ocl`` a torch device and loads every op implementation (idempotent)."""
    from .. import _runtime
    import torch

    _runtime.set_out_of_memory_error(torch.OutOfMemoryError)
    backend.install()
    factories.install()
    composites.install()
    autocast.install()
    dispatch.install()
    from .. import ops  # noqa: F401  (registers the aten implementations)
