"""softmax and log_softmax along any dim, forward and backward.

Rows along the dim are computed in one pass for the running (max, sum of
exp) and one for the outputs; half and bfloat16 compute in float. A row goes
to a work-group when the dim is contiguous and long, else to a work-item
(then neighbouring work-items read neighbouring rows). Like the reductions,
a call signature is checked and planned once; later calls only allocate the
output and launch."""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import empty, storage_bytes
from . import dtypes, reduce
from .reduce import infer

aten = torch.ops.aten

_ROW_MIN = 64  # rows at least this long with a contiguous dim get a work-group


def _check_floating(func, x, *args):
    if not x.dtype.is_floating_point:
        func(torch.zeros((1,) * max(x.dim(), 1), dtype=x.dtype), *args)  # raises torch's CPU error


def _plan(name, tensors, spec, dim, log_out, ct):
    """(buffer byte limit for the inputs, output spec, kernel, global size, local size, geometry
    arguments) for running ``name`` (softmax or softmax_backward) over rows along ``dim`` of
    ``tensors`` (x, or g and y: all of the output's shape) into an output of ``spec``."""
    shape, dtype, stride = spec
    if 0 in shape:
        return reduce.UNLIMITED, spec, None, None, None, None
    dim = dim % len(shape) if shape else 0
    nrows, D, krank, ksz, kst, dst = reduce.row_geometry(shape, [t.stride() for t in tensors] + [stride], dim)
    dev = runtime.device(tensors[0]._index)
    idx = reduce.index_type(*tensors, span=storage_bytes(shape, stride, 1))
    k = reduce.kernel(name, tensors[0].dtype, ct, dtype, idx, dev)
    geometry = (nrows, D, krank, ksz, int(log_out), *kst, *dst)
    if dst[0] == 1 and D >= _ROW_MIN:
        L = reduce.group_size(k, dev, D)
        launch = (nrows * L,), (L,), geometry + (reduce.MODE_GROUP,)
    else:
        launch = (nrows,), (64,) if nrows >= 64 else None, geometry + (reduce.MODE_ITEM,)
    # inputs of one dtype: one limit serves them all
    return (0 if idx == "long" else reduce.index_limit(tensors[0])), spec, k, *launch


def _rows(name, log_out, ntensors, describe):
    """The aten implementation running ``name`` over rows. ``describe(*args)`` checks a call (torch's
    errors) and returns (input tensors, output spec, dim, compute type); when the inputs are the
    call's first ``ntensors`` arguments, the signature's plan is kept for later calls."""
    calls = {}

    def impl(*args, **kwargs):
        key = reduce.call_key(args[0], args[1:], kwargs) if args else None
        call = calls.get(key)
        tensors = args[:ntensors]
        if call is None or args[0]._buf.nbytes >= call[0] or (ntensors == 2 and args[1]._buf.nbytes >= call[0]):
            tensors, spec, dim, ct = describe(*args, **kwargs)
            call = _plan(name, tensors, spec, dim, log_out, ct)
            if key is not None and call[0] and all(a is b for a, b in zip(tensors, args)):
                reduce.keep(calls, key, call)
        _, (shape, dtype, stride), k, gsize, lsize, geometry = call
        out = empty(shape, dtype, tensors[0]._index, stride)
        if k is not None:
            head = (out._buf, 0, tensors[0]._buf, tensors[0].storage_offset())
            if ntensors == 2:
                head += (tensors[1]._buf, tensors[1].storage_offset())
            k.launch(gsize, lsize, head + geometry)
        return out

    return impl


def _forward(func, log_out):
    def describe(x, dim, half_to_float):
        _check_floating(func, x, 0, False)
        if half_to_float and x.dtype is not torch.float16:
            raise RuntimeError("conversion is supported for Half type only")
        meta = infer(func, (x, dim, half_to_float))
        return [x], reduce.spec(meta), dim, dtypes.compute(meta.dtype)
    return _rows("softmax", log_out, 1, describe)


def _backward(func, log_out):
    def describe(grad_output, output, dim, input_dtype):
        meta = infer(func, (grad_output, output, dim, input_dtype))
        if grad_output.dtype != output.dtype:
            grad_output = grad_output.to(output.dtype)
        ct = dtypes.compute(torch.promote_types(output.dtype, meta.dtype))
        return [grad_output, output], reduce.spec(meta), dim, ct
    return _rows("softmax_backward", log_out, 2, describe)


for _func, _log in ((aten._softmax, False), (aten._log_softmax, True)):
    _impl = _forward(_func.default, _log)
    register(_func.default)(_impl)
    reduce.register_out(_func.out, _impl)

for _func, _log in ((aten._softmax_backward_data, False), (aten._log_softmax_backward_data, True)):
    _impl = _backward(_func.default, _log)
    register(_func.default)(_impl)
    reduce.register_out(_func.out, _impl)
