"""Matrix factorizations and solves on cl/linalg_factor.cl and the GEMM core: LU with partial
pivoting (linalg_lu_factor_ex, linalg_lu, lu_unpack, linalg_lu_solve), solve / inv / det / slogdet
(_linalg_solve_ex, linalg_inv_ex, _linalg_det, _linalg_slogdet), Cholesky (linalg_cholesky_ex,
cholesky_solve, cholesky_inverse) and triangular solves (linalg_solve_triangular,
triangular_solve); float32 and float64. Backward needs nothing more: torch's derivative formulas
are made of these ops and matrix products.

Design: a factorization works in place in its output (the input copied there first), one
work-group per matrix walking the columns in order (global memory, a local-memory reduction for
the pivot search); matrices wider than ``PANEL`` are factored in panels of ``PANEL`` columns,
the trailing matrix updated by a triangular solve and a GEMM (right-looking blocked LU and
Cholesky, as LAPACK's getrf/potrf). Triangular solves give each right-hand column to one
work-item, recursively splitting matrices larger than ``TRSM_BLOCK`` so that most of the work is GEMM.
Kernels take row and column strides, so transposed and strided views need no copies; broadcast
operands are read through their batch strides.

Semantics follow torch's CPU (LAPACK) results: 1-based int32 pivots chosen as LAPACK's idamax,
``info`` the first zero pivot (LU) or the order of the first non-positive leading minor
(Cholesky), the same factor torch returns where it factors A^T (det and slogdet of a contiguous
A). Limits: values left after a zero pivot or a failed Cholesky match LAPACK exactly only for
unblocked sizes; an exactly singular matrix whose elimination rounds gives torch's zero pivot
(and info) only where the compiler honours FP_CONTRACT OFF (PoCL does; NVIDIA's fuses into fma
regardless, as cuSOLVER does); pivots that did not come from a factorization are not validated (that would
need a read-back; torch's CPU checks them): out-of-range ones are skipped; batch geometry of
broadcast operands must fit int32 strides and 8 dims after merging."""

import torch

from .. import runtime
from ..torch.dispatch import OPS, register, unregistered
from ..torch.tensor import alias, empty, resize_out
from . import dtypes, pointwise
from .linalg import gemm_into
from .meta import infer

aten = torch.ops.aten

# Panel width of the blocked factorizations (matrices up to it take one kernel) and the size
# below which triangular solves stop splitting; the best of 16..128 for n = 1024 and 2048 on an H200.
PANEL = 32
TRSM_BLOCK = 64
_MAX_DIMS = 8
_INT32_MAX = 2**31 - 1
_SUPPORTED = (torch.float32, torch.float64)
_SIGNATURES = {
    "lu_panel": "BlllliiiiBlBZZ",
    "lu_swap_rows": "BlllliiiBliVVliiil",
    "trsm_columns": "BliVVllBlllliiiil",
    "cholesky_panel": "BlllliiiB",
    "zero_upper": "Bllllil",
    "lu_permutation": "BliVVliiBlllll",
    "lu_triangle": "BliVVllBlllliiil",
    "lu_determinant": "BllllBlliiBlBll",
    "diagonal_zero_info": "BlllliBl",
}
_kernels = {}


def _kernel(name, dtype, index):
    key = (name, dtype, index)
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = runtime.get_kernel(("types.cl", "linalg_factor.cl"), dtypes.kernel_defines(dtype),
                                               name, _SIGNATURES[name], runtime.device(index))
    return k


def _launch_1d(k, total, args):
    k.launch((total,), (64,) if total >= 64 else None, args)


def _work_group(k, rows):
    """A power-of-2 work-group size for one matrix of ``rows`` rows, within the kernel's limit."""
    limit = min(256, k.max_work_group_size)
    size = 1
    while size < rows and size * 2 <= limit:
        size *= 2
    return size


# ---- batch geometry ----

def _merged_batch(sizes, strides_per_operand):
    """Batch dims (outer first) merged where every operand allows: (sizes, strides per operand)."""
    sizes = list(sizes)
    strides = [list(s) for s in strides_per_operand]
    d = len(sizes) - 1
    while d > 0:
        if all(s[d - 1] == s[d] * sizes[d] for s in strides):
            sizes[d] *= sizes[d - 1]
            del sizes[d - 1]
            for s in strides:
                s[d - 1] = s[d]
                del s[d]
        d -= 1
    keep = [i for i, n in enumerate(sizes) if n != 1]
    return [sizes[i] for i in keep], [[s[i] for i in keep] for s in strides]


def _geometry(t, batch_shape, matrix_dims=2):
    """(nd, sizes, strides) of read-only operand ``t`` over ``batch_shape`` for the kernels'
    batch_offset; ``matrix_dims`` trailing dims of ``t`` are not batch dims."""
    nb = t.dim() - matrix_dims
    lead = len(batch_shape) - nb
    strides = [0 if d < lead or t.shape[d - lead] == 1 else t.stride(d - lead) for d in range(len(batch_shape))]
    sizes, (strides,) = _merged_batch(batch_shape, [strides])
    if len(sizes) > _MAX_DIMS or any(abs(v) > _INT32_MAX for v in sizes + strides):
        raise RuntimeError("ocl: a linear-algebra operand's batch geometry exceeds 8 dims or int32 strides")
    if not sizes:
        sizes, strides = [1], [0]
    return len(sizes), tuple(sizes), tuple(strides)


def _batch_stride(t):
    """(batch count, stride between matrices) of ``t`` (..., r, c), or None when its batch dims
    do not form one stride."""
    shape = tuple(t.shape[:-2])
    count = 1
    for n in shape:
        count *= n
    sizes, (strides,) = _merged_batch(shape, [list(t.stride()[:-2])])
    if len(sizes) > 1:
        return None
    return count, (strides[0] if strides else 0)


def _matrices(t):
    """``t`` as its own writable working matrices: (view, count, batch stride, finish), where
    ``finish()`` copies back when ``t``'s batch dims forced a temporary."""
    bs = _batch_stride(t)
    if bs is not None:
        return t, bs[0], bs[1], lambda: None
    work = empty(t.shape, t.dtype, t._index)
    pointwise.run("copy", work, [t])
    count, stride = _batch_stride(work)
    return work, count, stride, lambda: pointwise.run("copy", t, [work])


def _flat(t, count, stride):
    """The 3-D (count, r, c) view of working matrices ``t`` (batch stride ``stride``)."""
    return alias(t, (count,) + tuple(t.shape[-2:]), (stride,) + tuple(t.stride()[-2:]), t.storage_offset())


def _supported(*tensors):
    return all(t.dtype in _SUPPORTED for t in tensors)


# ---- LU ----

def _lu_inplace(lu, pivots, info):
    """Factors the matrices of ``lu`` (..., m, n) in place: P L U with pivots and info written
    into ``pivots`` (..., min(m, n)) and ``info`` (...), both contiguous int32."""
    pointwise.run("fill", info, [0])
    m, n = lu.shape[-2:]
    k = min(m, n)
    work, count, bs, finish = _matrices(lu)
    if count == 0 or k == 0:
        return
    rs, cs = work.stride(-2), work.stride(-1)
    off, index = work.storage_offset(), work._index
    panel = _kernel("lu_panel", lu.dtype, index)
    wg = _work_group(panel, max(m, 2))
    local = wg * (lu.element_size())
    if k <= PANEL:
        panel.launch((count * wg,), (wg,), (work._buf, off, bs, rs, cs, m, 0, k, n, pivots._buf, k, info._buf,
                                           local, wg * 4))
        finish()
        return
    swap = _kernel("lu_swap_rows", lu.dtype, index)
    trsm = _kernel("trsm_columns", lu.dtype, index)
    piv_geometry = (1, (count,), (k,))
    flat = _flat(work, count, bs)
    for j0 in range(0, k, PANEL):
        j1 = min(j0 + PANEL, k)
        panel.launch((count * wg,), (wg,), (work._buf, off, bs, rs, cs, m, j0, j1, j1, pivots._buf, k, info._buf,
                                           local, wg * 4))
        for c0, c1 in ((0, j0), (j1, n)):
            if c1 > c0:
                _launch_1d(swap, count * (c1 - c0), (work._buf, off, bs, rs, cs, c0, c1 - c0, m, pivots._buf, 0,
                                                     *piv_geometry, 1, j0, j1, 0, count * (c1 - c0)))
        if j1 < n:
            # U12 = L11^-1 A12, then A22 -= L21 U12
            width = n - j1
            _launch_1d(trsm, count * width, (work._buf, off + j0 * rs + j0 * cs, 1, (count,), (bs,), rs, cs,
                                             work._buf, off + j0 * rs + j1 * cs, bs, rs, cs, j1 - j0, width, 1, 1,
                                             count * width))
            if j1 < m:
                gemm_into(flat[:, j1:, j1:], flat[:, j1:, j0:j1], flat[:, j0:j1, j1:], alpha=-1.0, beta=1.0)
    finish()


def _lu_factor(a, op="linalg.lu_factor"):
    """(LU, pivots, info) of ``a`` (..., m, n) with torch's output geometry."""
    meta = infer(aten.linalg_lu_factor_ex.default, (a,))
    lu = empty(meta[0].shape, a.dtype, a._index, stride=meta[0].stride())
    pointwise.run("copy", lu, [a])
    pivots = empty(meta[1].shape, torch.int32, a._index)
    info = empty(meta[2].shape, torch.int32, a._index)
    _lu_inplace(lu, pivots, info)
    return lu, pivots, info


@register(aten.linalg_lu_factor_ex.default)
def linalg_lu_factor_ex(a, *, pivot=True, check_errors=False):
    """torch.linalg.lu_factor_ex: (LU, pivots, info) by partial pivoting."""
    options = dict(pivot=pivot, check_errors=check_errors)
    infer(aten.linalg_lu_factor_ex.default, (a,), options)
    if not _supported(a):
        return unregistered(aten.linalg_lu_factor_ex.default, (a,), options)
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    lu, pivots, info = _lu_factor(a)
    if check_errors:
        aten._linalg_check_errors.default(info, "torch.linalg.lu_factor_ex", is_matrix=a.dim() == 2)
    return lu, pivots, info


def _unpack(lu, pivots, p_meta, l_meta, u_meta, unpack_data, unpack_pivots):
    """(P, L, U) of a packed LU factorization into tensors of the given meta geometry."""
    index = lu._index
    p = empty(p_meta.shape, lu.dtype, index, stride=p_meta.stride())
    l = empty(l_meta.shape, lu.dtype, index, stride=l_meta.stride())
    u = empty(u_meta.shape, lu.dtype, index, stride=u_meta.stride())
    m, n = lu.shape[-2:]
    k = min(m, n)
    batch_shape = tuple(lu.shape[:-2])
    if unpack_data:
        geometry = _geometry(lu, batch_shape)
        for out, rows, cols, upper in ((l, m, k, 0), (u, k, n, 1)):
            work, count, bs, finish = _matrices(out)
            total = count * rows * cols
            if total:
                _launch_1d(_kernel("lu_triangle", lu.dtype, index), total,
                           (lu._buf, lu.storage_offset(), *geometry, lu.stride(-2), lu.stride(-1), work._buf,
                            work.storage_offset(), bs, work.stride(-2), work.stride(-1), rows, cols, upper, total))
                finish()
    if unpack_pivots:
        work, count, bs, finish = _matrices(p)
        total = count * m * m
        if total:
            geometry = _geometry(pivots, batch_shape, 1)
            _launch_1d(_kernel("lu_permutation", lu.dtype, index), total,
                       (pivots._buf, pivots.storage_offset(), *geometry, pivots.stride(-1), m, k, work._buf,
                        work.storage_offset(), bs, work.stride(-2), work.stride(-1), total))
            finish()
    return p, l, u


@register(aten.lu_unpack.default)
def lu_unpack(lu, pivots, unpack_data=True, unpack_pivots=True):
    """torch.lu_unpack: P, L, U out of lu_factor's packed result."""
    meta = infer(aten.lu_unpack.default, (lu, pivots, unpack_data, unpack_pivots))
    if not _supported(lu):
        return unregistered(aten.lu_unpack.default, (lu, pivots, unpack_data, unpack_pivots), {})
    return _unpack(lu, pivots, *meta, unpack_data, unpack_pivots)


@register(aten.linalg_lu.default)
def linalg_lu(a, *, pivot=True):
    """torch.linalg.lu: (P, L, U) with A = P L U."""
    meta = infer(aten.linalg_lu.default, (a,), dict(pivot=pivot))
    if not _supported(a):
        return unregistered(aten.linalg_lu.default, (a,), dict(pivot=pivot))
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU")
    lu, pivots, _ = _lu_factor(a)
    return _unpack(lu, pivots, *meta, True, True)


# ---- triangular solves ----

def _trsm(a, geometry, x, count, xbs, lower, unit):
    """x <- A^-1 x in place for triangular ``a`` (..., n, n) read through ``geometry`` (its batch
    over x's ``count`` matrices) and working matrices ``x`` (..., n, k) with batch stride ``xbs``.
    Larger than TRSM_BLOCK: split in halves, the off-diagonal block applied by GEMM."""
    n, ncols = x.shape[-2:]
    if count == 0 or n == 0 or ncols == 0:
        return
    if n > TRSM_BLOCK and geometry[0] > 1:
        # GEMM needs one batch stride: expand A to x's batch
        a = aten.expand.default(a, list(x.shape[:-2]) + [n, n]).contiguous()
        geometry = (1, (count,), (n * n,))
    if n <= TRSM_BLOCK:
        total = count * ncols
        _launch_1d(_kernel("trsm_columns", x.dtype, x._index), total,
                   (a._buf, a.storage_offset(), *geometry, a.stride(-2), a.stride(-1), x._buf, x.storage_offset(),
                    xbs, x.stride(-2), x.stride(-1), n, ncols, int(lower), int(unit), total))
        return
    h = (n // 2) // 32 * 32 or n // 2  # (a multiple of 32 keeps GEMM tiles whole)
    abs_ = geometry[2][0] if geometry[1][0] > 1 else 0
    a_flat = alias(a, (count, n, n), (abs_, a.stride(-2), a.stride(-1)), a.storage_offset())
    x_flat = alias(x, (count, n, ncols), (xbs, x.stride(-2), x.stride(-1)), x.storage_offset())
    a11, a22 = a_flat[:, :h, :h], a_flat[:, h:, h:]
    x1, x2 = x_flat[:, :h], x_flat[:, h:]
    g = (1, (count,), (abs_,))
    if lower:
        _trsm(a11, g, x1, count, xbs, lower, unit)
        gemm_into(x2, a_flat[:, h:, :h], x1, alpha=-1.0, beta=1.0)
        _trsm(a22, g, x2, count, xbs, lower, unit)
    else:
        _trsm(a22, g, x2, count, xbs, lower, unit)
        gemm_into(x1, a_flat[:, :h, h:], x2, alpha=-1.0, beta=1.0)
        _trsm(a11, g, x1, count, xbs, lower, unit)


def _solve_triangular_into(out, a, b, upper, left, unitriangular):
    """out = A^-1 B (left) or B A^-1 for triangular A, out being a fresh tensor of the broadcast
    shape; B (and A) broadcast over out's batch."""
    pointwise.run("copy", out, [b])
    if not left:  # X A = B  <=>  A^T X^T = B^T
        a, out, upper = a.mT, out.mT, not upper
    work, count, bs, finish = _matrices(out)
    _trsm(a, _geometry(a, tuple(work.shape[:-2])), work, count, bs, not upper, unitriangular)
    finish()


@register(aten.linalg_solve_triangular.default)
def linalg_solve_triangular(a, b, *, upper, left=True, unitriangular=False):
    """torch.linalg.solve_triangular."""
    meta = infer(aten.linalg_solve_triangular.default, (a, b), dict(upper=upper, left=left,
                                                                     unitriangular=unitriangular))
    if not _supported(a, b):
        return unregistered(aten.linalg_solve_triangular.default, (a, b),
                            dict(upper=upper, left=left, unitriangular=unitriangular))
    out = empty(meta.shape, meta.dtype, a._index, stride=meta.stride())
    _solve_triangular_into(out, a, b, upper, left, unitriangular)
    return out


@register(aten.triangular_solve.default)
def triangular_solve(b, a, upper=True, transpose=False, unitriangular=False):
    """torch.triangular_solve (deprecated): (A^-1 B or A^-T B, a copy of A broadcast)."""
    args = (b, a, upper, transpose, unitriangular)
    meta = infer(aten.triangular_solve.default, args)
    if not _supported(a, b):
        return unregistered(aten.triangular_solve.default, args, {})
    out = empty(meta[0].shape, meta[0].dtype, a._index, stride=meta[0].stride())
    coefficient = empty(meta[1].shape, meta[1].dtype, a._index, stride=meta[1].stride())
    pointwise.run("copy", coefficient, [a])
    if transpose:
        a, upper = a.mT, not upper
    _solve_triangular_into(out, a, b, upper, True, unitriangular)
    return out, coefficient


# ---- solving with an LU factorization ----

def _lu_solve_into(out, lu, pivots, b, left=True, adjoint=False):
    """out = A^-1 B (or A^-H B, B A^-1, B A^-H) from A's packed LU; out has the broadcast shape."""
    pointwise.run("copy", out, [b])
    if not left:  # X A = B  <=>  A^T X^T = B^T (real matrices: ^H is ^T)
        out, adjoint = out.mT, not adjoint
    work, count, bs, finish = _matrices(out)
    n, ncols = work.shape[-2:]
    if count == 0 or n == 0 or ncols == 0:
        return
    batch_shape = tuple(work.shape[:-2])
    geometry = _geometry(lu, batch_shape)
    swap = _kernel("lu_swap_rows", lu.dtype, lu._index)
    swap_args = (work._buf, work.storage_offset(), bs, work.stride(-2), work.stride(-1), 0, ncols, n, pivots._buf,
                 pivots.storage_offset(), *_geometry(pivots, batch_shape, 1), pivots.stride(-1), 0, n)
    total = count * ncols
    if not adjoint:  # A = P L U: X = U^-1 L^-1 P^T B
        _launch_1d(swap, total, swap_args + (0, total))
        _trsm(lu, geometry, work, count, bs, True, True)
        _trsm(lu, geometry, work, count, bs, False, False)
    else:  # A^T = U^T L^T P^T: X = P L^-T U^-T B
        _trsm(lu.mT, geometry, work, count, bs, True, False)
        _trsm(lu.mT, geometry, work, count, bs, False, True)
        _launch_1d(swap, total, swap_args + (1, total))
    finish()


@register(aten.linalg_lu_solve.default)
def linalg_lu_solve(lu, pivots, b, *, left=True, adjoint=False):
    """torch.linalg.lu_solve."""
    meta = infer(aten.linalg_lu_solve.default, (lu, pivots, b), dict(left=left, adjoint=adjoint))
    if not _supported(lu, b):
        return unregistered(aten.linalg_lu_solve.default, (lu, pivots, b), dict(left=left, adjoint=adjoint))
    out = empty(meta.shape, meta.dtype, lu._index, stride=meta.stride())
    _lu_solve_into(out, lu, pivots, b, left, adjoint)
    return out


def _is_vector_rhs(a, b):
    """torch's rule for treating B as a (batch of) vector(s) in linalg.solve."""
    return b.dim() == 1 or (b.dim() == a.dim() - 1 and tuple(b.shape) == tuple(a.shape[:-1]))


@register(aten._linalg_solve_ex.default)
def linalg_solve_ex(a, b, *, left=True, check_errors=False):
    """torch.linalg.solve(_ex)'s core: (X, LU, pivots, info), LU being A's factorization."""
    meta = infer(aten._linalg_solve_ex.default, (a, b), dict(left=left, check_errors=check_errors))
    if not _supported(a, b):
        return unregistered(aten._linalg_solve_ex.default, (a, b), dict(left=left, check_errors=check_errors))
    lu, pivots, info = _lu_factor(a)
    out = empty(meta[0].shape, meta[0].dtype, a._index, stride=meta[0].stride())
    if _is_vector_rhs(a, b):
        dim = -1 if left else -2
        _lu_solve_into(aten.unsqueeze.default(out, dim), lu, pivots, aten.unsqueeze.default(b, dim), left)
    else:
        _lu_solve_into(out, lu, pivots, b, left)
    if check_errors:
        aten._linalg_check_errors.default(info, "torch.linalg.solve_ex", is_matrix=a.dim() == 2)
    return out, lu, pivots, info


@register(aten.linalg_inv_ex.default)
def linalg_inv_ex(a, *, check_errors=False):
    """torch.linalg.inv_ex: (A^-1, info), solving A X = I."""
    meta = infer(aten.linalg_inv_ex.default, (a,), dict(check_errors=check_errors))
    if not _supported(a):
        return unregistered(aten.linalg_inv_ex.default, (a,), dict(check_errors=check_errors))
    lu, pivots, info = _lu_factor(a)
    out = empty(meta[0].shape, meta[0].dtype, a._index, stride=meta[0].stride())
    identity = aten.eye.default(a.shape[-1], dtype=a.dtype, device=a.device)
    _lu_solve_into(out, lu, pivots, identity)
    if check_errors:
        aten._linalg_check_errors.default(info, "linalg.inv_ex", is_matrix=a.dim() == 2)
    return out, info


# ---- determinants ----

def _determinant(a, log_form):
    """(outputs..., LU, pivots) of det (log_form False) or slogdet (True), factoring A^T where A is
    contiguous as torch does (det A^T = det A), so that LU and pivots are torch's."""
    lu, pivots, _ = _lu_factor(a.mT if a.is_contiguous() else a)
    index = a._index
    batch_shape = tuple(a.shape[:-2])
    det = empty(batch_shape, a.dtype, index)
    logabs = empty(batch_shape, a.dtype, index) if log_form else det
    count = det.numel()
    if count:
        n = a.shape[-1]
        work, _, bs, _ = _matrices(lu)  # (LU is fresh: one batch stride)
        _launch_1d(_kernel("lu_determinant", a.dtype, index), count,
                   (work._buf, work.storage_offset(), bs, work.stride(-2), work.stride(-1), pivots._buf, 0, n, n,
                    int(log_form), det._buf, 0, logabs._buf, 0, count))
    return ((det, logabs) if log_form else (det,)) + (lu, pivots)


@register(aten._linalg_det.default)
def linalg_det(a):
    """torch.linalg.det's core: (det, LU, pivots)."""
    infer(aten._linalg_det.default, (a,))
    if not _supported(a):
        return unregistered(aten._linalg_det.default, (a,), {})
    return _determinant(a, False)


@register(aten._linalg_slogdet.default)
def linalg_slogdet(a):
    """torch.linalg.slogdet's core: (sign, log|det|, LU, pivots)."""
    infer(aten._linalg_slogdet.default, (a,))
    if not _supported(a):
        return unregistered(aten._linalg_slogdet.default, (a,), {})
    return _determinant(a, True)


# ---- Cholesky ----

def _cholesky_inplace(lower, info):
    """Factors the lower triangles of the matrices ``lower`` (..., n, n) in place as L L^T and
    zeroes their strict upper triangles; ``info`` (...) contiguous int32."""
    pointwise.run("fill", info, [0])
    n = lower.shape[-1]
    work, count, bs, finish = _matrices(lower)
    if count == 0 or n == 0:
        return
    rs, cs, off, index = work.stride(-2), work.stride(-1), work.storage_offset(), work._index
    panel = _kernel("cholesky_panel", lower.dtype, index)
    wg = _work_group(panel, n)
    if n <= PANEL:
        panel.launch((count * wg,), (wg,), (work._buf, off, bs, rs, cs, n, 0, n, info._buf))
    else:
        flat = _flat(work, count, bs)
        for j0 in range(0, n, PANEL):
            j1 = min(j0 + PANEL, n)
            panel.launch((count * wg,), (wg,), (work._buf, off, bs, rs, cs, n, j0, j1, info._buf))
            if j1 < n:  # A22 -= L21 L21^T (its upper part is zeroed below)
                l21 = flat[:, j1:, j0:j1]
                gemm_into(flat[:, j1:, j1:], l21, l21.mT, alpha=-1.0, beta=1.0)
    total = count * n * n
    _launch_1d(_kernel("zero_upper", lower.dtype, index), total, (work._buf, off, bs, rs, cs, n, total))
    finish()


@register(aten.linalg_cholesky_ex.default)
def linalg_cholesky_ex(a, *, upper=False, check_errors=False):
    """torch.linalg.cholesky_ex: (L, info) with A = L L^H (U^H U with ``upper``)."""
    meta = infer(aten.linalg_cholesky_ex.default, (a,), dict(upper=upper, check_errors=check_errors))
    if not _supported(a):
        return unregistered(aten.linalg_cholesky_ex.default, (a,), dict(upper=upper, check_errors=check_errors))
    out = empty(meta[0].shape, meta[0].dtype, a._index, stride=meta[0].stride())
    info = empty(meta[1].shape, torch.int32, a._index)
    # U = L(A^T)^T: factor the transposed view, which reads A's upper triangle
    lower, source = (out.mT, a.mT) if upper else (out, a)
    pointwise.run("copy", lower, [source])
    _cholesky_inplace(lower, info)
    if check_errors:
        aten._linalg_check_errors.default(info, "linalg.cholesky_ex", is_matrix=a.dim() == 2)
    return out, info


def _cholesky_solve_into(out, b, factor, upper):
    """out = (L L^T)^-1 B (or (U^T U)^-1 B) for a Cholesky factor, out of the broadcast shape."""
    pointwise.run("copy", out, [b])
    work, count, bs, finish = _matrices(out)
    lower = factor.mT if upper else factor
    geometry = _geometry(lower, tuple(work.shape[:-2]))
    _trsm(lower, geometry, work, count, bs, True, False)
    _trsm(lower.mT, geometry, work, count, bs, False, False)
    finish()


@register(aten.cholesky_solve.default)
def cholesky_solve(b, factor, upper=False):
    """torch.cholesky_solve: X with A X = B for A's Cholesky factor."""
    meta = infer(aten.cholesky_solve.default, (b, factor, upper))
    if not _supported(b, factor):
        return unregistered(aten.cholesky_solve.default, (b, factor, upper), {})
    out = empty(meta.shape, meta.dtype, b._index, stride=meta.stride())
    _cholesky_solve_into(out, b, factor, upper)
    return out


@register(aten.cholesky_inverse.default)
def cholesky_inverse(factor, upper=False):
    """torch.cholesky_inverse: A^-1 from A's Cholesky factor; a zero on the factor's diagonal
    raises torch's error (read back, as torch does)."""
    meta = infer(aten.cholesky_inverse.default, (factor, upper))
    if not _supported(factor):
        return unregistered(aten.cholesky_inverse.default, (factor, upper), {})
    index = factor._index
    out = empty(meta.shape, meta.dtype, index, stride=meta.stride())
    n = factor.shape[-1]
    identity = aten.eye.default(n, dtype=factor.dtype, device=factor.device)
    _cholesky_solve_into(out, identity, factor, upper)
    batch_shape = tuple(factor.shape[:-2])
    info = empty(batch_shape, torch.int32, index)
    count = info.numel()
    if count:
        work, _, bs, _ = _matrices(factor)  # (read only: a temporary is never copied back)
        _launch_1d(_kernel("diagonal_zero_info", factor.dtype, index), count,
                   (work._buf, work.storage_offset(), bs, work.stride(-2), work.stride(-1), n, info._buf, count))
        aten._linalg_check_errors.default(info, "cholesky_inverse", is_matrix=factor.dim() == 2)
    return out


# ---- out= variants ----

def _out_variant(overload, functional, out_names):
    """An implementation of ``overload`` (an out= form) from the functional one: torch's checks
    and resizing rules from its meta kernel, then the result copied into the given tensors."""
    def impl(*args, **kwargs):
        outs = [kwargs.pop(name) for name in out_names]
        meta = infer(overload, args, dict(kwargs, **dict(zip(out_names, outs))))
        metas = meta if isinstance(meta, (tuple, list)) else (meta,)
        results = functional(*args, **kwargs)
        results = results if isinstance(results, tuple) else (results,)
        for out, result, m in zip(outs, results, metas):
            resize_out(out, m.shape, result.stride())  # (laid out as the CPU does: like the functional result)
            pointwise.run("copy", out, [result])
        return tuple(outs) if len(outs) > 1 else outs[0]
    return impl


def _register_out_variants():
    for functional in (aten.linalg_lu_factor_ex.default, aten.linalg_lu.default, aten.lu_unpack.default,
                       aten.linalg_lu_solve.default, aten.linalg_solve_triangular.default,
                       aten.triangular_solve.default, aten._linalg_solve_ex.default, aten.linalg_inv_ex.default,
                       aten._linalg_det.default, aten._linalg_slogdet.default, aten.linalg_cholesky_ex.default,
                       aten.cholesky_solve.default, aten.cholesky_inverse.default):
        packet = functional.overloadpacket
        for name in packet.overloads():
            overload = getattr(packet, name)
            out_names = [a.name for a in overload._schema.arguments if a.is_out]
            if out_names:
                register(overload)(_out_variant(overload, OPS[functional], out_names))


_register_out_variants()
