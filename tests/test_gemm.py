"""The GEMM core on ocl: the torch ops built on it (mm, addmm, bmm, baddbmm,
linear, mv, dot, matmul, torch.ops.oclcore.gemm) with their gradients, and
oclcore.gemm.planner directly on runtime buffers (edge shapes, the four
transpositions, strided/offset/batched operands, alpha/beta, float64, split-K of
both kernels, the small tile set, shared batch operands, every shipped
database entry), all against float64 references with a K-scaled tolerance."""

import itertools
import json
import os
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close
from oclcore import runtime
from oclcore.gemm import database, params as P, planner

EPS = {"float32": 2.0 ** -24, "float64": 2.0 ** -53}
NPD = {"float32": np.float32, "float64": np.float64}
TORCH_EPS = {torch.float32: 2.0 ** -24, torch.float64: 2.0 ** -53, torch.float16: 2.0 ** -11}


# ---- tolerance -------------------------------------------------------------------------------

def _k_tol(K, magnitude, eps):
    """Error bound of a length-K dot product: a few ulps per term of the sum of |products|."""
    return 4 * (K + 3) * eps * magnitude + 1e-30


def assert_gemm_close(got, ref, magnitude, K, eps):
    """|got - ref| <= K-scaled bound, elementwise, with ref and magnitude in float64."""
    got = np.asarray(got, np.float64)
    tol = _k_tol(K, np.asarray(magnitude, np.float64), eps)
    err = np.abs(got - ref)
    bad = ~(err <= tol)
    assert not bad.any(), (f"{bad.sum()} of {bad.size} elements off; worst error/tolerance "
                           f"{np.nanmax(err / tol):.3g}")


def _torch_check(got, ref64, magnitude, K):
    """Compares an ocl result with a float64 CPU reference."""
    assert got.device.type == "ocl"
    assert got.shape == ref64.shape, (got.shape, ref64.shape)
    assert_gemm_close(got.detach().cpu().double().numpy(), ref64.detach().numpy(),
                      magnitude.detach().numpy(), K, TORCH_EPS[got.dtype])


def _o(t):
    return t.to(DEVICE)


# ---- torch ops -------------------------------------------------------------------------------

SHAPES = [(1, 1, 1), (1, 7, 3), (7, 1, 5), (13, 17, 1), (31, 37, 41), (65, 63, 67), (3, 200, 7),
          (50, 61, 3000), (129, 127, 33), (300, 260, 270)]


@pytest.mark.parametrize("M,N,K", SHAPES, ids=lambda v: str(v))
def test_mm_shapes(no_fallbacks, M, N, K):
    torch.manual_seed(M * 1000 + N + K)
    a, b = torch.randn(M, K), torch.randn(K, N)
    c = _o(a) @ _o(b)
    _torch_check(c, a.double() @ b.double(), a.double().abs() @ b.double().abs(), K)


@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
def test_mm_transposed_views(no_fallbacks, ta, tb):
    torch.manual_seed(int(ta) * 2 + int(tb))
    M, N, K = 37, 45, 29
    a = torch.randn(K, M).t() if ta else torch.randn(M, K)
    b = torch.randn(N, K).t() if tb else torch.randn(K, N)
    ao, bo = _o(a.t().contiguous()).t() if ta else _o(a), _o(b.t().contiguous()).t() if tb else _o(b)
    assert ao.is_contiguous() != ta and bo.is_contiguous() != tb
    c = ao @ bo
    _torch_check(c, a.double() @ b.double(), a.double().abs() @ b.double().abs(), K)
    # a transposed output too: (B^T A^T)^T
    ct = (bo.t() @ ao.t()).t()
    _torch_check(ct, a.double() @ b.double(), a.double().abs() @ b.double().abs(), K)


def test_mm_strided_and_offset_views(no_fallbacks):
    torch.manual_seed(3)
    big_a, big_b = torch.randn(80, 70), torch.randn(90, 100)
    a, b = big_a[3:69:2, 5:24], big_b[7:26, 1:100:3]          # offsets and non-unit strides
    assert a.stride() == (140, 1) and b.stride() == (100, 3)
    ao, bo = _o(big_a)[3:69:2, 5:24], _o(big_b)[7:26, 1:100:3]
    _torch_check(ao @ bo, a.double() @ b.double(), a.double().abs() @ b.double().abs(), 19)
    at = _o(big_a.t().contiguous()).t()[3:69:2, 5:24]          # column-major slice
    _torch_check(at @ bo, a.double() @ b.double(), a.double().abs() @ b.double().abs(), 19)
    out = torch.full((40, 120), float("nan"), device=DEVICE)
    view = out[:33, ::3][:, :33]                                # strided out= view
    torch.mm(ao, bo, out=view)
    _torch_check(view, a.double() @ b.double(), a.double().abs() @ b.double().abs(), 19)
    rest = out.cpu()
    rest[:33, 0:99:3] = 0
    assert torch.isnan(rest).sum() == 40 * 120 - 33 * 33, "mm wrote outside the out= view"


def test_mm_empty_and_k0(no_fallbacks):
    a, b = torch.randn(4, 0), torch.randn(0, 5)
    c = _o(a) @ _o(b)
    assert c.shape == (4, 5) and (c.cpu() == 0).all()
    assert (_o(torch.randn(0, 3)) @ _o(torch.randn(3, 5))).shape == (0, 5)
    assert (_o(torch.randn(4, 3)) @ _o(torch.randn(3, 0))).shape == (4, 0)
    c = torch.addmm(_o(torch.ones(4, 5)), _o(a), _o(b), beta=2.5)
    assert (c.cpu() == 2.5).all()


@pytest.mark.parametrize("alpha,beta", [(1, 1), (0.5, -1.5), (-2.0, 0)])
def test_addmm_alpha_beta(no_fallbacks, alpha, beta):
    torch.manual_seed(4)
    M, N, K = 40, 33, 50
    a, b = torch.randn(M, K), torch.randn(K, N)
    for bias in (torch.randn(M, N), torch.randn(N), torch.randn(1, N), torch.randn(M, 1)):
        c = torch.addmm(_o(bias), _o(a), _o(b), beta=beta, alpha=alpha)
        ref = alpha * (a.double() @ b.double()) + (beta * bias.double() if beta else 0)
        mag = abs(alpha) * (a.double().abs() @ b.double().abs()) + abs(beta) * bias.double().abs()
        _torch_check(c, ref.expand(M, N), mag.expand(M, N), K)


def test_addmm_beta0_ignores_nan(no_fallbacks):
    torch.manual_seed(5)
    a, b = torch.randn(9, 11), torch.randn(11, 13)
    c = torch.addmm(_o(torch.full((9, 13), float("nan"))), _o(a), _o(b), beta=0)
    _torch_check(c, a.double() @ b.double(), a.double().abs() @ b.double().abs(), 11)
    out = torch.full((9, 13), float("nan"), device=DEVICE)
    torch.mm(_o(a), _o(b), out=out)
    _torch_check(out, a.double() @ b.double(), a.double().abs() @ b.double().abs(), 11)


def test_bmm_baddbmm_and_broadcast_matmul(no_fallbacks):
    torch.manual_seed(6)
    a, b = torch.randn(3, 29, 23), torch.randn(3, 31, 23).transpose(1, 2)
    ao, bo = _o(a), _o(b.transpose(1, 2).contiguous()).transpose(1, 2)
    ref, mag = a.double() @ b.double(), a.double().abs() @ b.double().abs()
    _torch_check(torch.bmm(ao, bo), ref, mag, 23)
    c = torch.randn(3, 29, 31)
    r = torch.baddbmm(_o(c), ao, bo, beta=0.25, alpha=-2.0)
    _torch_check(r, 0.25 * c.double() - 2.0 * ref, 2 * mag + 0.25 * c.double().abs(), 23)
    r = torch.baddbmm(_o(torch.full((3, 29, 31), float("nan"))), ao, bo, beta=0)
    _torch_check(r, ref, mag, 23)
    # matmul with a broadcast batch: (4, 1, M, K) @ (3, K, N) and (B, M, K) @ (K, N)
    x, y = torch.randn(4, 1, 6, 9), torch.randn(3, 9, 5)
    _torch_check(_o(x) @ _o(y), x.double() @ y.double(), x.double().abs() @ y.double().abs(), 9)
    w = torch.randn(9, 5)
    z = torch.randn(2, 6, 9)
    _torch_check(_o(z) @ _o(w), z.double() @ w.double(), z.double().abs() @ w.double().abs(), 9)
    # a batch of one shared operand, expanded (batch stride 0)
    e = torch.randn(1, 23, 31)
    r = torch.bmm(ao, _o(e).expand(3, 23, 31))
    _torch_check(r, a.double() @ e.double(), a.double().abs() @ e.double().abs(), 23)


def test_mv_addmv_dot(no_fallbacks):
    torch.manual_seed(7)
    a, x = torch.randn(37, 301), torch.randn(301)
    _torch_check(torch.mv(_o(a), _o(x)), a.double() @ x.double(), a.double().abs() @ x.double().abs(), 301)
    at = _o(a.t().contiguous()).t()
    _torch_check(at @ _o(x), a.double() @ x.double(), a.double().abs() @ x.double().abs(), 301)
    xs = torch.randn(602)
    _torch_check(torch.mv(_o(a), _o(xs)[::2]), a.double() @ xs[::2].double(),
                 a.double().abs() @ xs[::2].double().abs(), 301)
    v = torch.randn(37)
    r = torch.addmv(_o(v), _o(a), _o(x), beta=0.5, alpha=2.0)
    _torch_check(r, 0.5 * v.double() + 2 * (a.double() @ x.double()),
                 0.5 * v.double().abs() + 2 * (a.double().abs() @ x.double().abs()), 301)
    y = torch.randn(301)
    d = torch.dot(_o(x), _o(y))
    assert d.dim() == 0
    _torch_check(d, x.double() @ y.double(), x.double().abs() @ y.double().abs(), 301)
    _torch_check(_o(x) @ _o(y), x.double() @ y.double(), x.double().abs() @ y.double().abs(), 301)


def test_float64_and_float16(no_fallbacks):
    torch.manual_seed(8)
    a, b = torch.randn(70, 90, dtype=torch.float64), torch.randn(90, 50, dtype=torch.float64)
    c = _o(a) @ _o(b)
    assert c.dtype == torch.float64
    _torch_check(c, a @ b, a.abs() @ b.abs(), 90)
    c = torch.addmm(_o(torch.randn(50, dtype=torch.float64)), _o(a), _o(b))
    assert c.dtype == torch.float64
    ah, bh = a.half(), b.half()
    ch = _o(ah) @ _o(bh)
    assert ch.dtype == torch.float16
    ref = ah.double() @ bh.double()
    assert_close(ch.float(), ref.float(), rtol=2e-3, atol=2e-3)


def test_linear_and_autograd(no_fallbacks):
    torch.manual_seed(9)
    x, w, b = torch.randn(4, 5, 33), torch.randn(17, 33), torch.randn(17)
    xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
    xo, wo, bo = (_o(t).requires_grad_() for t in (x, w, b))
    yc, yo = F.linear(xs, ws, bs), F.linear(xo, wo, bo)
    assert_close(yo, yc, 1e-5, 1e-5)
    g = torch.randn_like(yc)
    yc.backward(g)
    yo.backward(_o(g))
    for to, tc in ((xo, xs), (wo, ws), (bo, bs)):
        assert_close(to.grad, tc.grad, 1e-5, 1e-5)
    # no bias, and a chain of matmuls with transposed operands
    a, m = torch.randn(6, 20), torch.randn(9, 20)
    ac, mc = a.clone().requires_grad_(), m.clone().requires_grad_()
    ao, mo = _o(a).requires_grad_(), _o(m).requires_grad_()
    (F.linear(ac, mc).t() @ ac).sum().backward()
    (F.linear(ao, mo).t() @ ao).sum().backward()
    assert_close(ao.grad, ac.grad, 1e-5, 1e-5)
    assert_close(mo.grad, mc.grad, 1e-5, 1e-5)


def test_bmm_matmul_autograd(no_fallbacks):
    torch.manual_seed(10)
    a, b = torch.randn(3, 8, 12), torch.randn(12, 7)
    ac, bc = a.clone().requires_grad_(), b.clone().requires_grad_()
    ao, bo = _o(a).requires_grad_(), _o(b).requires_grad_()
    g = torch.randn(3, 8, 7)
    (ac @ bc).backward(g)
    (ao @ bo).backward(_o(g))
    assert_close(ao.grad, ac.grad, 1e-5, 1e-5)
    assert_close(bo.grad, bc.grad, 1e-5, 1e-5)


@pytest.mark.parametrize("act", ["none", "relu"])
def test_oclcore_gemm_op(no_fallbacks, act):
    torch.manual_seed(11)
    a, b, bias = torch.randn(19, 27), torch.randn(27, 23), torch.randn(23)
    for with_bias in (False, True):
        ref = torch.ops.oclcore.gemm(a, b, bias if with_bias else None, 1.5, act)  # the CPU reference impl
        got = torch.ops.oclcore.gemm(_o(a), _o(b), _o(bias) if with_bias else None, 1.5, act)
        lin = 1.5 * (a.double() @ b.double()) + (bias.double() if with_bias else 0)
        _torch_check(got, lin.relu() if act == "relu" else lin,
                     1.5 * (a.double().abs() @ b.double().abs()) + bias.double().abs(), 27)
        assert_close(got, ref, 1e-5, 1e-5)
    # autograd through the custom op
    ac, bc, biasc = (t.clone().requires_grad_() for t in (a, b, bias))
    ao, bo, biaso = (_o(t).requires_grad_() for t in (a, b, bias))
    g = torch.randn(19, 23)
    torch.ops.oclcore.gemm(ac, bc, biasc, 1.5, act).backward(g)
    torch.ops.oclcore.gemm(ao, bo, biaso, 1.5, act).backward(_o(g))
    for to, tc in ((ao, ac), (bo, bc), (biaso, biasc)):
        assert_close(to.grad, tc.grad, 1e-5, 1e-5)


def test_oclcore_gemm_op_errors_and_fake():
    with pytest.raises(RuntimeError, match="expects"):
        torch.ops.oclcore.gemm(_o(torch.randn(3, 4)), _o(torch.randn(5, 6)))
    with pytest.raises(RuntimeError, match="act"):
        torch.ops.oclcore.gemm(_o(torch.randn(3, 4)), _o(torch.randn(4, 6)), None, 1.0, "swish")
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        r = torch.ops.oclcore.gemm(torch.empty(3, 4), torch.empty(4, 6), torch.empty(6), 1.0, "relu")
    assert r.shape == (3, 6)


def test_mm_errors_match_torch():
    a, b = torch.randn(3, 4), torch.randn(5, 6)
    with pytest.raises(RuntimeError) as cpu:
        a @ b
    with pytest.raises(RuntimeError) as ocl:
        _o(a) @ _o(b)
    assert str(ocl.value) == str(cpu.value)


# ---- the planner on runtime buffers -------------------------------------------------------------

class Dev:
    """oclcore.gemm's view of ocl:0 through the runtime."""

    def __init__(self):
        self.dev = runtime.device(0)
        self.info = self.dev.info()

    def get_kernel(self, files, defines, name, signature):
        return runtime.get_kernel(files, defines, name, signature, self.dev)

    def alloc(self, nbytes):
        return self.dev.alloc(max(int(nbytes), 1))

    def upload(self, a):
        a = np.ascontiguousarray(a)
        buf = self.alloc(a.nbytes)
        buf.write(a)
        return buf

    def download(self, buf, n, dtype):
        out = np.empty(n, dtype)
        buf.read(out)
        return out


@pytest.fixture(scope="module")
def dev():
    return Dev()


def _layout(rows, cols, batch, kind, extra=0):
    """(offset, row stride, col stride, batch stride, flat size) of a rows x cols (x batch) operand:
    kind 'n' row-major, 't' column-major, 's'/'u' with non-unit strides; a trailing 'o' adds an offset."""
    off = 3 + extra if kind.endswith("o") else 0
    k = kind.rstrip("o")
    rs, cs = {"n": (cols, 1), "t": (1, rows), "s": (2 * cols + 3, 2), "u": (3, 3 * rows + 1)}[k]
    span = max((rows - 1) * rs + (cols - 1) * cs + 1, 1)
    bs = span + 5 if batch > 1 else 0
    return off, rs, cs, bs, off + (batch - 1) * bs + span


def _view(flat, off, rows, cols, batch, rs, cs, bs):
    it = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[off:], (batch, rows, cols), (bs * it, rs * it, cs * it))


def run_check(dev, M, N, K, la="n", lb="n", lc="n", batch=1, alpha=1.0, beta=0.0, kind=None,
              params=None, dtype="float32", bias=None, act=None, b_shared=False, seed=0, split=None,
              pack=None):
    """Runs one GEMM through plan_gemm/run_gemm (or the one-call gemm() when kind and params are
    None) on layouts la/lb/lc and checks it against float64 numpy, including that nothing outside
    C's view changed and that C is not read when beta == 0 (it is filled with NaN)."""
    rng = np.random.default_rng(seed)
    npd = NPD[dtype]
    ao, ars, acs, abs_, asz = _layout(M, K, batch, la)
    bo, brs, bcs, bbs, bsz = _layout(K, N, 1 if b_shared else batch, lb, 1)
    co, crs, ccs, cbs, csz = _layout(M, N, batch, lc, 2)
    bbs = 0 if b_shared else bbs
    Af, Bf = rng.uniform(-1, 1, asz).astype(npd), rng.uniform(-1, 1, bsz).astype(npd)
    Cf = rng.uniform(-1, 1, csz).astype(npd) if beta != 0 else np.full(csz, np.nan, npd)
    A = _view(Af, ao, M, K, batch, ars, acs, abs_).astype(np.float64)
    B = _view(Bf, bo, K, N, 1 if b_shared else batch, brs, bcs, bbs).astype(np.float64)
    C = _view(Cf, co, M, N, batch, crs, ccs, cbs).astype(np.float64)
    biasv = rng.uniform(-1, 1, (M if bias == "row" else N) + 2).astype(npd)
    bvec = np.zeros(1)
    if bias == "col":
        bvec = biasv[2:].astype(np.float64)[None, None, :]
    elif bias == "row":
        bvec = biasv[2:].astype(np.float64)[None, :, None]
    lin = alpha * (A @ B) + (beta * C if beta != 0 else 0) + bvec
    ref = np.maximum(lin, 0) if act == "relu" else lin
    mag = abs(alpha) * (np.abs(A) @ np.abs(B)) + (abs(beta) * np.abs(C) if beta != 0 else 0) + np.abs(bvec)
    a, b, c = dev.upload(Af), dev.upload(Bf), dev.upload(Cf)
    bb = dev.upload(biasv) if bias else None
    if kind is None and params is None and split is None and pack is None:
        plan = planner.plan_gemm(dev.info, M, N, K, batch, dtype, (ars, acs, abs_), (brs, bcs, bbs),
                                 (crs, ccs, cbs), ao, bo, bias, act)
        planner.gemm(dev.get_kernel, dev.info, a, ao, ars, acs, b, bo, brs, bcs, c, co, crs, ccs, M, N, K,
                     alpha, beta, batch, abs_, bbs, cbs, bb, 2 if bias else 0, bias or "col", act, dtype,
                     dev.alloc)
    else:
        plan = planner.plan_gemm(dev.info, M, N, K, batch, dtype, (ars, acs, abs_), (brs, bcs, bbs),
                                 (crs, ccs, cbs), ao, bo, bias, act, kind=kind, params=params, split=split,
                                 pack=pack)
        planner.run_gemm(plan, dev.get_kernel, a, ao, b, bo, c, co, alpha, beta, bb, 2 if bias else 0,
                         alloc=dev.alloc)
    out = dev.download(c, csz, npd)
    got = _view(out, co, M, N, batch, crs, ccs, cbs)
    assert_gemm_close(got, ref, mag, K, EPS[dtype])
    outside = np.ones(csz, bool)
    outside[_view(np.arange(csz), co, M, N, batch, crs, ccs, cbs).ravel()] = False
    np.testing.assert_array_equal(out[outside], Cf[outside], "GEMM wrote outside C's view")
    if kind is not None and plan is not None and K > 0:
        assert plan.kind == kind
    return plan


KINDS = ["direct", "tiled"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 1, 5), (1, 9, 4), (13, 17, 1), (31, 37, 41),
                                   (97, 5, 131), (129, 127, 33), (50, 61, 3000)], ids=str)
def test_planner_shapes(dev, kind, M, N, K):
    run_check(dev, M, N, K, kind=kind, seed=M + N + K)


@pytest.mark.parametrize("kind", KINDS)
def test_planner_transpositions_strides_offsets(dev, kind):
    for i, (la, lb, lc) in enumerate(itertools.product("nt", "nt", "nt")):
        run_check(dev, 37, 45, 29, la, lb, lc, kind=kind, seed=i)
    for i, (la, lb, lc) in enumerate((("so", "uo", "so"), ("uo", "so", "uo"), ("no", "to", "so"))):
        run_check(dev, 33, 70, 19, la, lb, lc, kind=kind, seed=10 + i)


@pytest.mark.parametrize("kind", KINDS)
def test_planner_batched_alpha_beta(dev, kind):
    run_check(dev, 29, 31, 23, "n", "t", "n", batch=3, kind=kind)
    run_check(dev, 29, 31, 23, "to", "s", "u", batch=4, kind=kind, b_shared=True)
    run_check(dev, 40, 33, 50, alpha=0.5, beta=-1.5, kind=kind)
    run_check(dev, 40, 33, 50, "t", "n", "t", batch=2, alpha=-2.0, beta=0.25, kind=kind)
    run_check(dev, 20, 30, 0, beta=0.5, kind=kind)          # K = 0: C = beta * C
    run_check(dev, 20, 30, 0, beta=0.0, kind=kind)          # K = 0, beta = 0: zeros, C not read


@pytest.mark.parametrize("kind", KINDS)
def test_planner_epilogue(dev, kind):
    run_check(dev, 37, 70, 45, bias="col", act="relu", kind=kind)
    run_check(dev, 70, 37, 45, "t", "n", "t", bias="row", act="relu", beta=1.0, kind=kind)
    run_check(dev, 33, 19, 21, "n", "t", "n", batch=2, bias="col", kind=kind)


@pytest.mark.parametrize("kind", KINDS)
def test_planner_float64(dev, kind):
    if not dev.info.get("fp64"):
        pytest.skip("no cl_khr_fp64")
    run_check(dev, 65, 63, 67, "t", "n", "n", kind=kind, dtype="float64")
    run_check(dev, 29, 31, 300, "n", "t", "t", batch=2, alpha=0.5, beta=2.0, kind=kind, dtype="float64")


def test_planner_float16_needs_the_extension(dev):
    if dev.info.get("fp16"):
        run_check(dev, 33, 35, 37, kind="direct", dtype="float16")
    else:
        with pytest.raises(TypeError, match="cl_khr_fp16"):
            planner.plan_gemm(dev.info, 8, 8, 8, dtype="float16")


# A set that stages both operands in local memory, so both can be read in place.
STAGED = dict(MWG=64, NWG=64, KWG=16, MDIMC=8, NDIMC=8, MDIMA=8, NDIMB=8, KWI=2, VWM=4, VWN=2,
              STRM=1, STRN=0, SA=1, SB=1)


def _kernel_contiguity(plan):
    """(A, B) of the kernel problem: 'mcont'/'kcont' where the operand is
    contiguous along M (N) or K, else None."""
    (ars, acs, _), (brs, bcs, _) = plan.ka, plan.kb
    a = "mcont" if ars == 1 else "kcont" if acs == 1 else None
    b = "mcont" if bcs == 1 else "kcont" if brs == 1 else None
    return a, b


@pytest.mark.parametrize("la,lb,lc", [("n", "n", "n"), ("t", "t", "t"), ("n", "t", "t"), ("t", "n", "n"),
                                      ("to", "no", "t")])
def test_tiled_reads_operands_in_place(dev, la, lb, lc):
    """Row- and column-major operands are read without packing, through the
    kernel's bounds checks where the sizes are not multiples of the tile."""
    for i, (M, N, K, batch) in enumerate(((128, 64, 48, 1), (67, 131, 45, 1), (37, 29, 70, 3))):
        plan = run_check(dev, M, N, K, la, lb, lc, batch=batch, kind="tiled", params=STAGED, seed=40 + i,
                         pack=False)
        for op, contiguity in zip("ab", _kernel_contiguity(plan)):
            how = plan.operands[op][0]
            if contiguity == "kcont":   # any offset, stride and size
                assert how == "kcont", (op, plan.operands)
            elif contiguity == "mcont" and batch == 1 and "o" not in la + lb:
                # vector loads: needs sizes that are multiples of the vector width
                rows = plan.kM if op == "a" else plan.kN
                assert (how == "mcont") == (rows % (4 if op == "a" else 2) == 0), (op, plan.operands)
        aligned = M % 64 == 0 and N % 64 == 0 and K % 16 == 0
        assert plan.defines["GUARD"] == int(not aligned and any(
            how != "packed" for how, _, _ in plan.operands.values()))
        assert plan.defines["A_KCONT"] == int(plan.operands["a"][0] == "kcont")
        assert plan.defines["B_KCONT"] == int(plan.operands["b"][0] == "kcont")
        if i == 0 and "o" not in la + lb:
            assert not plan.packs, plan.operands


def test_tiled_in_place_with_split_k_epilogue_and_shared_operand(dev):
    """In-place operands under split-K (chunks beyond K), beta, bias, activation, a shared operand."""
    plan = run_check(dev, 37, 70, 300, "n", "t", "n", beta=0.5, bias="col", act="relu", kind="tiled",
                     params=STAGED, split=3, seed=45, pack=False)
    assert plan.split == 3 and not plan.packs and plan.defines["GUARD"] == 1
    plan = run_check(dev, 29, 64, 230, "t", "n", "t", batch=3, kind="tiled", params=STAGED, split=4,
                     b_shared=True, seed=46)
    # B (shared by the batch) is read in place or packed once: on PoCL in place; on an H200 the
    # same forced plan packed it (not explained yet; the results were right).
    assert plan.operands["b"][0] in ("mcont", "packed") and plan.operands["b"][2] == 0, plan.operands
    if dev.info.get("fp64"):
        run_check(dev, 67, 45, 131, "n", "t", "n", kind="tiled", params=STAGED, dtype="float64", seed=47)


def test_tiled_pack_forced_and_sets_that_cannot_read_in_place(dev):
    """pack=True packs both operands; a set without local staging of B packs a K-contiguous B."""
    plan = run_check(dev, 67, 131, 45, "n", "t", "n", kind="tiled", params=STAGED, pack=True, seed=48)
    assert {how for how, _, _ in plan.operands.values()} == {"packed"} and plan.defines["GUARD"] == 0
    unstaged = dict(STAGED, SB=0)
    plan = run_check(dev, 67, 131, 45, "n", "n", "n", kind="tiled", params=unstaged, seed=49, pack=False)
    assert _kernel_contiguity(plan)[1] != "kcont" or plan.operands["b"][0] == "packed"
    plan = run_check(dev, 64, 128, 45, "n", "t", "t", kind="tiled", params=unstaged, seed=50, pack=False)
    assert plan.operands["b"][0] != "kcont"
    assert not P.kcont_possible(dict(STAGED, KWG=4, KWI=2), "a")       # fewer k than staging lanes
    assert not P.kcont_possible(dict(STAGED, MDIMC=2, NDIMC=2, MDIMA=2, NDIMB=2), "a")
    assert not P.kcont_possible(STAGED, "a", {"local_mem": 1024})


def test_direct_and_tiled_agree(dev):
    """Forcing either kernel family on one problem gives the same (correct) result."""
    rng = np.random.default_rng(12)
    M, N, K = 70, 90, 130
    A = rng.standard_normal((K, M)).astype(np.float32)     # used transposed
    B = rng.standard_normal((K, N)).astype(np.float32)
    a, b = dev.upload(A), dev.upload(B)
    outs = {}
    for kind in KINDS:
        c = dev.upload(np.full((M, N), np.nan, np.float32))
        plan = planner.plan_gemm(dev.info, M, N, K, a_strides=(1, M), kind=kind)
        assert plan.kind == kind
        planner.run_gemm(plan, dev.get_kernel, a, 0, b, 0, c, 0, alloc=dev.alloc)
        outs[kind] = dev.download(c, (M, N), np.float32)
    ref = A.T.astype(np.float64) @ B.astype(np.float64)
    mag = np.abs(A.T.astype(np.float64)) @ np.abs(B.astype(np.float64))
    for out in outs.values():
        assert_gemm_close(out, ref, mag, K, EPS["float32"])
    assert_gemm_close(outs["direct"], outs["tiled"].astype(np.float64), 2 * mag, K, EPS["float32"])


def test_auto_choice_and_one_call_gemm(dev):
    assert planner.choose_kind(dev.info, 5, 6, 7) == "direct"
    assert planner.choose_kind(dev.info, 2048, 2048, 2048) == "tiled"
    assert planner.choose_kind(dev.info, 1, 2048, 2048) == "direct"    # skinny
    for M, N, K in ((5, 6, 7), (300, 300, 300), (1, 512, 512)):
        run_check(dev, M, N, K)
        run_check(dev, M, N, K, "t", "n", "t", batch=2, alpha=0.5, beta=2.0, bias="row", act="relu")


def test_planner_rejects_bad_arguments(dev):
    with pytest.raises(ValueError, match="activation"):
        planner.plan_gemm(dev.info, 4, 4, 4, act="swish")
    with pytest.raises(ValueError, match="bias"):
        planner.plan_gemm(dev.info, 4, 4, 4, bias="diag")
    with pytest.raises(ValueError, match="negative"):
        planner.plan_gemm(dev.info, -1, 4, 4)
    with pytest.raises(ValueError, match="invalid tiled parameters"):
        planner.plan_gemm(dev.info, 64, 64, 64, kind="tiled", params=dict(MWG=30, NWG=32, KWG=16))
    with pytest.raises(ValueError, match="32-bit"):
        planner.plan_gemm(dev.info, 2 ** 31, 4, 4)
    assert planner.plan_gemm(dev.info, 0, 4, 4) is None


# ---- shipped database entries -------------------------------------------------------------------

def _shipped_param_sets():
    """Distinct (kind, params) of every shipped entry, with where they come from."""
    found = {}
    folder = os.path.join(os.path.dirname(database.__file__), "database")
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".json"):
            continue
        with open(os.path.join(folder, fn)) as f:
            entries = json.load(f)["entries"]
        for i, e in enumerate(entries):
            sets = [(f, e[f]) for f in ("tiled", "tiled_small", "direct") if f in e]
            sets += [("tiled", q) for q in e.get("tiled_sets", ())]
            sets += [("tiled", r["set"]) for r in e.get("problems", ())]
            for family, q in sets:
                kind = "direct" if family == "direct" else "tiled"
                key = (kind, tuple(sorted(q.items())))
                found.setdefault(key, []).append("%s#%d:%s/%s/%s" % (fn, i, e.get("vendor"), e.get("arch"),
                                                                     e.get("dtype")))
    return [pytest.param(kind, dict(p), id="%s-%s" % (kind, "+".join(sorted(set(src)))))
            for (kind, p), src in found.items()]


def test_shipped_database_entries_are_valid():
    for param in _shipped_param_sets():
        kind, p = param.values
        check = P.tiled_errors if kind == "tiled" else P.direct_errors
        assert check(P.complete(kind, p)) == [], param.id
        assert set(p) - {"RATE"} == set(P.TILED_KEYS if kind == "tiled" else P.DIRECT_KEYS), param.id
        assert kind == "tiled" or "RATE" not in p, param.id
        assert float(p.get("RATE", 1.0)) > 0, param.id


@pytest.mark.parametrize("kind,params", _shipped_param_sets())
def test_shipped_database_entry_runs(dev, kind, params):
    run_check(dev, 67, 131, 45, "t", "n", "n", kind=kind, params=params, seed=1)
    run_check(dev, 40, 50, 30, "n", "t", "t", batch=2, kind=kind, params=params, seed=2)


def test_database_lookup_on_this_device(dev):
    for family in ("tiled", "direct", "crossover"):
        assert database.lookup(dev.info, family) is not None
    key = database.device_key(dev.info)
    assert len(key) == 4


# ---- split-K, the small tile set, shared batch operands ------------------------------------------

H200 = dict(name="NVIDIA H200", vendor="NVIDIA Corporation", platform="NVIDIA CUDA", type="GPU",
            driver_version="580.159.04", compute_units=132, max_work_group_size=1024, local_mem=49152,
            fp64=True, fp16=True)


def _groups(plan):
    return plan.gsize[0] // plan.lsize[0] * (plan.gsize[1] // plan.lsize[1]) * plan.gsize[2]


def test_split_k_forced(dev):
    """Forced K splits: epilogue and beta in the reduction, batches, packing, chunks of padding."""
    plan = run_check(dev, 37, 70, 300, "n", "t", "n", beta=0.5, bias="col", act="relu", kind="tiled",
                     split=3, seed=20)
    assert plan.split == 3 and plan.reduce is not None and plan.Kc * 3 >= 300
    assert "EPILOGUE" not in plan.defines and "EPILOGUE" in plan.reduce["defines"]
    run_check(dev, 70, 37, 300, "t", "n", "t", bias="row", act="relu", beta=1.0, kind="tiled", split=3, seed=21)
    run_check(dev, 29, 31, 230, "to", "s", "u", batch=3, alpha=-2.0, beta=0.25, kind="tiled", split=2, seed=22)
    run_check(dev, 29, 31, 230, "n", "t", "n", batch=3, kind="tiled", split=4, b_shared=True, seed=23)
    run_check(dev, 20, 30, 40, kind="tiled", split=4, seed=24)      # most chunks are all padding
    with pytest.raises(ValueError, match="split"):
        planner.plan_gemm(dev.info, 64, 64, 64, kind="tiled", split=0)


def test_split_k_reads_aligned_operands_in_place(dev):
    p = P.resolve("tiled", database.lookup(dev.info, "tiled"), dev.info)
    m, n, k = 2 * p["MWG"], p["NWG"], 4 * p["KWG"]
    for batch in (1, 2):
        plan = run_check(dev, m, n, k, "t", "n", "t", batch=batch, kind="tiled", params=p, split=2,
                         seed=25 + batch)
        assert plan.split == 2
        if batch == 1:   # (run_check's batch strides are deliberately misaligned)
            assert not plan.packs, plan.operands


def test_split_k_float64(dev):
    if not dev.info.get("fp64"):
        pytest.skip("no cl_khr_fp64")
    run_check(dev, 29, 31, 300, "n", "t", "t", batch=2, alpha=0.5, beta=2.0, kind="tiled", dtype="float64",
              split=3)


def test_split_k_automatic(dev, no_fallbacks):
    """A deep problem with a one-tile grid is split without being asked, through gemm() and torch."""
    plan = run_check(dev, 20, 24, 4096, "t", "n", "t", alpha=0.5, beta=2.0, bias="row", act="relu", seed=27)
    assert plan.kind == "tiled" and plan.split > 1, plan
    torch.manual_seed(28)
    x, w, b = torch.randn(16, 4096), torch.randn(40, 4096), torch.randn(40)
    _torch_check(F.linear(_o(x), _o(w), _o(b)), F.linear(x.double(), w.double(), b.double()),
                 x.double().abs() @ w.double().abs().t() + b.double().abs(), 4096)


def test_small_tile_set(dev):
    """The derived small set is valid, halves the tile, runs, and is chosen where it pads less."""
    big = P.resolve("tiled", database.lookup(dev.info, "tiled"), dev.info)
    small = planner._small_set(dev.info, "float32", big)[0]
    assert P.tiled_errors(small, dev.info) == []
    assert small["MWG"] * small["NWG"] < big["MWG"] * big["NWG"]
    run_check(dev, 67, 131, 45, "t", "n", "n", kind="tiled", params=small, seed=29)
    run_check(dev, 49, 70, 64, "n", "n", "n", batch=3, kind="tiled", params=small, b_shared=True, seed=30)
    # every shipped big set yields a valid small one on a device without a small entry
    for param in _shipped_param_sets():
        kind, p = param.values
        if kind == "tiled":
            q = P.derive_small(p, {"max_work_group_size": 256, "local_mem": 32768})
            assert P.tiled_errors(q, {"max_work_group_size": 256, "local_mem": 32768}) == [], param.id
    assert P.derive_small(dict(P.TILED_SAFE, MWG=8, NWG=8), None) == P.complete("tiled", dict(
        P.TILED_SAFE, MWG=8, NWG=8))


def test_further_tiled_sets_and_rates(dev, tmp_path, monkeypatch):
    """The planner weighs a database entry's 'tiled_sets' beside the big and small sets, scaled by
    their RATE; sets the device cannot run are skipped; the chosen one computes correctly."""
    monkeypatch.setenv("OCLCORE_CACHE_DIR", str(tmp_path))
    t, v, a, d = database.device_key(dev.info)
    extra = dict(MWG=32, NWG=16, KWG=16, MDIMC=8, NDIMC=4, KWI=2, VWM=2, VWN=2, STRM=0, STRN=0, SA=1, SB=1)
    too_big = dict(extra, MWG=1 << 16)

    def plan_with(rate):
        entry = dict(type=t, vendor=v, arch=a, device=d, dtype="float32",
                     tiled_sets=[too_big, dict(extra, RATE=rate)])
        with open(database.user_db_path(), "w") as f:
            json.dump({"entries": [entry]}, f)
        os.utime(database.user_db_path(), ns=(time.time_ns(), time.time_ns() + int(rate * 1e6)))
        return planner.plan_gemm(dev.info, 96, 80, 64, kind="tiled")

    fast = plan_with(1000.0)
    assert fast.family == "tiled_set1" and fast.params == P.complete("tiled", extra), fast
    assert plan_with(0.001).family in ("tiled", "tiled_small")
    assert [c[0] for c in planner._tiled_candidates(dev.info, "float32", P.TILED_SAFE, 1.0)][-1] == "tiled_set1"
    plan_with(1000.0)
    assert run_check(dev, 96, 80, 64, "t", "n", "n", kind="tiled", seed=32).family == "tiled_set1"
    assert run_check(dev, 70, 50, 40, "n", "n", "t", batch=2, b_shared=True, kind="tiled",
                     seed=33).family == "tiled_set1"


def test_shared_operand_is_packed_once(dev):
    """A batch-stride-0 operand is packed once, not once per batch entry."""
    M, N, K, batch = 70, 90, 50, 4
    plan = planner.plan_gemm(dev.info, M, N, K, batch, a_strides=(K, 1, 0), kind="tiled", split=1)
    steps = {s.operand: s for s in plan.packs}
    shared = "b" if plan.swap else "a"
    assert steps[shared].gsize[2] == 1 and plan.operands[shared][2] == 0
    assert steps[shared].nbytes == plan.Kp * (plan.Np if shared == "b" else plan.Mp) * 4
    run_check(dev, M, N, K, "n", "n", "n", batch=batch, kind="tiled", b_shared=True, seed=31)


def test_h200_plans():
    """Planning only (no device): the deep-skinny, batched and square shapes of bench/gemm.py."""
    sm = database.lookup(H200, "tiled_small")
    assert sm is not None and database.lookup(H200, "tiled")["MWG"] == 128
    # vgg16 fc6 / fc7 / fc8: linear with x (64, K) and the weight (N, K)
    for N, K in ((4096, 25088), (4096, 4096), (1000, 4096)):
        plan = planner.plan_gemm(H200, 64, N, K, b_strides=(1, K))
        assert plan.kind == "tiled" and plan.split > 1, plan
        assert plan.family == "measured" or _groups(plan) >= 132, plan   # (measured: fc8 fills 128)
    # the shipped measured plans: resnet50 1024->256 1x1 (bench/gemm.py's batched form)
    plan = planner.plan_gemm(H200, 256, 196, 1024, 32)
    assert (plan.family, plan.split, plan.params["MWG"], plan.params["NWG"]) == ("measured", 1, 128, 64), plan
    assert planner.plan_gemm(H200, 256, 196, 1024, 16).family != "measured"
    # resnet50 2048->512 1x1 convolution, weight shared by the batch
    plan = planner.plan_gemm(H200, 512, 49, 2048, 32, a_strides=(2048, 1, 0))
    assert plan.family != "tiled" and plan.params["MWG"] == 64 and _groups(plan) >= 4 * 132, plan
    assert [s.gsize[2] for s in plan.packs if s.operand == "b"] in ([1], [])   # shared: packed once
    # Where packing pays (measured on the H200): not for the big weight of a
    # small-batch linear layer, nor for batched 1x1 convolutions; yes for large
    # square and tall problems, where it is cheap next to the multiplication and
    # spares the kernel its bounds checks and K-contiguous staging.
    hows = lambda plan: [plan.operands[op][0] for op in "ab"]
    assert hows(planner.plan_gemm(H200, 64, 1000, 4096, b_strides=(1, 4096))) == ["kcont", "kcont"]
    assert hows(planner.plan_gemm(H200, 64, 4096, 25088, b_strides=(1, 25088)))[0] == "kcont"
    assert hows(planner.plan_gemm(H200, 256, 3136, 64, 32, a_strides=(64, 1, 0))) == ["mcont", "kcont"]
    assert hows(planner.plan_gemm(H200, 12608, 3072, 768, b_strides=(1, 768))) == ["packed", "packed"]
    assert hows(planner.plan_gemm(H200, 4096, 4096, 4096)) == ["mcont", "packed"]
    # well-filled square and tall problems keep the big tuned set, unsplit
    for M, N, K in ((4096, 4096, 4096), (2048, 2048, 2048), (12608, 2304, 768), (12608, 768, 3072)):
        plan = planner.plan_gemm(H200, M, N, K)
        assert plan.family == "tiled" and plan.split == 1, plan
    assert planner.plan_gemm(H200, 1024, 1024, 1024).split > 1


# ---- split-K of the direct kernel ---------------------------------------------------------------

def _check_direct_split(plan, S, K):
    """A direct plan split into S chunks of a multiple of WGD, the last one holding the rest of K."""
    assert plan.kind == "direct" and plan.split == S and plan.reduce is not None, plan
    assert plan.defines.get("SPLIT_K") == 1 and "EPILOGUE" not in plan.defines
    assert plan.Kc % plan.params["WGD"] == 0 and (S - 1) * plan.Kc < K <= S * plan.Kc, (plan.Kc, S, K)
    assert plan.gsize[2] == plan.batch * S


@pytest.mark.parametrize("la,lb", list(itertools.product("nt", repeat=2)))
def test_direct_split_k_forced_transpositions(dev, la, lb):
    """Forced direct split-K on odd shapes (K not a multiple of WGD), every transposition of A and B."""
    for i, (M, N, K, S, lc) in enumerate(((8, 33, 1000, 3, "n"), (7, 1, 2345, 5, "t"), (33, 8, 1111, 2, "so"))):
        plan = run_check(dev, M, N, K, la, lb, lc, kind="direct", split=S, seed=60 + i)
        _check_direct_split(plan, S, K)


def test_direct_split_k_batched_alpha_beta_epilogue(dev):
    """Batches with their own strides or a shared operand, alpha/beta with a non-zero C, bias and
    activation in the reduction, chunks beyond K, a deep product."""
    plan = run_check(dev, 33, 8, 3001, "to", "s", "u", batch=3, alpha=-2.0, beta=0.25, kind="direct", split=4,
                     seed=64)
    _check_direct_split(plan, 4, 3001)
    run_check(dev, 8, 7, 1500, "n", "t", "n", batch=4, kind="direct", split=6, b_shared=True, seed=65)
    run_check(dev, 1, 33, 2000, "t", "n", "t", batch=2, b_shared=True, alpha=0.5, beta=2.0, bias="row",
              act="relu", kind="direct", split=3, seed=66)
    plan = run_check(dev, 33, 7, 1200, bias="col", act="relu", beta=1.0, kind="direct", split=5, seed=67)
    assert "EPILOGUE" in plan.reduce["defines"]
    run_check(dev, 7, 8, 100, "t", "n", "n", alpha=1.5, kind="direct", split=8, seed=68)  # chunks of padding only
    _check_direct_split(run_check(dev, 1, 7, 70001, "n", "t", "n", batch=2, kind="direct", split=40, seed=69),
                        40, 70001)
    with pytest.raises(ValueError, match="split"):
        planner.plan_gemm(dev.info, 8, 8, 2000, kind="direct", split=0)


def test_direct_split_k_automatic(dev, no_fallbacks):
    """A tiny output of a deep product is split without being asked (one work-group for 2 compute
    units here), through gemm() and torch; a shallow one is not."""
    plan = run_check(dev, 8, 8, 5000, "t", "n", "t", alpha=0.5, beta=2.0, bias="row", act="relu", seed=70)
    assert plan.split > 1
    _check_direct_split(plan, plan.split, 5000)
    plan = planner.plan_gemm(dev.info, 8, 8, 1000)
    assert plan.kind == "direct" and plan.split == 1 and plan.reduce is None and "SPLIT_K" not in plan.defines
    torch.manual_seed(71)
    x, g = torch.randn(5000, 8), torch.randn(5000, 7)      # a filter-gradient-like x^T @ g
    _torch_check(_o(x).t() @ _o(g), x.double().t() @ g.double(), x.double().abs().t() @ g.double().abs(),
                 5000)


def test_h200_direct_split_plans():
    """Planning only: small-grid deep direct problems on an H200 are split to fill it; wide,
    shallow or large-batch ones and float16 are not."""
    cu = H200["compute_units"]
    for M, N, K, batch, a_strides in ((8, 72, 50176, 6, None), (8, 72, 50176, 6, (1, 8, 8 * 50176)),
                                      (8, 8, 50176, 96, None), (8, 8, 50176, 1, None), (72, 8, 70001, 16, None)):
        assert planner.choose_kind(H200, M, N, K, batch=batch) == "direct"
        plan = planner.plan_gemm(H200, M, N, K, batch, a_strides=a_strides)
        _check_direct_split(plan, plan.split, K)
        assert plan.Kc >= planner.SPLIT_MIN_CHUNK and plan.split <= planner.SPLIT_MAX
        assert _groups(plan) >= 2 * cu and (_groups(plan) <= 5 * cu or plan.Kc == planner.SPLIT_MIN_CHUNK), plan
    for M, N, K, batch in ((8, 4096, 64, 1), (8, 72, 512, 6), (8, 20000, 5000, 1), (8, 72, 50176, 880)):
        plan = planner.plan_gemm(H200, M, N, K, batch)
        assert plan.kind == "direct" and plan.split == 1 and plan.reduce is None, plan
    assert planner.plan_gemm(H200, 8, 72, 50176, 6, dtype="float16").split == 1
    with pytest.raises(ValueError, match="split"):
        planner.plan_gemm(H200, 8, 72, 50176, 6, dtype="float16", kind="direct", split=2)
    # deep problems wide enough for the tiled kernel still go there
    assert planner.choose_kind(H200, 64, 64, 50000) == "tiled"
    plan = planner.plan_gemm(H200, 64, 64, 50000)
    assert plan.kind == "tiled" and plan.split > 1


@pytest.mark.slow
@pytest.mark.parametrize("M,N", list(itertools.product((1, 7, 8, 33), repeat=2)), ids=str)
def test_direct_split_k_sweep(dev, M, N):
    """Forced and automatic direct splits over odd shapes, depths up to 70001, all transpositions."""
    for i, (K, (la, lb)) in enumerate(zip((1000, 4999, 20011, 70001), itertools.product("nt", repeat=2))):
        S = max(2, K // 1500)
        _check_direct_split(run_check(dev, M, N, K, la, lb, "nt"[i % 2], batch=1 + i % 3, alpha=0.75,
                                      beta=-0.5, kind="direct", split=S, b_shared=i == 2, seed=i), S, K)
        run_check(dev, M, N, K, lb, la, "n", seed=10 + i)
    if dev.info.get("fp64"):
        run_check(dev, M, N, 3001, "t", "n", "t", batch=2, alpha=0.5, beta=2.0, kind="direct", split=3,
                  dtype="float64")


def test_h200_batched_problems_that_fill_the_device_go_tiled():
    """Planning only: on an H200 (database key batched_tiled_fill) batched 1x1-convolution-like
    products go tiled once their small-tile grid fills the device, while the same product
    alone, a batch too small to fill it, a tiny dimension and PoCL keep the size crossover."""
    for M, N, K in ((144, 3136, 24), (40, 784, 144), (480, 196, 80), (1152, 49, 192)):
        assert planner.choose_kind(H200, M, N, K, batch=64) == "tiled"
        assert planner.choose_kind(H200, M, N, K, batch=1) == "direct"
    assert planner.choose_kind(H200, 40, 49, 144, batch=2) == "direct"
    assert planner.choose_kind(H200, 8, 3136, 24, batch=64) == "direct"
    pocl = dict(H200, name="cpu", vendor="pocl", platform="Portable Computing Language", type="CPU",
                compute_units=2)
    assert database.lookup(pocl, "crossover").get("batched_tiled_fill") is None


def test_cpu_devices_get_no_vectors_over_32_bytes():
    # (PoCL's compiler crashed building double8 GEMM tiles on an AMD EPYC host)
    cpu = {"type": "CPU", "max_work_group_size": 4096, "local_mem": 65536}
    tiled = P.complete("tiled", dict(MWG=32, NWG=64, KWG=32, MDIMC=4, NDIMC=8, KWI=2, VWM=2, VWN=8, SA=1, SB=0))
    direct = P.complete("direct", dict(WGD=32, MDIMCD=4, NDIMCD=4, VWMD=8, VWND=1))
    for kind, p in (("tiled", tiled), ("direct", direct)):
        check = P.tiled_errors if kind == "tiled" else P.direct_errors
        assert check(p, cpu, "float32") == []
        assert check(p, dict(cpu, type="GPU"), "float64") == []
        assert any("vectors of 64 bytes" in e for e in check(p, cpu, "float64")), kind
    # the planner then picks narrower vectors for float64 on the CPU device it runs on
    info = runtime.device(0).info()
    if "cpu" in str(info.get("type", "")).lower() and info.get("fp64"):
        plan = planner.plan_gemm(info, 64, 64, 64, dtype="float64", kind="tiled")
        assert max(plan.params["VWM"], plan.params["VWN"]) * 8 <= P.MAX_CPU_VECTOR_BYTES
