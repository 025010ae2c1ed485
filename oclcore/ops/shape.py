"""Shape ops that move data: cat, stack, flip, roll, repeat, tril, triu.

cat copies inputs that share the result's dense layout 16 per launch
(cl/cat.cl) and any other input as a strided copy into its slice; repeat is
a strided copy; flip and the triangles are strided gathers on cl/index.cl."""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import OclTensor, alias, contiguous_strides, empty, entry, resize_out
from . import copy as _copy
from . import pointwise
from .index import gather_into, infer, kernel, vec8
from .meta import check_devices

aten = torch.ops.aten


def _narrow(t, dim, start, length):
    stride = t.stride()
    shape = list(t.shape)
    shape[dim] = length
    return alias(t, tuple(shape), stride, t.storage_offset() + start * stride[dim])


@register(aten.cat.default, aten.cat.out)
def cat(tensors, dim=0, *, out=None):
    """torch.cat: any dim, dtypes promoted, legacy empty 1-D tensors skipped."""
    if out is not None and type(out) is OclTensor:
        resize_out(out, infer(aten.cat.default, (list(tensors), dim)).shape)
    key = _cat_key(tensors, dim, out)
    plan = _cat_plans.get(key) if key is not None else None
    if plan is None:
        plan = _CatPlan(tensors, dim, out)
        if key is not None:
            if len(_cat_plans) >= _CAT_PLAN_LIMIT:
                _cat_plans.clear()
            _cat_plans[key] = plan
    if out is None:
        out = empty(plan.shape, plan.dtype, tensors[0]._index, plan.stride)
    if plan.empty:
        return out
    plan.run(out, tensors)
    return out


_CAT_SLOTS = 16  # inputs per launch; fixed by the CAT_SLOT list in cl/cat.cl
_CAT_SIGNATURE = "Bii" + "Biiii" * _CAT_SLOTS
_CAT_MOVE_TYPES = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}
_CAT_MAX_ITEMS = 1 << 16  # work-items per input; they stride over bigger inputs
_CAT_PLAN_LIMIT = 1024  # call signatures kept; the cache starts over when full
_INT32_MAX = 2**31 - 1
_cat_plans = {}


def _cat_key(tensors, dim, out):
    """The plan-cache key of a cat call: per input (dtype, shape, strides, device), dim, and out's
    geometry; None when an input is not an ocl tensor."""
    sig = [dim]
    for t in tensors:
        if type(t) is not OclTensor:
            return None
        sig.append(entry(t)[0])
    if out is not None:
        if type(out) is not OclTensor:
            return None
        sig.append(entry(out)[0])
    return tuple(sig)


class _CatPlan:
    """How a cat call signature runs, after torch's checks: the result's geometry, the inputs
    copied by cl/cat.cl (same dtype, strides dense in the result's dim order, so each is a matrix
    of rows in memory order like the result) in launches of 16, and the others as strided copies
    into their slices of the result."""

    def __init__(self, tensors, dim, out):
        meta = infer(aten.cat.default, (list(tensors), dim))
        check_devices(list(tensors) if out is None else [*tensors, out], "cat")
        self.shape, self.dtype, self.stride = tuple(meta.shape), meta.dtype, meta.stride()
        shape, stride = self.shape, self.stride if out is None else out.stride()
        self.empty = len(shape) == 0 or meta.numel() == 0
        self.dim = dim = dim % len(shape) if shape else 0
        # the result's dims from outermost to innermost in memory
        order = range(len(shape)) if stride == contiguous_strides(shape) else sorted(
            range(len(shape)), key=lambda d: -stride[d])
        row = 1  # elements per unit of dim (the dims inside it in memory order)
        for d in reversed(order):
            if d == dim:
                break
            row *= shape[d]
        usable = (self.dtype.itemsize in _CAT_MOVE_TYPES and _dense_in(shape, stride, order)
                  and (out is None or out.dtype == self.dtype))
        self.out_inner = shape[dim] * row if shape else 0
        self.copies, batched = [], []  # (input position, start along dim, length)
        start = 0
        for i, t in enumerate(tensors):
            if t.dim() == 1 and t.shape[0] == 0 and len(shape) != 1:
                continue  # torch skips legacy (0,) tensors
            n = t.shape[dim]
            if n and t.numel():
                if usable and t.dtype == self.dtype and _dense_in(t.shape, t.stride(), order):
                    batched.append((i, n * row, start * row, t.numel(), start))
                else:
                    self.copies.append((i, start, n))
            start += n
        self.launches = [(batched[k:k + _CAT_SLOTS], min(max(b[3] for b in batched[k:k + _CAT_SLOTS]),
                                                          _CAT_MAX_ITEMS))
                         for k in range(0, len(batched), _CAT_SLOTS)]
        self.kernel = runtime.get_kernel(("cat.cl",), {"TM": _CAT_MOVE_TYPES[self.dtype.itemsize]}, "cat_slots",
                                         _CAT_SIGNATURE, runtime.device(tensors[0]._index)) if batched else None

    def run(self, out, tensors):
        """Copies ``tensors`` (the signature's) into ``out``."""
        dim = self.dim
        for i, start, n in self.copies:
            pointwise.run("copy", _narrow(out, dim, start, n), [tensors[i]])
        if not self.launches:
            return
        buf, oo = out._buf, out.storage_offset()
        small = oo + out.numel() <= _INT32_MAX  # the kernel's indices are ints
        head = (buf, oo, self.out_inner)
        for group, items in self.launches:
            args = list(head)
            m = 0
            for i, inner, dst, n, start in group:
                t = tensors[i]
                _, tbuf, offset, _ = entry(t)
                if small and offset + n <= _INT32_MAX:
                    args += (tbuf, offset, inner, dst, n)
                    m += 1
                else:  # (a view far into a buffer of over 2**31 elements)
                    pointwise.run("copy", _narrow(out, dim, start, t.shape[dim]), [t])
            if m:
                args += (buf, 0, 1, 0, 0) * (_CAT_SLOTS - m)
                self.kernel.launch((items, m), (64 if items >= 64 else 1, 1), tuple(args))


def _dense_in(shape, stride, order):
    """True when ``stride`` holds the dense strides of ``shape`` in dim order ``order`` (outermost
    first); size-1 dims may have any stride."""
    expected = 1
    for d in reversed(order):
        n = shape[d]
        if n != 1 and stride[d] != expected:
            return False
        expected *= n
    return True


@register(aten.stack.default, aten.stack.out)
def stack(tensors, dim=0, *, out=None):
    """torch.stack: cat of the tensors each unsqueezed at dim."""
    infer(aten.stack.default, (list(tensors), dim))
    nd = tensors[0].dim() + 1
    dim %= nd
    return cat([aten.unsqueeze.default(t, dim) for t in tensors], dim, out=out)


@register(aten.flip.default)
def flip(x, dims):
    """torch.flip: a copy read with the flipped dims' strides negated."""
    infer(aten.flip.default, (x, dims))
    out = empty(x.shape, x.dtype, x._index)
    if out.numel() == 0:
        return out
    strides = list(x.stride())
    offset = x.storage_offset()
    for d in {d % x.dim() for d in dims} if x.dim() else ():
        offset += (x.shape[d] - 1) * strides[d]
        strides[d] = -strides[d]
    return gather_into(out, x, strides, offset)


def _roll_dim(x, shift, dim):
    n = x.shape[dim]
    out = empty(x.shape, x.dtype, x._index)
    s = shift % n if n else 0
    if out.numel() == 0:
        return out
    if s == 0:
        pointwise.run("copy", out, [x])
        return out
    pointwise.run("copy", _narrow(out, dim, s, n - s), [_narrow(x, dim, 0, n - s)])
    pointwise.run("copy", _narrow(out, dim, 0, s), [_narrow(x, dim, n - s, s)])
    return out


@register(aten.roll.default)
def roll(x, shifts, dims=()):
    """torch.roll: two slice copies per rolled dim (the flattened tensor when dims is empty)."""
    infer(aten.roll.default, (x, shifts, dims))
    if not dims:
        flat = _copy.contiguous(x) if not _copy.is_contiguous(x) else x
        flat = alias(flat, (x.numel(),), (1,), flat.storage_offset())
        rolled = _roll_dim(flat, shifts[0], 0)
        return alias(rolled, tuple(x.shape), contiguous_strides(tuple(x.shape)), 0)
    out = x
    for shift, dim in zip(shifts, dims):
        out = _roll_dim(out, shift, dim % x.dim())
    return out if out is not x else _copy.clone(x)


@register(aten.repeat.default)
def repeat(x, repeats):
    """Tensor.repeat: one strided copy, the result viewed as (r0, s0, r1, s1, ...)."""
    meta = infer(aten.repeat.default, (x, repeats))
    out = empty(meta.shape, x.dtype, x._index)
    if out.numel() == 0:
        return out
    lead = len(repeats) - x.dim()
    sizes = (1,) * lead + tuple(x.shape)
    strides = (0,) * lead + tuple(x.stride())
    view_shape, src_strides = [], []
    for r, s, st in zip(repeats, sizes, strides):
        view_shape += [r, s]
        src_strides += [0, st]
    view_shape = tuple(view_shape)
    dst = alias(out, view_shape, contiguous_strides(view_shape), 0)
    src = alias(x, view_shape, tuple(src_strides), x.storage_offset())
    pointwise.run("copy", dst, [src])
    return out


def _triangle(x, diagonal, lower, out):
    if out.numel() == 0:
        return out
    rows, cols = x.shape[-2], x.shape[-1]
    # dims are not collapsed: the kernel reads row and column from the linear index
    n = out.numel()
    k = kernel("triangle", x.dtype, "BlBl" "lll" "i" "l" "i" "VVV", x._index)
    k.launch((n,), (256,) if n >= 256 else None, (
        out._buf, out.storage_offset(), x._buf, x.storage_offset(), rows, cols, diagonal, int(lower), n,
        x.dim(), vec8(x.shape), vec8(out.stride()), vec8(x.stride())))
    return out


def _make_triangle(func, lower, inplace):
    def impl(x, diagonal=0, *, out=None):
        if out is None:
            infer(func, (x, diagonal))
        if inplace:
            result = x
        elif out is not None:
            result = out
        else:
            result = empty(x.shape, x.dtype, x._index, _copy.dense_strides(x))
        return _triangle(x, diagonal, lower, result)
    return impl


for _f, _lower, _inplace in ((aten.tril.default, True, False), (aten.tril_.default, True, True),
                             (aten.tril.out, True, False), (aten.triu.default, False, False),
                             (aten.triu_.default, False, True), (aten.triu.out, False, False)):
    register(_f)(_make_triangle(_f, _lower, _inplace))
