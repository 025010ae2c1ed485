"""softmax and log_softmax along any dim, forward and backward.

Rows along the dim are computed in one pass for the running (max, sum of
exp) and one for the outputs; half and bfloat16 compute in float. A row goes
to a work-group when the dim is contiguous and long, else to a work-item
(then neighbouring work-items read neighbouring rows)."""

import torch

from .. import runtime
from ..torch.dispatch import register
from ..torch.tensor import empty
from . import dtypes, reduce
from .reduce import infer

aten = torch.ops.aten

_ROW_MIN = 64  # rows at least this long with a contiguous dim get a work-group


def _check_floating(func, x, *args):
    if not x.dtype.is_floating_point:
        func(torch.zeros((1,) * max(x.dim(), 1), dtype=x.dtype), *args)  # raises torch's CPU error


def _launch(name, tensors, out, dim, log_out, ct):
    """Runs ``name`` (softmax or softmax_backward) over rows along ``dim``; ``tensors`` are the
    inputs (x, or g and y), all of out's shape."""
    if out.numel() == 0:
        return out
    shape = tuple(out.shape)
    dim = dim % len(shape) if shape else 0
    nrows, D, krank, ksz, kst, dst = reduce.row_geometry(shape, [t.stride() for t in tensors] + [out.stride()],
                                                          dim)
    dev = runtime.device(out._index)
    idx = reduce.index_type(out, *tensors)
    use_wg = dst[0] == 1 and D >= _ROW_MIN
    k = reduce.kernel(name, tensors[0].dtype, ct, out.dtype, idx, dev)
    args = [out._buf, out.storage_offset()]
    for t in tensors:
        args += (t._buf, t.storage_offset())
    args += (nrows, D, krank, ksz, int(log_out), *kst, *dst)
    if use_wg:
        L = reduce.group_size(k, dev, D)
        k.launch((nrows * L,), (L,), tuple(args) + (reduce.MODE_GROUP,))
    else:
        k.launch((nrows,), (64,) if nrows >= 64 else None, tuple(args) + (reduce.MODE_ITEM,))
    return out


def _forward(func, log_out):
    def impl(x, dim, half_to_float):
        _check_floating(func, x, 0, False)
        if half_to_float and x.dtype is not torch.float16:
            raise RuntimeError("conversion is supported for Half type only")
        meta = infer(func, (x, dim, half_to_float))
        out = empty(meta.shape, meta.dtype, x._index, meta.stride())
        return _launch("softmax", [x], out, dim, log_out, dtypes.compute(meta.dtype))
    return impl


def _backward(func, log_out):
    def impl(grad_output, output, dim, input_dtype):
        meta = infer(func, (grad_output, output, dim, input_dtype))
        if grad_output.dtype != output.dtype:
            grad_output = grad_output.to(output.dtype)
        out = empty(meta.shape, meta.dtype, output._index, meta.stride())
        ct = dtypes.compute(torch.promote_types(output.dtype, meta.dtype))
        return _launch("softmax_backward", [grad_output, output], out, dim, log_out, ct)
    return impl


for _func, _log in ((aten._softmax, False), (aten._log_softmax, True)):
    _impl = _forward(_func.default, _log)
    register(_func.default)(_impl)
    reduce.register_out(_func.out, _impl)

for _func, _log in ((aten._softmax_backward_data, False), (aten._log_softmax_backward_data, True)):
    _impl = _backward(_func.default, _log)
    register(_func.default)(_impl)
    reduce.register_out(_func.out, _impl)
