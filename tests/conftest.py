"""Shared test helpers: every test runs on ocl:0 (PoCL on machines without a GPU)."""

import pytest
import torch

import oclcore  # noqa: F401  (registers the ocl device)

DEVICE = "ocl"


def assert_close(actual, expected, rtol=1e-5, atol=1e-5):
    """Compares an ocl (or CPU) result with a CPU reference, relative to the reference's magnitude."""
    actual = actual.detach().to("cpu")
    expected = expected.detach().to("cpu")
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if expected.dtype.is_floating_point:
        finite = expected.double()[torch.isfinite(expected.double())]
        scale = finite.abs().max().item() if finite.numel() else 0.0
        torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol * max(scale, 1.0),
                                   equal_nan=True)
    else:
        assert torch.equal(actual, expected), (actual, expected)


LAYOUTS = ["contiguous", "channels_last", "sliced"]


def layout_input(layout, n, c, h, w):
    """A float64 (n, c, h, w) CPU tensor laid out contiguous, channels-last, or as a strided view."""
    if layout == "sliced":
        return torch.randn(n, 2 * c, w, h, dtype=torch.float64)[:, 1::2].transpose(2, 3)
    x = torch.randn(n, c, h, w, dtype=torch.float64)
    return x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x


def compare_forward_backward(f, x, rtol=1e-7, atol=1e-7, f_ocl=None):
    """Runs ``f`` on CPU tensor ``x`` and ``f_ocl`` (default: ``f``, e.g. a module's ocl copy) on
    its ocl copy; compares outputs and input gradients."""
    xc = x.clone().requires_grad_()
    xo = x.to(DEVICE).requires_grad_()
    yc, yo = f(xc), (f if f_ocl is None else f_ocl)(xo)
    assert_close(yo, yc, rtol, atol)
    g = torch.randn_like(yc)
    yc.backward(g)
    yo.backward(g.to(DEVICE))
    assert_close(xo.grad, xc.grad, rtol, atol)


@pytest.fixture
def no_fallbacks():
    """Fails the test if any op ran on the CPU fallback."""
    oclcore.reset_fallbacks()
    yield
    assert oclcore.fallbacks() == {}, f"ops fell back to the CPU: {oclcore.fallbacks()}"
