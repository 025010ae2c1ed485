"""Meta results for ops whose output shape depends on integer arguments
(kernel sizes, output sizes, pads, normalized shapes, group counts).

``meta.infer`` keys its cache by the *types* of Python numbers and lists of
numbers, which is right for elementwise ops but would hand such an op the
geometry of an earlier call; this keys by their values instead. (Folding this
into ``meta.infer`` would make this module unnecessary.)"""

import torch

from . import meta

_cache = {}


def _key(x):
    if isinstance(x, torch.Tensor):
        return (x.device.type, x.dtype, tuple(x.shape), x.stride())
    if isinstance(x, (list, tuple)):
        return tuple(_key(e) for e in x)
    if isinstance(x, (bool, int, float)):
        return (type(x), x)
    return x


def infer_exact(func, args):
    """``meta.infer(func, args)`` with a cache that tells apart different argument values."""
    key = (func, _key(args))
    r = _cache.get(key)
    if r is None:
        meta.check_devices(args, func.name())
        try:
            r = func(*meta._to_meta(args))
        except Exception:
            # raises with the CPU's message; where only the meta kernel fails (e.g. upsampling
            # an empty batch), the CPU result gives the geometry
            r = _as_meta(func(*meta._to_cpu_standin(args)))
        _cache[key] = r
    return r


def _as_meta(r):
    if isinstance(r, torch.Tensor):
        return torch.empty_strided(r.shape, r.stride(), dtype=r.dtype, device="meta")
    return type(r)(_as_meta(e) for e in r)
