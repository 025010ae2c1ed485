"""3-D convolutions on ocl (stacked depth taps over 2-D convolutions) against torch CPU: forward and
every gradient over kernel sizes, strides, padding ('same' too), dilation, groups and depthwise,
with and without bias; gradients of the weight alone; float16; channels-last-3d and strided
inputs; a video network's training step; transposed 3-D convolutions with output padding."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, assert_close

def _compare(conv, x, w, b):
    """conv(x, w, b) on ocl and on the CPU: output and the gradients of x, w and b (when given)."""
    cpu = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    ocl = [t.to(DEVICE).requires_grad_() if t is not None else None for t in (x, w, b)]
    want, got = conv(*cpu), conv(*ocl)
    assert_close(got, want, rtol=1e-4, atol=1e-4)
    seed = torch.randn(want.shape)
    want.backward(seed)
    got.backward(seed.to(DEVICE))
    for o, c in zip(ocl, cpu):
        if c is not None:
            assert_close(o.grad, c.grad, rtol=1e-4, atol=1e-4)


CONFIGS = [  # (N, C, D, H, W), Co, kernel, stride, padding, dilation, groups, bias
    ((2, 4, 5, 6, 7), 6, (3, 3, 3), 1, 1, 1, 1, True),
    ((1, 4, 7, 5, 5), 4, (3, 1, 3), (2, 1, 2), (1, 0, 2), (2, 1, 1), 2, False),
    ((2, 3, 4, 4, 4), 5, (1, 1, 1), 1, 0, 1, 1, True),
    ((1, 2, 6, 5, 5), 4, (2, 3, 3), (3, 2, 1), 0, 1, 2, True),
    ((1, 4, 5, 5, 6), 4, (3, 3, 3), 1, "same", 1, 4, True),           # depthwise, 'same'
    ((3, 2, 3, 4, 5), 3, (3, 2, 2), 1, (1, 1, 0), (1, 2, 1), 1, False),
]


@pytest.mark.parametrize("shape,co,kernel,stride,padding,dilation,groups,bias", CONFIGS)
def test_conv3d_forward_and_gradients(no_fallbacks, shape, co, kernel, stride, padding, dilation, groups, bias):
    torch.manual_seed(0)
    x, w = torch.randn(shape), torch.randn(co, shape[1] // groups, *kernel)
    b = torch.randn(co) if bias else None
    _compare(lambda x, w, b: F.conv3d(x, w, b, stride, padding, dilation, groups), x, w, b)


def test_conv3d_weight_gradient_only_and_module(no_fallbacks):
    torch.manual_seed(1)
    conv = torch.nn.Conv3d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 4, 5, 5)
    conv(x).pow(2).sum().backward()
    want = conv.weight.grad.clone(), conv.bias.grad.clone()
    conv.zero_grad()
    conv_o = conv.to(DEVICE)
    conv_o(x.to(DEVICE)).pow(2).sum().backward()          # the input needs no gradient
    assert_close(conv_o.weight.grad, want[0], rtol=1e-4, atol=1e-4)
    assert_close(conv_o.bias.grad, want[1], rtol=1e-4, atol=1e-4)


def test_conv3d_layouts_and_half(no_fallbacks):
    torch.manual_seed(2)
    x, w = torch.randn(2, 3, 6, 5, 8), torch.randn(4, 3, 3, 3, 3)
    want = F.conv3d(x, w, padding=1)
    xo, wo = x.to(DEVICE), w.to(DEVICE)
    assert_close(F.conv3d(xo.to(memory_format=torch.channels_last_3d), wo, padding=1), want, rtol=1e-4, atol=1e-4)
    strided = torch.randn(2, 3, 6, 5, 16)
    assert_close(F.conv3d(strided.to(DEVICE)[..., ::2], wo, padding=1), F.conv3d(strided[..., ::2], w, padding=1),
                 rtol=1e-4, atol=1e-4)
    half = F.conv3d(xo.half(), wo.half(), padding=1)
    assert half.dtype == torch.float16
    assert_close(half.float(), F.conv3d(x.half().float(), w.half().float(), padding=1), rtol=1e-2, atol=5e-2)


def test_conv3d_errors_match_cpu():
    x, w = torch.randn(1, 3, 2, 4, 4), torch.randn(4, 3, 3, 3, 3)
    with pytest.raises(RuntimeError) as cpu_err:
        F.conv3d(x, w)
    with pytest.raises(RuntimeError) as ocl_err:
        F.conv3d(x.to(DEVICE), w.to(DEVICE))
    assert str(ocl_err.value).split("(")[0] == str(cpu_err.value).split("(")[0]


def test_video_network_training_step(no_fallbacks):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(3)
    model = torchvision.models.video.r3d_18(num_classes=5)
    x = torch.randn(2, 3, 4, 32, 32)  # (smaller maps leave train-mode batch norm two values per channel)
    want = model(x)
    want.sum().backward()
    grad = model.stem[0].weight.grad.clone()
    model.zero_grad()
    model = model.to(DEVICE)
    got = model(x.to(DEVICE))
    got.sum().backward()
    assert_close(got, want, rtol=1e-4, atol=1e-4)
    # 17 layers of train-mode batch norm over two values per channel amplify rounding: the stem's
    # gradient differs from the CPU's by up to 1.3e-3 of its largest element with Winograd F(4x4,3x3),
    # whose layers round to 2-6e-6 of their largest output (1.3e-5 with F(2x2,3x3) or im2col).
    assert_close(model.stem[0].weight.grad, grad, rtol=1e-3, atol=2e-3)


TRANSPOSED = [  # (N, Ci, D, H, W), Co, kernel, stride, padding, output_padding, dilation, groups, bias
    ((1, 4, 3, 4, 4), 2, (3, 3, 3), 2, 0, 0, 1, 1, True),
    ((2, 4, 3, 3, 5), 6, (2, 3, 1), (2, 1, 2), (1, 1, 0), (1, 0, 1), 1, 2, False),
    ((1, 2, 4, 4, 4), 3, (3, 3, 3), 1, 1, 0, (2, 1, 1), 1, True),
]


@pytest.mark.parametrize("shape,co,kernel,stride,padding,output_padding,dilation,groups,bias", TRANSPOSED)
def test_conv_transpose3d(no_fallbacks, shape, co, kernel, stride, padding, output_padding, dilation, groups, bias):
    torch.manual_seed(4)
    x, w = torch.randn(shape), torch.randn(shape[1], co // groups, *kernel)
    b = torch.randn(co) if bias else None
    _compare(lambda x, w, b: F.conv_transpose3d(x, w, b, stride, padding, output_padding, groups, dilation), x, w, b)


def test_depth_taps_geometry():
    """Every (stride, padding, dilation) along depth gives the CPU's output depth."""
    from oclcore.ops.conv3d import _depth_geometry

    for D, kd, s, p, d in itertools.product((4, 7), (1, 2, 3), (1, 2, 3), (0, 1, 2), (1, 2)):
        x, w = torch.empty(1, 1, D, 1, 1), torch.empty(1, 1, kd, 1, 1)
        od = (D + 2 * p - d * (kd - 1) - 1) // s + 1
        if od <= 0:
            continue
        assert _depth_geometry(x, w, (s, 1, 1), (p, 0, 0), (d, 1, 1)) == (kd, od)
        assert F.conv3d(x, w, stride=(s, 1, 1), padding=(p, 0, 0), dilation=(d, 1, 1)).shape[2] == od
