"""nn.MultiheadAttention's inference fast path (aten._native_multi_head_attention) composed of
ocl ops, following torch's CPU algorithm: one fused QKV projection for self-attention, q scaled
before q @ k^T, masked softmax (fully masked rows give zeros), output projection."""

import math

import torch
import torch.nn.functional as F

from ..torch.dispatch import register

aten = torch.ops.aten


def _mask_scores(scores, mask, mask_type):
    """scores (B, H, T, S) with True entries of ``mask`` set to -inf. mask_type 1: a key
    padding mask (B, S); 0 and 2: a mask broadcastable to (T, S) or (B, H, T, S)."""
    if mask is None:
        return scores
    if mask.dtype is not torch.bool:
        mask = mask != 0
    if mask_type == 1:
        mask = mask[:, None, None, :]
    return scores.masked_fill(mask, float("-inf"))


@register(aten._native_multi_head_attention.default)
def native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight,
                                proj_bias, mask=None, need_weights=True, average_attn_weights=True,
                                mask_type=None):
    """(attention output (B, T, E), attention weights or an empty tensor) for batch-first inputs."""
    b, t, e = query.shape
    d = embed_dim // num_head
    if query is key and key is value:
        q, k, v = F.linear(query, qkv_weight, qkv_bias).chunk(3, dim=-1)
    else:
        wq, wk, wv = qkv_weight.chunk(3)
        bq, bk, bv = qkv_bias.chunk(3)
        q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def heads(x):
        return x.reshape(x.shape[0], x.shape[1], num_head, d).transpose(1, 2)

    q, k, v = heads(q) / math.sqrt(d), heads(k), heads(v)
    scores = _mask_scores(q @ k.transpose(-2, -1), mask, mask_type)
    attn = torch.softmax(scores, dim=-1)
    if mask is not None:  # rows whose keys are all masked: zeros, as torch's masked softmax
        attn = attn.nan_to_num(0.0)
    out = F.linear((attn @ v).transpose(1, 2).reshape(b, t, e), proj_weight, proj_bias)
    if not need_weights:
        return out, out.new_empty((0,))
    return out, attn.mean(dim=1) if average_attn_weights else attn


@register(aten._transformer_encoder_layer_fwd.default)
def transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
                                  use_gelu, norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2,
                                  norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None,
                                  mask_type=None):
    """nn.TransformerEncoderLayer's inference fast path: self-attention and feed-forward blocks,
    each with its residual add and layer norm before (norm_first) or after."""
    def norm(x, w, b):
        return F.layer_norm(x, (embed_dim,), w, b, eps)

    x = norm(src, norm_weight_1, norm_bias_1) if norm_first else src
    x = native_multi_head_attention(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
                                    mask, False, True, mask_type)[0] + src
    if not norm_first:
        x = norm(x, norm_weight_1, norm_bias_1)
    h = norm(x, norm_weight_2, norm_bias_2) if norm_first else x
    h = F.linear(h, ffn_weight_1, ffn_bias_1)
    h = F.linear(F.gelu(h) if use_gelu else F.relu(h), ffn_weight_2, ffn_bias_2) + x
    return h if norm_first else norm(h, norm_weight_2, norm_bias_2)
