"""torch.autocast(device_type="ocl"): the AutocastPrivateUse1 kernels.

torch registers autocast kernels for its own devices only, so ``ocl`` gets CUDA's op lists
here (torch's "Autocast Op Reference"): products and convolutions run in the autocast dtype,
ops that need range or precision in float32, ops mixing inputs in their widest type. Every other
op passes through untouched. Casts apply to floating tensors on ocl other than float64, as on
CUDA; torch.amp.GradScaler works on top (torch.ocl.get_amp_supported_dtype says which dtypes)."""

import torch

# aten names (every overload except out= variants)
LOWER_PRECISION = (
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc",
    "prelu", "addmm", "addmv", "addr", "matmul", "einsum", "mm", "mv", "linear", "addbmm", "baddbmm", "bmm",
    "chain_matmul", "linalg_multi_dot", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
    "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "scaled_dot_product_attention")
FLOAT32 = (
    "acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p", "reciprocal", "rsqrt",
    "sinh", "tan", "pow", "softplus", "layer_norm", "group_norm", "norm", "linalg_vector_norm", "nuclear_norm",
    "frobenius_norm", "cosine_similarity", "poisson_nll_loss", "cosine_embedding_loss", "nll_loss", "nll_loss2d",
    "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss", "mse_loss", "margin_ranking_loss",
    "multilabel_margin_loss", "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss",
    "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm", "logsumexp", "prod", "cumprod",
    "cumsum", "softmax", "log_softmax", "sum", "cross_entropy_loss")
PROMOTE = ("addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot", "grid_sampler", "index_put", "scatter_add",
           "tensordot", "stack", "cat")

_KEY = torch._C.DispatchKey.AutocastPrivateUse1
_EXCLUDE = torch._C.DispatchKeySet(_KEY)
_libs = []


def _eligible(t):
    return isinstance(t, torch.Tensor) and t.device.type == "ocl" and t.is_floating_point() \
        and t.dtype is not torch.float64


def _cast(x, dtype):
    if _eligible(x):
        return x if x.dtype is dtype else x.to(dtype)
    if isinstance(x, (list, tuple)) and any(_eligible(e) for e in x):
        return type(x)(_cast(e, dtype) for e in x)
    return x


def _widest(args):
    found = None
    for a in args:
        for t in (a if isinstance(a, (list, tuple)) else (a,)):
            if _eligible(t):
                found = t.dtype if found is None else torch.promote_types(found, t.dtype)
    return found


def _kernel(op, policy):
    def kernel(*args, **kwargs):
        if policy == "lower":
            dtype = torch.get_autocast_dtype("ocl")
        elif policy == "float32":
            dtype = torch.float32
        else:
            dtype = _widest(list(args) + list(kwargs.values()))
        if dtype is not None:
            args = tuple(_cast(a, dtype) for a in args)
            kwargs = {k: _cast(v, dtype) for k, v in kwargs.items()}
        with torch._C._ExcludeDispatchKeyGuard(_EXCLUDE):
            return op(*args, **kwargs)
    return kernel


def install():
    """Registers the fallthrough and the casting kernels (once)."""
    if _libs:
        return
    fallthrough = torch.library.Library("_", "IMPL")
    fallthrough.fallback(torch.library.fallthrough_kernel, "AutocastPrivateUse1")
    lib = torch.library.Library("aten", "IMPL")
    _libs.extend((fallthrough, lib))
    for names, policy in ((LOWER_PRECISION, "lower"), (FLOAT32, "float32"), (PROMOTE, "promote")):
        for name in names:
            packet = getattr(torch.ops.aten, name, None)
            if packet is None:
                continue
            for overload in packet.overloads():
                op = getattr(packet, overload)
                arguments = op._schema.arguments
                if "out" in overload or any(a.is_out for a in arguments) \
                        or not any("Tensor" in str(a.type) for a in arguments):  # (pow.int and such)
                    continue
                lib.impl(f"{name}.{overload}" if overload != "default" else name, _kernel(op, policy),
                         "AutocastPrivateUse1")
