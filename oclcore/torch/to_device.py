"""``oclcore.to_device``: move modules, tensors and nested containers of them."""

import torch


def to_device(obj, device="ocl"):
    """Moves ``obj`` to ``device``: a module (parameters and buffers, in place, like
    ``module.to``; build optimizers afterwards), a tensor, or lists, tuples (named
    ones too), dicts and sets of these. Anything else is returned unchanged."""
    if isinstance(obj, torch.nn.Module):
        return obj.to(device)
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, to_device(v, device)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, (list, tuple, set)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
