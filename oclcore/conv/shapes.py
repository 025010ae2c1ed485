"""Convolution shapes: tensor descriptors, argument normalisation and
validation (with torch's error messages), output sizes, 'same' padding."""
from dataclasses import dataclass, replace
from typing import Any, Tuple


@dataclass(frozen=True)
class TensorDesc:
    """A device tensor as the convolution layer sees it: a runtime buffer,
    an element offset into it, shape and strides in elements, and dtype."""
    buf: Any
    offset: int
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]
    dtype: str = "float32"

    @property
    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n

    def with_view(self, shape, strides, offset=None):
        """Same storage, another view."""
        return replace(self, shape=tuple(shape), strides=tuple(strides),
                       offset=self.offset if offset is None else offset)


def contiguous_strides(shape):
    """Row-major strides of a dense tensor of this shape."""
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(st))


def channels_last_strides(shape):
    """NHWC strides for an NCHW-shaped 4-D tensor."""
    n, c, h, w = shape
    return (h * w * c, 1, w * c, c)


def _same_dims(a, b, shape):
    return all(x == y for x, y, s in zip(a, b, shape) if s > 1)


def is_contiguous(d):
    """True when d is dense row-major (size-1 dims may have any stride)."""
    return _same_dims(d.strides, contiguous_strides(d.shape), d.shape)


def is_channels_last(d):
    """True when a 4-D d is dense NHWC."""
    return len(d.shape) == 4 and _same_dims(d.strides, channels_last_strides(d.shape), d.shape)


def like_layout_strides(shape, ref):
    """Strides for a new 4-D tensor that follows ref's memory format, as torch
    picks the output format of a convolution from its input."""
    if is_channels_last(ref) and not is_contiguous(ref):
        return channels_last_strides(shape)
    return contiguous_strides(shape)


def _pair(v, name, dims=2):
    if isinstance(v, int):
        return (v,) * dims
    v = tuple(int(t) for t in v)
    if len(v) == 1:
        return v * dims
    if len(v) != dims:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of {dims} "
                           f"values to match the convolution dimensions, but got {name}={list(v)}")
    return v


def conv_out_size(size, k, stride, pad_lo, pad_hi, dilation):
    """Output extent of one spatial dim."""
    return (size + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def resolve_padding(padding, kernel, stride, dilation):
    """Normalise padding (int, tuple, 'same', 'valid') to (top, bottom, left,
    right). 'same' puts the odd extra element at the bottom/right, like torch."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise RuntimeError(f"Invalid padding string: '{padding}'")
        if any(s != 1 for s in stride):
            raise RuntimeError("padding='same' is not supported for strided convolutions")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise RuntimeError("negative padding is not supported")
    return (ph, ph, pw, pw)


@dataclass(frozen=True)
class ConvGeometry:
    """One 2-D convolution problem: y[N,K,P,Q] = conv(x[N,C,H,W], w[K,C/G,R,S])."""
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    P: int
    Q: int
    groups: int
    sh: int
    sw: int
    pt: int
    pb: int
    pl: int
    pr: int
    dh: int
    dw: int

    @property
    def Cg(self):
        return self.C // self.groups

    @property
    def Kg(self):
        return self.K // self.groups

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self):
        return (self.K, self.Cg, self.R, self.S)

    @property
    def y_shape(self):
        return (self.N, self.K, self.P, self.Q)

    @property
    def is_depthwise(self):
        return self.groups == self.C and self.groups > 1 and self.K % self.C == 0

    def key(self):
        """Hashable shape key for the planner caches."""
        return (self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.groups,
                self.sh, self.sw, self.pt, self.pb, self.pl, self.pr, self.dh, self.dw)


def check_dtype(*descs):
    """Only float32 kernels exist; other dtypes must go to the CPU fallback."""
    for d in descs:
        if d is not None and d.dtype != "float32":
            raise NotImplementedError(f"oclcore conv: dtype {d.dtype} is not supported (float32 only)")


_geometries = {}  # call arguments -> ConvGeometry: every layer asks again on every call


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, bias_shape=None):
    """Validate conv2d arguments as torch does and return the ConvGeometry.
    x_shape must be 4-D (the public API unsqueezes unbatched input)."""
    key = (tuple(x_shape), tuple(w_shape), _hashable(stride), _hashable(padding), _hashable(dilation), groups,
           None if bias_shape is None else tuple(bias_shape))
    g = _geometries.get(key)
    if g is None:
        g = _conv_geometry(*key)
        if len(_geometries) >= 4096:
            _geometries.clear()
        _geometries[key] = g
    return g


def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, bias_shape):
    if len(x_shape) != 4:
        raise RuntimeError("Expected 3D (unbatched) or 4D (batched) input to conv2d, "
                           f"but got input of size: {list(x_shape)}")
    if len(w_shape) != 4:
        raise RuntimeError(f"Expected {len(w_shape)}-dimensional input for {len(w_shape)}-dimensional "
                           f"weight {list(w_shape)}, but got 4-dimensional input of size "
                           f"{list(x_shape)} instead")
    stride = _pair(stride, "stride")
    dilation = _pair(dilation, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    N, C, H, W = x_shape
    K, Cg, R, S = w_shape
    if K % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size [{list(w_shape)}] instead")
    if Cg * groups != C:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(w_shape)}, expected "
                           f"input{list(x_shape)} to have {Cg * groups} channels, but got {C} "
                           "channels instead")
    if bias_shape is not None and tuple(bias_shape) != (K,):
        raise RuntimeError(f"Given weight of size {list(w_shape)}, expected bias to be "
                           f"1-dimensional with {K} elements, but got bias of size "
                           f"{list(bias_shape)} instead")
    pt, pb, pl, pr = resolve_padding(padding, (R, S), stride, dilation)
    hp, wp = H + pt + pb, W + pl + pr
    if hp < dilation[0] * (R - 1) + 1 or wp < dilation[1] * (S - 1) + 1:
        raise RuntimeError(f"Calculated padded input size per channel: ({hp} x {wp}). Kernel size: "
                           f"({dilation[0] * (R - 1) + 1} x {dilation[1] * (S - 1) + 1}). "
                           "Kernel size can't be greater than actual input size")
    P = conv_out_size(H, R, stride[0], pt, pb, dilation[0])
    Q = conv_out_size(W, S, stride[1], pl, pr, dilation[1])
    return ConvGeometry(N, C, H, W, K, R, S, P, Q, groups, stride[0], stride[1],
                        pt, pb, pl, pr, dilation[0], dilation[1])


def conv_transpose_geometry(x_shape, w_shape, stride=1, padding=0, output_padding=0,
                            groups=1, dilation=1, bias_shape=None):
    """Geometry of conv_transpose2d(x, w) seen as the conv2d whose input
    gradient it is: returns the ConvGeometry with input (N, Cout, Hout, Wout)
    and output (N, Cin, H, W)."""
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise RuntimeError("Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, "
                           f"but got input of size: {list(x_shape)}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    pad, opad = _pair(padding, "padding"), _pair(output_padding, "output_padding")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError(f"dilation should be greater than zero, but got {list(dilation)}")
    if any(p < 0 for p in pad) or any(p < 0 for p in opad):
        raise RuntimeError("negative padding is not supported")
    if any(o >= max(s, d) for o, s, d in zip(opad, stride, dilation)):
        raise RuntimeError("output padding must be smaller than either stride or dilation, but got "
                           f"output_padding_height: {opad[0]} output_padding_width: {opad[1]} "
                           f"stride_height: {stride[0]} stride_width: {stride[1]} "
                           f"dilation_height: {dilation[0]} dilation_width: {dilation[1]}")
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    N, Cin, H, W = x_shape
    wc, coutg, R, S = w_shape
    if wc != Cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(w_shape)}, expected "
                           f"input{list(x_shape)} to have {wc} channels, but got {Cin} "
                           "channels instead")
    if Cin % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size [{list(w_shape)}] instead")
    if bias_shape is not None and tuple(bias_shape) != (coutg * groups,):
        raise RuntimeError(f"Given transposed=1, weight of size {list(w_shape)}, expected bias to "
                           f"be 1-dimensional with {coutg * groups} elements, but got bias of "
                           f"size {list(bias_shape)} instead")
    Ho = (H - 1) * stride[0] - 2 * pad[0] + dilation[0] * (R - 1) + opad[0] + 1
    Wo = (W - 1) * stride[1] - 2 * pad[1] + dilation[1] * (S - 1) + opad[1] + 1
    if Ho <= 0 or Wo <= 0:
        raise RuntimeError(f"Given input size per channel: ({H} x {W}). Calculated output size "
                           f"per channel: ({Ho} x {Wo}). Output size is too small")
    # The forward conv maps (Ho, Wo) to (H, W): its bottom/right padding is
    # whatever makes the sizes agree (output_padding lowers it).
    pb = (H - 1) * stride[0] + dilation[0] * (R - 1) + 1 - Ho - pad[0]
    pr = (W - 1) * stride[1] + dilation[1] * (S - 1) + 1 - Wo - pad[1]
    return ConvGeometry(N, coutg * groups, Ho, Wo, Cin, R, S, H, W, groups, stride[0], stride[1],
                        pad[0], pb, pad[1], pr, dilation[0], dilation[1])
