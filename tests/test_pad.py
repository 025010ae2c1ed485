"""Padding on ocl against torch CPU: constant (any rank, negative pads),
reflect and replicate in 1-3 dims, forward and input grads through autograd."""

import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICE, LAYOUTS, assert_close, compare_forward_backward, layout_input

PADS = {
    "constant": lambda t: F.pad(t, (1, 2, 3, 0)),
    "constant_value_crop": lambda t: F.pad(t, (1, -2, 3, 1), value=2.5),
    "constant_3dims": lambda t: F.pad(t, (0, 1, 2, 0, 1, 1)),
    "reflect2d": lambda t: F.pad(t, (1, 2, 3, 4), mode="reflect"),
    "replicate2d": lambda t: F.pad(t, (1, 2, 3, 4), mode="replicate"),
    "reflect1d": lambda t: F.pad(t[0], (2, 3), mode="reflect"),
    "replicate1d": lambda t: F.pad(t[0], (4, 1), mode="replicate"),
    "reflect3d": lambda t: F.pad(t.unsqueeze(2).expand(-1, -1, 3, -1, -1), (1, 2, 3, 2, 1, 1), mode="reflect"),
    "replicate3d": lambda t: F.pad(t.unsqueeze(2), (1, 2, 3, 4, 0, 1), mode="replicate"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(PADS))
def test_pad(no_fallbacks, name, layout):
    torch.manual_seed(0)
    x = layout_input(layout, 2, 3, 6, 7)
    compare_forward_backward(PADS[name], x)


def test_pad_float32_and_int(no_fallbacks):
    x = torch.randn(1, 2, 3, 4)
    assert_close(F.pad(x.to(DEVICE), (1, 1, 2, 2), mode="reflect"), F.pad(x, (1, 1, 2, 2), mode="reflect"))
    i = torch.arange(12).reshape(3, 4)
    assert_close(F.pad(i.to(DEVICE), (1, 2), value=7), F.pad(i, (1, 2), value=7))


def test_pad_empty_output(no_fallbacks):
    x = torch.randn(2, 3, device=DEVICE)
    assert F.pad(x, (-3, 0)).shape == (2, 0)


def test_pad_bad_arguments_raise_torch_errors():
    x = torch.randn(1, 2, 3, device=DEVICE)
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        F.pad(x, (3, 3), mode="reflect")
