"""torch.cdist on ocl (the direct path, _cdist_forward / _cdist_backward) against the CPU in
double: every kind of p, zero distances, broadcast batches, empty inputs; and the matmul form
torch takes for p = 2 with many rows."""

import pytest
import torch

from conftest import DEVICE, assert_close

P = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, float("inf")]
SHAPES = [((5, 3), (4, 3)), ((2, 5, 3), (2, 4, 3)), ((5, 3), (2, 4, 3)), ((3, 0), (2, 0)), ((0, 3), (4, 3))]


@pytest.mark.parametrize("p", P)
@pytest.mark.parametrize("shapes", SHAPES, ids=[f"{a}-{b}" for a, b in SHAPES])
def test_cdist_matches_cpu(no_fallbacks, p, shapes):
    torch.manual_seed(0)
    a, b = (torch.randn(*s, dtype=torch.float64) for s in shapes)
    if a.numel() and a.dim() == b.dim():
        b[..., 0, :] = a[..., 0, :]  # a zero distance: where the derivative is undefined
    ac, bc = a.clone().requires_grad_(), b.clone().requires_grad_()
    ao, bo = a.to(DEVICE).requires_grad_(), b.to(DEVICE).requires_grad_()
    want, got = torch.cdist(ac, bc, p), torch.cdist(ao, bo, p)
    assert_close(got, want, 1e-10, 1e-10)
    g = torch.randn_like(want)
    want.backward(g)
    got.backward(g.to(DEVICE))
    assert_close(ao.grad, ac.grad, 1e-9, 1e-9)
    assert_close(bo.grad, bc.grad, 1e-9, 1e-9)


@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                                  "donot_use_mm_for_euclid_dist"])
def test_cdist_many_rows_float32(no_fallbacks, mode):
    torch.manual_seed(1)
    a, b = torch.randn(40, 8), torch.randn(30, 8)
    assert_close(torch.cdist(a.to(DEVICE), b.to(DEVICE), compute_mode=mode), torch.cdist(a, b, compute_mode=mode),
                 1e-4, 1e-4)


@pytest.mark.parametrize("p", P)
def test_pdist_matches_cpu(no_fallbacks, p):
    """torch.pdist (_pdist_forward / _pdist_backward) in double: a repeated row (a zero distance)
    and a shared coordinate (zero differences), a strided view, and 1-row and 0-column inputs."""
    torch.manual_seed(2)
    wide = torch.randn(6, 8, dtype=torch.float64)
    wide[3] = wide[1]
    wide[4, 0] = wide[0, 0]
    for full, t in ((wide, wide[:, ::2]), (None, torch.randn(1, 3, dtype=torch.float64)),
                    (None, torch.randn(4, 0, dtype=torch.float64))):
        tc = t.clone().requires_grad_()
        to = (full.to(DEVICE)[:, ::2] if full is not None else t.to(DEVICE)).requires_grad_()
        assert full is None or not to.is_contiguous()
        want, got = torch.nn.functional.pdist(tc, p), torch.nn.functional.pdist(to, p)
        assert_close(got, want, 1e-10, 1e-10)
        g = torch.randn_like(want)
        want.backward(g)
        got.backward(g.to(DEVICE))
        assert_close(to.grad, tc.grad, 1e-9, 1e-9)
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors"):
        torch.nn.functional.pdist(torch.randn(2, 3, 4, device=DEVICE))
