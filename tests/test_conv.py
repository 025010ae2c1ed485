"""Convolutions on ocl against torch CPU: conv2d forward and the input,
weight and bias gradients through autograd, with each algorithm of
oclcore.conv forced in turn (kernels 1, 3, 5, 7, 1x7, 7x1; stride 1/2;
padding 0/1/'same'; dilation 1/2; groups 1/2/depthwise; odd sizes; batch
1-3; NCHW, channels-last and non-contiguous inputs); conv1d,
conv_transpose2d, the custom op torch.ops.oclcore.conv2d, benchmark mode and
torch's error messages. The default run takes a representative subset of
the sweep; ``-m slow`` runs the whole cross-product."""

import contextlib
import itertools
import json

import pytest
import torch
import torch.nn.functional as F

import oclcore.conv
from conftest import DEVICE, assert_close
from oclcore.conv import ALGORITHMS, force_algorithm

RTOL = ATOL = 2e-5   # relative to the reference's largest magnitude (see conftest.assert_close)
PASSES = ("forward", "grad_input", "grad_weight")


@pytest.fixture
def chosen(monkeypatch):
    """Records (pass, algorithm name) of every convolution pass that runs."""
    calls = []
    choose = oclcore.conv.choose

    def spy(ctx, g, pass_, *args, **kwargs):
        alg = choose(ctx, g, pass_, *args, **kwargs)
        calls.append((pass_, alg.name))
        return alg
    monkeypatch.setattr(oclcore.conv, "choose", spy)
    return calls


def _layout(t, kind):
    """t on ocl as a leaf in the given memory layout, and the view to use."""
    if kind == "channels_last":
        leaf = t.to(DEVICE).contiguous(memory_format=torch.channels_last).detach().requires_grad_()
        assert leaf.is_contiguous(memory_format=torch.channels_last) and not leaf.is_contiguous()
        return leaf, leaf
    if kind == "strided":   # every other column of a wider tensor, at an offset
        big = torch.zeros(t.shape[:-1] + (2 * t.shape[-1] + 1,))
        big[..., 1::2] = t
        leaf = big.to(DEVICE).requires_grad_()
        view = leaf[..., 1::2]
        assert not view.is_contiguous() and view.storage_offset() == 1
        return leaf, view
    leaf = t.to(DEVICE).requires_grad_()
    return leaf, leaf


def _compare(op, tensors, layouts=None, grads=True, algorithm=None, rtol=RTOL, atol=ATOL):
    """op(*tensors) on CPU and on ocl (each input in its layout), forward and the gradients of
    every tensor input, under force_algorithm(algorithm) when given."""
    layouts = layouts or ["nchw"] * len(tensors)
    cpu = [None if t is None else t.clone().requires_grad_(grads) for t in tensors]
    y = op(*cpu)
    dy = torch.randn_like(y)
    if grads:
        want = [t for t in cpu if t is not None]
        ref = torch.autograd.grad(y, want, dy)
    ocl = [None if t is None else _layout(t, kind) if grads else (t.to(DEVICE), t.to(DEVICE))
           for t, kind in zip(tensors, layouts)]
    views = [None if v is None else v[1] for v in ocl]
    block = force_algorithm(algorithm) if algorithm else contextlib.nullcontext()
    with block:
        yo = op(*views)
        assert yo.device.type == "ocl"
        assert_close(yo, y, rtol, atol)
        if grads:
            got = torch.autograd.grad(yo, [v for v in views if v is not None], dy.to(DEVICE))
            for g, r in zip(got, ref):
                assert_close(g, r, rtol, atol)
    return y


# ---- the conv2d sweep -------------------------------------------------------------------------

KERNELS = [(1, 1), (3, 3), (5, 5), (7, 7), (1, 7), (7, 1)]
LAYOUTS = ["nchw", "channels_last", "strided"]


def _case(i, R, S, stride, padding, dilation, groups):
    """Concrete tensors and arguments of sweep case i."""
    gen = torch.Generator().manual_seed(i)
    N = 1 + i % 3
    H, W = (9, 11) if i % 2 else (11, 7)
    C, K = (4, 6) if groups != "dw" else (4, 4 * (1 + i % 2))
    g = {"1": 1, "2": 2, "dw": 4}[groups]
    x = torch.randn(N, C, H, W, generator=gen)
    w = torch.randn(K, C // g, R, S, generator=gen)
    b = torch.randn(K, generator=gen) if i % 2 else None
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=g)


def _sweep():
    """(case index, config, algorithm) for every algorithm that runs the forward pass of a
    valid config; the default run keeps about a dozen evenly spread cases per algorithm."""
    cases = {name: [] for name in ALGORITHMS}
    configs = itertools.product(KERNELS, [1, 2], [0, 1, "same"], [1, 2], ["1", "2", "dw"])
    for i, ((R, S), st, pad, dil, grp) in enumerate(configs):
        x, w, b, kw = _case(i, R, S, st, pad, dil, grp)
        try:
            F.conv2d(x, w, b, **kw)
        except RuntimeError:   # e.g. padding='same' with stride 2: covered by the error tests
            continue
        geom = oclcore.conv.conv_geometry(x.shape, w.shape, st, pad, dil, kw["groups"])
        for name, alg in ALGORITHMS.items():
            if alg.supports(geom, "forward"):
                cases[name].append((i, ((R, S), st, pad, dil, grp)))
    params = []
    for name, found in cases.items():
        step = max(1, len(found) // 12)
        for j, (i, cfg) in enumerate(found):
            (R, S), st, pad, dil, grp = cfg
            marks = () if j % step == 0 and j // step < 12 else (pytest.mark.slow,)
            params.append(pytest.param(i, cfg, name, marks=marks,
                                       id=f"{name}-k{R}x{S}-s{st}-p{pad}-d{dil}-g{grp}-{i}"))
    return params


@pytest.mark.parametrize("i,cfg,algorithm", _sweep())
def test_conv2d_sweep(no_fallbacks, chosen, i, cfg, algorithm):
    (R, S), st, pad, dil, grp = cfg
    x, w, b, kw = _case(i, R, S, st, pad, dil, grp)
    layout = LAYOUTS[i % 3]
    tensors = [x, w] + ([b] if b is not None else [])
    op = lambda x, w, b=None: F.conv2d(x, w, b, **kw)
    _compare(op, tensors, [layout, "nchw", "nchw"], algorithm=algorithm)
    geom = oclcore.conv.conv_geometry(x.shape, w.shape, st, pad, dil, kw["groups"])
    ran = dict(chosen)
    assert set(ran) == set(PASSES), chosen
    for pass_ in PASSES:
        if ALGORITHMS[algorithm].supports(geom, pass_):
            assert ran[pass_] == algorithm, (pass_, chosen)
    if algorithm == "winograd":   # its sweep cases (3x3, stride 1, padding <= 1) run every pass
        assert ran == {p: "winograd" for p in PASSES}, chosen


def test_every_algorithm_is_in_the_default_sweep():
    default = [p for p in _sweep() if not p.marks]
    assert 60 <= len(default) <= 95
    assert {p.values[2] for p in default} == set(ALGORITHMS)


def test_forced_algorithm_strict_and_unknown():
    geom = oclcore.conv.conv_geometry((1, 4, 6, 6), (4, 4, 3, 3), 1, 1)
    strided = oclcore.conv.conv_geometry((1, 4, 6, 6), (4, 4, 3, 3), 2, 1)
    wide = oclcore.conv.conv_geometry((1, 4, 6, 6), (4, 4, 3, 3), 1, 3)
    with force_algorithm("winograd"):
        assert [oclcore.conv.choose(None, geom, p).name for p in PASSES] == ["winograd"] * 3
        assert oclcore.conv.choose(None, strided, "grad_weight").name != "winograd"
        assert oclcore.conv.choose(None, wide, "grad_input").name != "winograd"
        assert oclcore.conv.choose(None, wide, "grad_weight").name == "winograd"
    with force_algorithm("winograd", strict=True):
        with pytest.raises(RuntimeError, match="does not support grad_weight"):
            oclcore.conv.choose(None, strided, "grad_weight")
    with pytest.raises(ValueError, match="unknown convolution algorithm"):
        with force_algorithm("fft"):
            pass


def test_heuristic_winograd_grad_weight():
    """Winograd's filter gradient is the default only with 16+ channels on both sides."""
    wide = oclcore.conv.conv_geometry((8, 64, 28, 28), (128, 64, 3, 3), 1, 1)
    thin = oclcore.conv.conv_geometry((8, 3, 28, 28), (64, 3, 3, 3), 1, 1)
    assert oclcore.conv.heuristic(wide, "grad_weight") == "winograd"
    assert oclcore.conv.heuristic(thin, "grad_weight") != "winograd"


def test_winograd_grad_weight_chunks_and_wide_padding(no_fallbacks, chosen, monkeypatch):
    """A workspace budget below one image: the filter gradient accumulates over one-image
    chunks; padding 3 > 2 leaves whole tiles in the padding."""
    from oclcore.ops.conv import conv_context
    monkeypatch.setattr(conv_context(torch.device(DEVICE).index or 0), "workspace_bytes", 1)
    torch.manual_seed(10)
    x, w, b = torch.randn(3, 5, 9, 8), torch.randn(6, 5, 3, 3), torch.randn(6)
    _compare(lambda x, w, b: F.conv2d(x, w, b, padding=(3, 2)), [x, w, b], ["channels_last", "strided", "nchw"],
             algorithm="winograd")
    ran = dict(chosen)
    assert ran["forward"] == ran["grad_weight"] == "winograd", chosen


@pytest.mark.parametrize("images", [1, 2])
@pytest.mark.parametrize("algorithm,R,kw", [("im2col", 3, dict(stride=2, padding=1, dilation=2, groups=2)),
                                            ("gemm_1x1", 1, dict(groups=2))])
def test_gemm_grad_weight_chunks(no_fallbacks, chosen, monkeypatch, algorithm, R, kw, images):
    """A workspace budget of one or two NCHW images: the filter gradient's deep GEMM (reduction
    over images and positions) runs per chunk of images (5 images: a short last chunk) and
    accumulates; channels-last and strided inputs on the same budget."""
    from oclcore.ops.conv import conv_context
    ctx = conv_context(torch.device(DEVICE).index or 0)
    torch.manual_seed(11)
    x, w, b = torch.randn(5, 4, 9, 8), torch.randn(6, 2, R, R), torch.randn(6)
    op = lambda x, w, b: F.conv2d(x, w, b, **kw)
    N, C, H, W = x.shape
    K, (P, Q) = w.shape[0], op(x, w, b).shape[2:]
    cols = C * R * R * P * Q if algorithm == "im2col" else C * H * W   # the packed X of one image
    monkeypatch.setattr(ctx, "workspace_bytes", images * (cols + K * P * Q) * 4)
    betas = []
    gemm = ctx.gemm
    monkeypatch.setattr(ctx, "gemm", lambda *a, **k: betas.append(a[16]) or gemm(*a, **k))
    _compare(op, [x, w, b], algorithm=algorithm)
    assert betas.count(1.0) == -(-N // images) - 1   # only the filter gradient accumulates
    assert dict(chosen)["grad_weight"] == algorithm, chosen
    for layout in ("channels_last", "strided"):
        _compare(op, [x, w, b], [layout, "nchw", "nchw"], algorithm=algorithm)


@pytest.mark.parametrize("images", [2, 5])
def test_1x1_grad_weight_per_image(no_fallbacks, chosen, monkeypatch, images):
    """NCHW 1x1 filter gradients as per-image GEMMs read in place, summed in image order over
    workspace chunks (5 images: one chunk, or chunks of 2 and a short last one); channels-last
    inputs keep the one deep GEMM."""
    from oclcore.conv import algorithms
    from oclcore.ops.conv import conv_context
    ctx = conv_context(torch.device(DEVICE).index or 0)
    torch.manual_seed(12)
    x, w, b = torch.randn(5, 6, 9, 7), torch.randn(11, 6, 1, 1), torch.randn(11)
    op = lambda x, w, b: F.conv2d(x, w, b)
    monkeypatch.setattr(ctx, "workspace_bytes", images * 11 * 6 * 4)
    calls, sums = [], []
    per_image = algorithms.per_image_grad_weight
    monkeypatch.setattr(algorithms, "per_image_grad_weight", lambda *a: calls.append(1) or per_image(*a))
    sum_slices = algorithms.sum_slices
    monkeypatch.setattr(algorithms, "sum_slices", lambda *a, **k: sums.append(k["beta"]) or sum_slices(*a, **k))
    _compare(op, [x, w, b], algorithm="gemm_1x1")
    assert calls == [1] and sums == [0.0] + [1.0] * (-(-5 // images) - 1), (calls, sums)
    assert dict(chosen)["grad_weight"] == "gemm_1x1", chosen
    calls.clear()
    _compare(op, [x, w, b], ["channels_last", "nchw", "nchw"], algorithm="gemm_1x1")
    assert calls == []


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("layout", ["nchw", "strided"])   # (channels-last is NCHW here)
def test_1x1_on_single_positions_is_one_gemm_over_images(no_fallbacks, chosen, monkeypatch, groups, layout):
    """Squeeze-excitation convolutions (one position per image): forward and data gradient are
    one GEMM per group with the images as columns, not a batch of matrix-vector products."""
    from oclcore.ops.conv import conv_context
    ctx = conv_context(torch.device(DEVICE).index or 0)
    torch.manual_seed(13)
    x, w, b = torch.randn(9, 12, 1, 1), torch.randn(10, 12 // groups, 1, 1), torch.randn(10)
    shapes, gemm = [], ctx.gemm
    monkeypatch.setattr(ctx, "gemm", lambda *a, **k: shapes.append(a[12:15] + (a[17] if len(a) > 17 else 1,))
                        or gemm(*a, **k))
    _compare(lambda x, w, b: F.conv2d(x, w, b, groups=groups), [x, w, b], [layout, "nchw", "nchw"],
             algorithm="gemm_1x1")
    assert (10 // groups, 9, 12 // groups, 1) in shapes    # forward: M=K, N=images, depth C
    assert (12 // groups, 9, 10 // groups, 1) in shapes    # data gradient
    assert dict(chosen)["forward"] == "gemm_1x1"


# ---- layouts, shapes and dtypes ---------------------------------------------------------------

@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_layouts_and_larger_channels(no_fallbacks, algorithm):
    """Several tiles in every GEMM dimension; channels-last and strided inputs and a
    non-contiguous weight."""
    torch.manual_seed(1)
    if algorithm == "depthwise":
        x, w, kw = torch.randn(2, 24, 13, 12), torch.randn(48, 1, 3, 3), dict(padding=1, groups=24)
    elif algorithm == "gemm_1x1":
        x, w, kw = torch.randn(2, 40, 13, 12), torch.randn(72, 20, 1, 1), dict(groups=2)
    elif algorithm == "grouped":
        x, w, kw = torch.randn(2, 40, 13, 12), torch.randn(60, 8, 3, 3), dict(padding=1, groups=5)
    else:
        x, w, kw = torch.randn(2, 20, 13, 12), torch.randn(70, 20, 3, 3), dict(padding=1)
    b = torch.randn(w.shape[0])
    op = lambda x, w, b: F.conv2d(x, w, b, **kw)
    for layout in LAYOUTS:
        _compare(op, [x, w, b], [layout, "nchw", "nchw"], algorithm=algorithm)
    _compare(op, [x, w, b], ["nchw", "strided", "nchw"], algorithm=algorithm)   # non-contiguous weight


def test_unbatched_no_bias_and_empty(no_fallbacks):
    torch.manual_seed(2)
    _compare(lambda x, w: F.conv2d(x, w, padding=1), [torch.randn(4, 9, 9), torch.randn(6, 4, 3, 3)])
    _compare(lambda x, w: F.conv2d(x, w, stride=2), [torch.randn(3, 4, 5, 7), torch.randn(6, 4, 2, 2)])
    y = F.conv2d(torch.randn(0, 4, 5, 5, device=DEVICE), torch.randn(6, 4, 3, 3, device=DEVICE))
    assert y.shape == (0, 6, 3, 3)


def test_module_and_half(no_fallbacks):
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(5, 7, 3, stride=2, padding=1, bias=True)
    oconv = torch.nn.Conv2d(5, 7, 3, stride=2, padding=1, bias=True).to(DEVICE)
    oconv.load_state_dict(conv.state_dict())
    x = torch.randn(2, 5, 11, 9)
    y, yo = conv(x), oconv(x.to(DEVICE))
    assert_close(yo, y, RTOL, ATOL)
    y.sum().backward()
    yo.sum().backward()
    assert_close(oconv.weight.grad, conv.weight.grad, RTOL, ATOL)
    assert_close(oconv.bias.grad, conv.bias.grad, RTOL, ATOL)
    xh, wh = x.half(), conv.weight.detach().half()
    yh = F.conv2d(xh.to(DEVICE), wh.to(DEVICE), padding=1)
    assert yh.dtype == torch.float16
    assert_close(yh.float(), F.conv2d(xh.float(), wh.float(), padding=1), 2e-3, 2e-3)


# ---- conv1d and conv_transpose2d ---------------------------------------------------------------

@pytest.mark.parametrize("S,stride,padding,dilation,groups",
                         [(3, 1, "same", 1, 1), (5, 2, 2, 1, 2), (4, 1, "same", 2, 1), (1, 1, 0, 1, 1),
                          (3, 1, 1, 1, 4)])
def test_conv1d(no_fallbacks, S, stride, padding, dilation, groups):
    torch.manual_seed(S * 10 + stride)
    x, w, b = torch.randn(2, 4, 17), torch.randn(8, 4 // groups, S), torch.randn(8)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    _compare(lambda x, w, b: F.conv1d(x, w, b, **kw), [x, w, b])


def test_conv1d_strided_input(no_fallbacks):
    torch.manual_seed(4)
    _compare(lambda x, w: F.conv1d(x, w, padding=1), [torch.randn(3, 4, 15), torch.randn(5, 4, 3)],
             ["strided", "nchw"])


TRANSPOSE = [(3, 2, 1, 1, 1, 1), (3, 1, 0, 0, 1, 2), (4, 2, 1, 0, 1, 1), (5, 3, 2, 2, 1, 1),
             (3, 2, 0, 1, 2, 2), (1, 2, 0, 1, 1, 1), (2, 2, 0, 0, 1, 4)]


@pytest.mark.parametrize("R,stride,padding,output_padding,dilation,groups", TRANSPOSE)
def test_conv_transpose2d(no_fallbacks, R, stride, padding, output_padding, dilation, groups):
    torch.manual_seed(R + 10 * stride + 100 * groups)
    N, Cin, Cout = 2, 4, 6 if groups != 4 else 4
    x = torch.randn(N, Cin, 5, 6)
    w, b = torch.randn(Cin, Cout // groups, R, R + R % 2), torch.randn(Cout)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    _compare(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), [x, w, b])


@pytest.mark.parametrize("algorithm", ["im2col", "implicit_gemm", "winograd"])
def test_conv_transpose2d_forced(no_fallbacks, chosen, algorithm):
    torch.manual_seed(5)
    x, w, b = torch.randn(2, 4, 5, 6), torch.randn(4, 3, 3, 3), torch.randn(3)
    kw = dict(stride=1, padding=1) if algorithm == "winograd" else dict(stride=2, padding=1, output_padding=1)
    _compare(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), [x, w, b], ["channels_last", "nchw", "nchw"],
             algorithm=algorithm)
    assert {name for _, name in chosen} == {algorithm}, chosen


def test_conv_transpose1d(no_fallbacks):
    torch.manual_seed(6)
    _compare(lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1),
             [torch.randn(2, 4, 9), torch.randn(4, 5, 3), torch.randn(5)])


# ---- the custom op -----------------------------------------------------------------------------

@pytest.mark.parametrize("act", ["none", "relu"])
@pytest.mark.parametrize("algorithm", [None, "implicit_gemm", "winograd", "im2col"])
def test_oclcore_conv2d_op(no_fallbacks, act, algorithm):
    torch.manual_seed(7)
    x, w, b = torch.randn(2, 6, 9, 10), torch.randn(8, 6, 3, 3), torch.randn(8)
    op = lambda x, w, b: torch.ops.oclcore.conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 1, act)
    y = _compare(op, [x, w, b], algorithm=algorithm)
    ref = F.conv2d(x, w, b, padding=1)
    assert_close(y, ref.relu() if act == "relu" else ref, RTOL, ATOL)


def test_oclcore_conv2d_op_depthwise_strided_and_fake(no_fallbacks):
    torch.manual_seed(8)
    x, w, b = torch.randn(1, 4, 11, 9), torch.randn(8, 1, 5, 5), torch.randn(8)
    op = lambda x, w, b: torch.ops.oclcore.conv2d(x, w, b, [2, 2], [2, 2], [1, 1], 4, "relu")
    _compare(op, [x, w, b])
    with pytest.raises(RuntimeError, match="act"):
        torch.ops.oclcore.conv2d(x.to(DEVICE), w.to(DEVICE), None, [1, 1], [0, 0], [1, 1], 4, "swish")
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        r = torch.ops.oclcore.conv2d(torch.empty(1, 4, 11, 9), torch.empty(8, 1, 5, 5), None,
                                     [2, 2], [2, 2], [1, 1], 4, "relu")
    assert r.shape == (1, 8, 6, 5)


# ---- benchmark mode ----------------------------------------------------------------------------

def test_benchmark_mode_remembers_winners(no_fallbacks, tmp_path, monkeypatch):
    monkeypatch.setenv("OCLCORE_CACHE_DIR", str(tmp_path))
    oclcore.conv.set_benchmark(True)
    try:
        torch.manual_seed(9)
        _compare(lambda x, w: F.conv2d(x, w, padding=1), [torch.randn(2, 16, 10, 10), torch.randn(16, 16, 3, 3)])
    finally:
        oclcore.conv.set_benchmark(False)
    path = oclcore.conv.cache_path()
    assert path.startswith(str(tmp_path))
    with open(path) as f:
        table = json.load(f)
    assert sorted(key.split("|")[1] for key in table) == sorted(PASSES), table
    assert set(table.values()) <= set(ALGORITHMS)


# ---- errors ------------------------------------------------------------------------------------

# oclcore/ops/conv.py views a 3-D weight as a 1 x S kernel before any check, so a 4-D input with a
# 3-D weight runs instead of raising, and conv1d's channel error names the 4-D views.
BAD = [((8, 3, 3, 3), {}), ((8, 4, 3, 3), dict(padding=-1)), ((8, 4, 3, 3), dict(stride=0)),
       ((8, 4, 3, 3), dict(dilation=0)), ((7, 2, 3, 3), dict(groups=2)), ((8, 4, 3, 3), dict(groups=0)),
       ((8, 4, 3, 3), dict(padding="foo")), ((8, 4, 3, 3), dict(stride=2, padding="same")),
       ((8, 4, 3, 3), dict(stride=(1, 1, 1))), ((8, 4, 9, 9), {}),
       pytest.param((8, 4, 3), {}),
       ((8, 4, 3, 3), dict(bias=5)), ((8, 4, 3, 3), dict(dilation=(2, 3, 1)))]


def _message(f):
    try:
        f()
    except (RuntimeError, ValueError) as e:
        return type(e).__name__, str(e)
    return None


@pytest.mark.parametrize("wshape,kw", BAD)
def test_errors_match_torch(no_fallbacks, wshape, kw):
    kw = dict(kw)
    bias = torch.randn(kw.pop("bias")) if "bias" in kw else None
    x, w = torch.randn(1, 4, 5, 5), torch.randn(*wshape)
    cpu = _message(lambda: F.conv2d(x, w, bias, **kw))
    assert cpu is not None
    ocl = _message(lambda: F.conv2d(x.to(DEVICE), w.to(DEVICE), None if bias is None else bias.to(DEVICE), **kw))
    assert ocl == cpu


def test_transpose_and_1d_errors_match_torch(no_fallbacks):
    for f in (lambda d: F.conv_transpose2d(torch.randn(1, 4, 5, 5, device=d), torch.randn(3, 2, 3, 3, device=d)),
              lambda d: F.conv_transpose2d(torch.randn(1, 4, 5, 5, device=d), torch.randn(4, 2, 3, 3, device=d),
                                           stride=2, output_padding=2),
              lambda d: F.conv2d(torch.randn(1, 4, 5, 5, device=d), torch.randn(8, 4, 3, 3, device=d),
                                 torch.randn(8, 1, device=d))):
        cpu = _message(lambda: f("cpu"))
        assert cpu is not None
        assert _message(lambda: f(DEVICE)) == cpu


def test_conv1d_errors_match_torch(no_fallbacks):
    f = lambda d: F.conv1d(torch.randn(1, 4, 5, device=d), torch.randn(8, 3, 3, device=d))
    cpu = _message(lambda: f("cpu"))
    assert cpu is not None
    assert _message(lambda: f(DEVICE)) == cpu
