"""Winograd with larger tiles (oclcore/conv/winograd.py): the Cook-Toom matrices against
direct correlation in numpy, then F(4x4,3x3) and F(2x2,5x5) against torch CPU: the forward and
data-gradient passes under a workspace budget below one image, padding past what the data
gradient supports, and where the heuristic chooses them. The
conv2d sweep (test_conv.py) and the epilogue cases (test_conv_epilogue.py) cover them too."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import oclcore.conv
from conftest import DEVICE
from oclcore.conv import force_algorithm
from oclcore.conv.winograd_transforms import c_initializer, transforms
from test_conv import _compare, chosen  # noqa: F401  (chosen: a fixture)

TILED = ("winograd_f4x4_3x3", "winograd_f2x2_5x5")


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (2, 5), (3, 3), (6, 3)])
def test_transforms_compute_correlation(m, r):
    at, g, bt = (np.array(t, dtype=np.float64) for t in transforms(m, r))
    n = m + r - 1
    assert at.shape == (m, n) and g.shape == (n, r) and bt.shape == (n, n)
    rng = np.random.default_rng(m * 10 + r)
    d, f = rng.standard_normal(n), rng.standard_normal(r)
    want = np.array([d[i:i + r] @ f for i in range(m)])
    np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), want, rtol=1e-12, atol=1e-12)
    d2, f2 = rng.standard_normal((n, n)), rng.standard_normal((r, r))
    want2 = np.array([[np.sum(d2[i:i + r, j:j + r] * f2) for j in range(m)] for i in range(m)])
    np.testing.assert_allclose(at @ ((g @ f2 @ g.T) * (bt @ d2 @ bt.T)) @ at.T, want2, rtol=1e-11, atol=1e-11)


def test_transforms_need_enough_points():
    with pytest.raises(ValueError, match="finite points"):
        transforms(6, 5)


def test_initializer_is_one_define_value():
    text = c_initializer([[1, -0.5], [0.25, 2]])
    assert text == "{1.0f,-0.5f,0.25f,2.0f}" and " " not in c_initializer(transforms(4, 3)[2])


@pytest.mark.parametrize("algorithm,R,padding", [("winograd_f4x4_3x3", 3, (1, 2)), ("winograd_f2x2_5x5", 5, (2, 0))])
def test_chunks_of_one_image(no_fallbacks, chosen, monkeypatch, algorithm, R, padding):
    """A workspace budget below one image: every pass runs image by image (3 images, odd sizes
    that tile unevenly), on channels-last and strided inputs."""
    from oclcore.ops.conv import conv_context
    monkeypatch.setattr(conv_context(torch.device(DEVICE).index or 0), "workspace_bytes", 1)
    torch.manual_seed(R)
    x, w, b = torch.randn(3, 5, 10, 7), torch.randn(6, 5, R, R), torch.randn(6)
    _compare(lambda x, w, b: F.conv2d(x, w, b, padding=padding), [x, w, b], ["channels_last", "strided", "nchw"],
             algorithm=algorithm)
    ran = dict(chosen)
    assert ran["forward"] == ran["grad_input"] == algorithm != ran["grad_weight"], chosen


@pytest.mark.parametrize("algorithm,R", [("winograd_f4x4_3x3", 3), ("winograd_f2x2_5x5", 5)])
def test_what_they_support(algorithm, R):
    """Stride 1, dilation 1, their filter size; the data gradient up to padding R - 1; no filter
    gradient (another algorithm runs it, or forcing strictly raises)."""
    conv = oclcore.conv
    alg = conv.ALGORITHMS[algorithm]
    geom = lambda **kw: conv.conv_geometry((2, 4, 9, 9), (4, 4, R, R), kw.get("stride", 1), kw.get("padding", 1),
                                           kw.get("dilation", 1))
    assert alg.supports(geom(), "forward") and alg.supports(geom(padding=R - 1), "grad_input")
    assert not alg.supports(geom(padding=R), "grad_input") and alg.supports(geom(padding=R), "forward")
    assert not alg.supports(geom(stride=2), "forward") and not alg.supports(geom(dilation=2), "forward")
    assert not alg.supports(geom(), "grad_weight")
    other = conv.conv_geometry((2, 4, 9, 9), (4, 4, 8 - R, 8 - R), 1, 1)
    assert not alg.supports(other, "forward")
    with force_algorithm(algorithm, strict=True):
        with pytest.raises(RuntimeError, match="does not support grad_weight"):
            conv.choose(None, geom(), "grad_weight")


def test_wide_padding_data_gradient_runs_elsewhere(no_fallbacks):
    """Padding 3 on a 3x3 filter: F(4x4,3x3) runs the forward, another algorithm the data gradient."""
    torch.manual_seed(3)
    x, w = torch.randn(2, 3, 6, 5), torch.randn(4, 3, 3, 3)
    _compare(lambda x, w: F.conv2d(x, w, padding=3), [x, w], algorithm="winograd_f4x4_3x3")


def test_heuristic_chooses_them_where_they_were_measured_faster():
    """16+ channels on both sides: F(4x4,3x3) for the forward and data-gradient passes of 3x3
    layers from 7x7 images up and F(2x2,5x5) for 5x5 layers; F(2x2,3x3) for smaller images and
    every 3x3 filter gradient; thin layers stay on the GEMM paths. All are benchmark candidates."""
    conv = oclcore.conv
    g3 = conv.conv_geometry((8, 64, 28, 28), (128, 64, 3, 3), 1, 1)
    g5 = conv.conv_geometry((8, 48, 25, 25), (64, 48, 5, 5), 1, 2)
    small = conv.conv_geometry((8, 448, 5, 5), (384, 448, 3, 3), 1, 1)
    seven = conv.conv_geometry((8, 512, 7, 7), (512, 512, 3, 3), 1, 1)
    thin = conv.conv_geometry((8, 3, 28, 28), (64, 3, 3, 3), 1, 1)
    for p in ("forward", "grad_input"):
        assert conv.heuristic(g3, p) == conv.heuristic(seven, p) == "winograd_f4x4_3x3"
        assert conv.heuristic(g5, p) == "winograd_f2x2_5x5"
        assert conv.heuristic(small, p) == "winograd"
        assert conv.heuristic(thin, p) not in ("winograd", *TILED)
        assert {"winograd", "winograd_f4x4_3x3"} <= set(conv.candidates(g3, p))
    assert conv.heuristic(g3, "grad_weight") == "winograd"
    assert conv.heuristic(g5, "grad_weight") not in TILED
    # the data gradient of a padding-0 3x3 layer with 5x5 outputs writes 7x7 images
    valid = conv.conv_geometry((8, 64, 7, 7), (64, 64, 3, 3), 1, 0)
    assert conv.heuristic(valid, "forward") == "winograd"
    assert conv.heuristic(valid, "grad_input") == "winograd_f4x4_3x3"
