"""scaled_dot_product_attention (math path on the GEMM and softmax kernels) and MultiheadAttention."""

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_close


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"attn_mask": "float"}, {"attn_mask": "bool"},
                                    {"scale": 0.3}], ids=["plain", "causal", "float-mask", "bool-mask", "scale"])
def test_sdpa_forward_backward(kwargs, no_fallbacks):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 8, dtype=torch.float64) for _ in range(3))
    if kwargs.get("attn_mask") == "float":
        kwargs = {"attn_mask": torch.randn(7, 7, dtype=torch.float64)}
    elif kwargs.get("attn_mask") == "bool":
        kwargs = {"attn_mask": torch.rand(7, 7) > 0.3}
        kwargs["attn_mask"][:, 0] = True
    ref_in = [t.clone().requires_grad_() for t in (q, k, v)]
    ocl_in = [t.float().to("ocl").requires_grad_() for t in (q, k, v)]
    ocl_kw = {n: (a.to("ocl", torch.float32 if a.is_floating_point() else a.dtype) if isinstance(a, torch.Tensor)
                  else a) for n, a in kwargs.items()}
    ref = F.scaled_dot_product_attention(*ref_in, **kwargs)
    out = F.scaled_dot_product_attention(*ocl_in, **ocl_kw)
    assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(ref)
    ref.backward(g)
    out.backward(g.float().to("ocl"))
    for a, b in zip(ocl_in, ref_in):
        assert_close(a.grad.double(), b.grad, rtol=1e-4, atol=1e-5)


def test_multihead_attention_module(no_fallbacks):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    x = torch.randn(2, 5, 16)
    ref, _ = mha(x, x, x)
    mo = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    mo.load_state_dict(mha.state_dict())
    out, _ = mo.to("ocl")(x.to("ocl"), x.to("ocl"), x.to("ocl"))
    assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("padding", [False, True], ids=["no-mask", "key-padding"])
@pytest.mark.parametrize("shared", [True, False], ids=["self", "cross"])
def test_multihead_attention_inference_fast_path(need_weights, average, padding, shared, no_fallbacks):
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    mo = copy.deepcopy(mha).to("ocl")
    q = torch.randn(3, 5, 16)
    kv = q if shared else torch.randn(3, 7, 16)
    mask = None
    if padding:
        mask = torch.zeros(3, kv.shape[1], dtype=torch.bool)
        mask[1, -2:] = True
    with torch.no_grad():
        want = mha(q, kv, kv, key_padding_mask=mask, need_weights=need_weights, average_attn_weights=average)
        qo = q.to("ocl")
        kvo = qo if shared else kv.to("ocl")
        got = mo(qo, kvo, kvo, key_padding_mask=None if mask is None else mask.to("ocl"),
                 need_weights=need_weights, average_attn_weights=average)
    assert_close(got[0], want[0], 1e-5, 1e-5)
    if need_weights:
        assert_close(got[1], want[1], 1e-5, 1e-5)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("padding", [False, True], ids=["no-mask", "key-padding"])
def test_transformer_encoder_layer_inference_fast_path(norm_first, activation, padding, no_fallbacks):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 24, dropout=0.0, activation=activation, batch_first=True,
                                             norm_first=norm_first).eval()
    lo = copy.deepcopy(layer).to("ocl")
    x = torch.randn(3, 6, 16)
    mask = None
    if padding:
        mask = torch.zeros(3, 6, dtype=torch.bool)
        mask[2, -3:] = True
    with torch.no_grad():
        want = layer(x, src_key_padding_mask=mask)
        got = lo(x.to("ocl"), src_key_padding_mask=None if mask is None else mask.to("ocl"))
    if padding:  # torch's CPU fast path zeroes padded positions (nested tensors); compare the rest
        keep = ~mask
        assert_close(got.cpu()[keep], want[keep], 1e-5, 1e-5)
    else:
        assert_close(got, want, 1e-5, 1e-5)
