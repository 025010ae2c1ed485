"""LU, Cholesky, triangular solves and what torch builds on them (solve, inv, det, slogdet,
cholesky_solve / cholesky_inverse) on ocl against torch CPU: values, pivots and info exactly,
gradients through random cotangents, odd sizes, batches, transposed and strided inputs,
broadcast right-hand sides, left=False, singular and non-positive-definite inputs with torch's
error texts, empty batches; the blocked paths with a small block size."""

import pytest
import torch

import oclcore
from conftest import DEVICE, assert_close
from oclcore.ops import linalg_factor

TOL = {torch.float64: 1e-9, torch.float32: 2e-3}
SIZES = [1, 3, 7, 33]


def _layout(x, layout):
    """``x`` (CPU) as a contiguous, transposed or strided ocl view holding the same values."""
    if layout == "contiguous" or x.dim() < 2:
        return x.to(DEVICE)
    if layout == "transposed":
        return x.mT.contiguous().to(DEVICE).mT
    wide = torch.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=x.dtype)
    wide[..., ::2] = x
    return wide.to(DEVICE)[..., ::2]


def _compare(f, inputs, dtype=torch.float64, grad=True, layout="contiguous", tol=None):
    """Runs ``f`` on CPU ``inputs`` and on their ocl copies (in ``layout``); compares every output
    (integers exactly) and, with ``grad``, the inputs' gradients for a random cotangent."""
    tol = tol or TOL[dtype]
    cpu = [x.to(dtype).requires_grad_(grad) for x in inputs]
    ocl = [_layout(x.detach(), layout).requires_grad_(grad) for x in cpu]
    want, got = f(*cpu), f(*ocl)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for g, w in zip(got, want):
        assert g.device.type == "ocl"
        assert_close(g, w, tol, tol)
    if grad:
        pairs = [(g, w) for g, w in zip(got, want) if w.requires_grad]
        cot = [torch.randn_like(w) for _, w in pairs]
        gw = torch.autograd.grad([w for _, w in pairs], cpu, cot)
        gg = torch.autograd.grad([g for g, _ in pairs], ocl, [c.to(DEVICE) for c in cot])
        for g, w in zip(gg, gw):
            assert_close(g, w, 10 * tol, 10 * tol)
    return got, want


def _well_conditioned(*shape):
    n = shape[-1]
    return torch.randn(*shape, dtype=torch.float64) + n ** 0.5 * torch.eye(n, dtype=torch.float64)


def _spd(*shape):
    x = torch.randn(*shape, dtype=torch.float64)
    return x @ x.mT + shape[-1] * torch.eye(shape[-1], dtype=torch.float64)


# ---- LU ----

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_lu_factor_matches_cpu(no_fallbacks, n, layout):
    torch.manual_seed(n)
    a = torch.randn(2, n, n, dtype=torch.float64)
    (lu, piv, info), _ = _compare(lambda x: torch.linalg.lu_factor_ex(x), [a], layout=layout)
    assert piv.dtype == torch.int32 and info.dtype == torch.int32


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 7, 4), (2, 4, 7)])
def test_lu_rectangular(no_fallbacks, shape):
    torch.manual_seed(1)
    a = torch.randn(*shape, dtype=torch.float64)
    _compare(lambda x: torch.linalg.lu_factor_ex(x), [a])
    _compare(lambda x: torch.linalg.lu(x), [a], layout="transposed")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lu_unpack_and_dtypes(no_fallbacks, dtype):
    torch.manual_seed(2)
    a = torch.randn(3, 6, 6, dtype=torch.float64)
    _compare(lambda x: torch.lu_unpack(*torch.linalg.lu_factor(x)), [a], dtype=dtype)
    _compare(lambda x: torch.linalg.lu(x), [a], dtype=dtype)


# Exactly singular matrices whose elimination is exact (power-of-2 multipliers) in either
# orientation, so that every device finds torch's zero pivots, fused multiply-add or not.
SINGULAR = torch.tensor([[2., 1, 1], [4, 2, 2], [1, 3, 5]], dtype=torch.float64)


def test_lu_singular_info_and_errors(no_fallbacks):
    a = SINGULAR
    batch = torch.stack([torch.eye(3, dtype=torch.float64), a, a.mT, torch.zeros(3, 3, dtype=torch.float64)])
    want = torch.linalg.lu_factor_ex(batch)
    got = torch.linalg.lu_factor_ex(batch.to(DEVICE))
    assert got.info.cpu().tolist() == want.info.tolist() == [0, 3, 2, 1]
    assert torch.equal(got.pivots.cpu(), want.pivots)
    assert_close(got.LU, want.LU, 1e-12, 1e-12)
    with pytest.raises(RuntimeError, match=r"torch.linalg.lu_factor: \(Batch element 1\): U\[3,3\] is zero"):
        torch.linalg.lu_factor(batch.to(DEVICE))
    with pytest.raises(RuntimeError, match=r"LU without pivoting is not implemented on the CPU"):
        torch.linalg.lu_factor(a.to(DEVICE), pivot=False)


def test_lu_nan_pivot_as_lapack(no_fallbacks):
    a = torch.tensor([[float("nan"), 1.0], [2.0, 1.0]], dtype=torch.float64)
    want, got = torch.linalg.lu_factor_ex(a), torch.linalg.lu_factor_ex(a.to(DEVICE))
    assert torch.equal(got.pivots.cpu(), want.pivots) and torch.equal(got.info.cpu(), want.info)
    assert_close(got.LU, want.LU)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [True, False])
def test_lu_solve(no_fallbacks, left, adjoint):
    torch.manual_seed(3)
    a = _well_conditioned(2, 1, 7, 7)
    b = torch.randn(3, 7, 2, dtype=torch.float64)  # broadcast against A's batch
    if not left:
        b = b.mT.contiguous()

    def f(x, y):
        lu, piv = torch.linalg.lu_factor(x)
        return torch.linalg.lu_solve(lu, piv, y, left=left, adjoint=adjoint)
    _compare(f, [a, b])
    _compare(f, [a, b], layout="transposed")


# ---- triangular solves ----

@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unit", [True, False])
def test_solve_triangular(no_fallbacks, upper, left, unit):
    torch.manual_seed(4)
    a = _well_conditioned(2, 1, 7, 7)
    b = torch.randn(3, 7, 5, dtype=torch.float64)
    if not left:
        b = b.mT.contiguous()
    f = lambda x, y: torch.linalg.solve_triangular(x.triu() if upper else x.tril(), y, upper=upper, left=left,
                                                   unitriangular=unit)
    _compare(f, [a, b])
    _compare(f, [a, b], layout="strided")


@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triangular_solve(no_fallbacks, dtype):
    torch.manual_seed(5)
    a, b = _well_conditioned(4, 4).triu(), torch.randn(2, 4, 3, dtype=torch.float64)
    for transpose in (False, True):
        _compare(lambda y, x: torch.triangular_solve(y, x, upper=True, transpose=transpose), [b, a], dtype=dtype)


# ---- solve, inv, det ----

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_solve(no_fallbacks, n, layout):
    torch.manual_seed(6)
    a = _well_conditioned(2, n, n)
    _compare(lambda x, y: torch.linalg.solve(x, y), [a, torch.randn(2, n, 3)], layout=layout)
    _compare(lambda x, y: torch.linalg.solve(x, y), [a, torch.randn(n)], layout=layout)  # a vector, broadcast
    _compare(lambda x, y: torch.linalg.solve(x, y), [a, torch.randn(2, n)], layout=layout)  # a batch of vectors
    _compare(lambda x, y: torch.linalg.solve(x, y, left=False), [a, torch.randn(4, n)], layout=layout)


def test_solve_ex_outputs_match_torch(no_fallbacks):
    torch.manual_seed(7)
    a, b = torch.randn(3, 5, 5, dtype=torch.float64), torch.randn(2, 1, 5, 2, dtype=torch.float64)
    for x in (a, a.mT):
        want = torch.ops.aten._linalg_solve_ex(x, b)
        got = torch.ops.aten._linalg_solve_ex(x.to(DEVICE) if x is a else a.to(DEVICE).mT, b.to(DEVICE))
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            assert_close(g, w, 1e-9, 1e-9)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inv(no_fallbacks, n, dtype):
    torch.manual_seed(8)
    a = _well_conditioned(3, n, n)
    _compare(torch.linalg.inv, [a], dtype=dtype)
    _compare(torch.inverse, [a], dtype=dtype, layout="transposed")


def test_inv_singular_errors_and_info(no_fallbacks):
    a = torch.tensor([[1., 2, 3], [2, 4, 6], [1, 0, 1]])
    for x in (a, torch.stack([torch.eye(3), torch.zeros(3, 3)])):
        assert torch.equal(torch.linalg.inv_ex(x.to(DEVICE)).info.cpu(), torch.linalg.inv_ex(x).info)
    with pytest.raises(torch.linalg.LinAlgError, match=r"^linalg.inv: The diagonal element 3 is zero, the inversion "
                                                       r"could not be completed because the input matrix is singular."):
        torch.linalg.inv(a.to(DEVICE))
    with pytest.raises(torch.linalg.LinAlgError, match=r"^linalg.inv: \(Batch element 1\): The diagonal element 1 "):
        torch.linalg.inv(torch.stack([torch.eye(3), torch.zeros(3, 3)]).to(DEVICE))
    with pytest.raises(torch.linalg.LinAlgError, match=r"^linalg.inv_ex: The diagonal element 3 is zero"):
        torch.linalg.inv_ex(a.to(DEVICE), check_errors=True)
    with pytest.raises(torch.linalg.LinAlgError, match=r"^torch.linalg.solve: The solver failed because the input "
                                                       r"matrix is singular."):
        torch.linalg.solve(a.to(DEVICE), torch.ones(3, 1, device=DEVICE))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_det_slogdet_logdet(no_fallbacks, n, layout):
    torch.manual_seed(9)
    a = torch.randn(2, n, n, dtype=torch.float64)
    _compare(torch.linalg.det, [a], layout=layout)
    _compare(torch.det, [a], layout=layout)
    _compare(torch.linalg.slogdet, [a], layout=layout)
    _compare(torch.logdet, [_spd(2, n, n)], layout=layout)
    # the factorization torch returns alongside (of A^T when A is contiguous)
    got, want = torch.ops.aten._linalg_det(_layout(a, layout)), torch.ops.aten._linalg_det(
        a if layout == "contiguous" else a.mT.contiguous().mT)
    for g, w in zip(got, want):
        assert_close(g, w, 1e-9, 1e-9)


def test_det_singular(no_fallbacks):
    a = torch.stack([SINGULAR, SINGULAR.mT, torch.tensor([[0., 0, 0], [1, 2, 3], [4, 5, 6]], dtype=torch.float64)])
    _compare(torch.linalg.det, [a], grad=False)
    _compare(torch.linalg.slogdet, [a], grad=False)
    nan = torch.tensor([[float("nan"), 1.0], [1.0, 1.0]], dtype=torch.float64)
    _compare(torch.linalg.slogdet, [nan], grad=False)


# ---- Cholesky ----

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_cholesky(no_fallbacks, n, upper, layout):
    torch.manual_seed(10)
    # (symmetrised inside f, so the gradient matches torch's for a symmetric input)
    f = lambda x: torch.linalg.cholesky_ex((x + x.mT) / 2, upper=upper)
    _compare(f, [_spd(2, n, n)], layout=layout)


def test_cholesky_float32(no_fallbacks):
    torch.manual_seed(11)
    _compare(lambda x: torch.linalg.cholesky((x + x.mT) / 2), [_spd(3, 7, 7)], dtype=torch.float32)


def test_cholesky_not_positive_definite(no_fallbacks):
    a = torch.tensor([[4., 2, 1], [2, -3, 0], [1, 0, 5]], dtype=torch.float64)
    batch = torch.stack([torch.eye(3, dtype=torch.float64), a, -torch.eye(3, dtype=torch.float64)])
    for upper in (False, True):
        want, got = torch.linalg.cholesky_ex(batch, upper=upper), torch.linalg.cholesky_ex(batch.to(DEVICE),
                                                                                           upper=upper)
        assert got.info.cpu().tolist() == want.info.tolist() == [0, 2, 1]
        assert_close(got.L, want.L, 1e-12, 1e-12)  # the values LAPACK leaves behind
    with pytest.raises(torch.linalg.LinAlgError, match=r"^linalg.cholesky: \(Batch element 1\): The factorization "
                                                       r"could not be completed because the input is not "
                                                       r"positive-definite \(the leading minor of order 2 is not "
                                                       r"positive-definite\)."):
        torch.linalg.cholesky(batch.to(DEVICE))
    with pytest.raises(torch.linalg.LinAlgError, match=r"^linalg.cholesky_ex: The factorization"):
        torch.linalg.cholesky_ex(a.to(DEVICE), check_errors=True)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse(no_fallbacks, upper):
    torch.manual_seed(12)
    a = _spd(2, 1, 6, 6)
    b = torch.randn(3, 6, 2, dtype=torch.float64)

    def solve(x, y):
        return torch.cholesky_solve(y, torch.linalg.cholesky((x + x.mT) / 2, upper=upper), upper=upper)

    def inverse(x):
        return torch.cholesky_inverse(torch.linalg.cholesky((x + x.mT) / 2, upper=upper), upper=upper)
    _compare(solve, [a, b])
    _compare(inverse, [a[:, 0]], layout="transposed")
    with pytest.raises(torch.linalg.LinAlgError, match=r"^cholesky_inverse: The diagonal element 2 is zero"):
        torch.cholesky_inverse(torch.diag(torch.tensor([1.0, 0.0, 1.0])).to(DEVICE))


# ---- edge cases ----

def test_empty_inputs(no_fallbacks):
    for shape in [(0, 3, 3), (2, 0, 0), (0, 0)]:
        a = torch.randn(*shape, dtype=torch.float64)
        _compare(lambda x: torch.linalg.lu_factor_ex(x), [a], grad=False)
        _compare(lambda x: torch.linalg.lu(x), [a], grad=False)
        _compare(torch.linalg.inv, [a], grad=False)
        _compare(torch.linalg.det, [a], grad=False)
        _compare(torch.linalg.slogdet, [a], grad=False)
        _compare(lambda x: torch.linalg.cholesky_ex(x), [a], grad=False)
        b = torch.randn(*shape[:-1], 2, dtype=torch.float64)
        _compare(lambda x, y: torch.linalg.solve(x, y), [a, b], grad=False)
        _compare(lambda x, y: torch.linalg.solve_triangular(x, y, upper=True), [a, b], grad=False)
    _compare(lambda x, y: torch.linalg.solve(x, y), [_well_conditioned(3, 3), torch.randn(3, 0)], grad=False)


def test_errors_like_cpu():
    cases = [
        (lambda x: torch.linalg.inv(x), torch.ones(2, 3)),
        (lambda x: torch.linalg.lu_factor(x), torch.ones(3, 3, dtype=torch.float16)),
        (lambda x: torch.linalg.cholesky(x), torch.ones(3, 3, dtype=torch.int64)),
        (lambda x: torch.linalg.solve(x, torch.ones(4, 1, device=x.device)), torch.ones(3, 3)),
        (lambda x: torch.linalg.solve_triangular(x, torch.ones(3, 1, device=x.device), upper=True),
         torch.ones(3, 3, dtype=torch.float16)),
        (lambda x: torch.linalg.lu_solve(x, torch.ones(3, dtype=torch.int64, device=x.device),
                                         torch.ones(3, 1, device=x.device)), torch.ones(3, 3)),
    ]
    for f, x in cases:
        with pytest.raises(Exception) as want:
            f(x)
        with pytest.raises(type(want.value)) as got:
            f(x.to(DEVICE))
        assert str(got.value) == str(want.value)


# ---- blocked paths (a small block so that small matrices take them) ----

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocked_paths(no_fallbacks, monkeypatch, dtype):
    monkeypatch.setattr(linalg_factor, "PANEL", 8)
    monkeypatch.setattr(linalg_factor, "TRSM_BLOCK", 8)
    torch.manual_seed(13)
    n = 33
    a = torch.randn(2, n, n, dtype=torch.float64)
    _compare(lambda x: torch.linalg.lu_factor_ex(x), [a], dtype=dtype)
    _compare(lambda x: torch.linalg.lu_factor_ex(x), [torch.randn(2, 40, 21)], dtype=dtype)
    _compare(lambda x: torch.linalg.lu_factor_ex(x), [torch.randn(21, 40)], dtype=dtype, layout="transposed")
    _compare(lambda x, y: torch.linalg.solve(x, y), [_well_conditioned(2, n, n), torch.randn(3, 1, n, 4)],
             dtype=dtype)
    _compare(lambda x: torch.linalg.cholesky((x + x.mT) / 2), [_spd(2, n, n)], dtype=dtype)
    _compare(lambda x, y: torch.linalg.solve_triangular(x.tril(), y, upper=False),
             [_well_conditioned(3, 1, n, n), torch.randn(1, 2, n, 3)], dtype=dtype)
    singular = torch.randn(n, n, dtype=torch.float64)
    singular[:, 20] = 0
    assert torch.linalg.lu_factor_ex(singular.to(DEVICE)).info.item() == 21
    failing = _spd(n, n)
    failing[12, 12] = -1000
    assert torch.linalg.cholesky_ex(failing.to(DEVICE)).info.item() == torch.linalg.cholesky_ex(failing).info.item()


def test_kernels_are_used():
    """The factorizations run as their own ops on the device (not decomposed, not on the CPU)."""
    oclcore.reset_fallbacks()
    a = _spd(4, 4).to(DEVICE)
    torch.linalg.cholesky(a), torch.linalg.lu_factor(a), torch.linalg.inv(a), torch.linalg.det(a)
    assert oclcore.fallbacks() == {}
    assert {"lu_panel", "cholesky_panel", "trsm_columns", "lu_determinant"} <= {k[0] for k in linalg_factor._kernels}


def test_out_variants(no_fallbacks):
    torch.manual_seed(14)
    a = _well_conditioned(2, 4, 4)
    s, b = _spd(4, 4), torch.randn(4, 2, dtype=torch.float64)
    cases = [
        lambda x, y, z, e: torch.linalg.inv(x, out=e()),
        lambda x, y, z, e: torch.linalg.solve(x, y, out=e()),
        lambda x, y, z, e: torch.linalg.lu_factor(x, out=(e(), e(torch.int32))),
        lambda x, y, z, e: torch.linalg.lu(x, out=(e(), e(), e())),
        lambda x, y, z, e: torch.linalg.cholesky(z, out=e()),
        lambda x, y, z, e: torch.linalg.slogdet(x, out=(e(), e())),
        lambda x, y, z, e: torch.linalg.solve_triangular(x, y, upper=True, out=e()),
        lambda x, y, z, e: torch.cholesky_inverse(z, out=e()),
    ]
    for f in cases:
        want = f(a, b, s, lambda dtype=torch.float64: torch.empty(0, dtype=dtype))
        got = f(a.to(DEVICE), b.to(DEVICE), s.to(DEVICE),
                lambda dtype=torch.float64: torch.empty(0, dtype=dtype, device=DEVICE))
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert g.stride() == w.stride()
            assert_close(g, w, 1e-9, 1e-9)
    with pytest.raises(RuntimeError, match="Expected out tensor to have dtype"):
        torch.linalg.inv(a.to(DEVICE), out=torch.empty(0, device=DEVICE))
