"""Convolution algorithms. Each has supports(geom, pass_) and forward /
grad_input / grad_weight entry points that overwrite preallocated outputs.
Tensors are 4-D TensorDescs (any strides unless an algorithm packs them);
weights [K, C/groups, R, S]. Only kernel launches and GEMM calls happen here;
choosing among algorithms is planner.py's job."""
from ..gemm.planner import ACTIVATIONS, sum_slices
from .shapes import TensorDesc, contiguous_strides, is_contiguous

FORWARD, GRAD_INPUT, GRAD_WEIGHT = "forward", "grad_input", "grad_weight"
_F32 = 4


class ConvContext:
    """What the convolution layer needs from the runtime: get_kernel(files,
    defines, name, signature) -> obj with .launch(gsize, lsize, args);
    alloc(nbytes) -> buffer; gemm(...) with the GEMM core's strided-batched
    convention and epilogue keywords (oclcore.gemm.planner.gemm); optional
    free(buffer) to return temporaries, synchronize() for benchmark timing,
    the device name for the benchmark cache, and a workspace budget in bytes
    for im2col/Winograd temporaries."""

    def __init__(self, get_kernel, alloc, gemm, free=None, synchronize=None,
                 device_name="unknown", workspace_bytes=256 << 20, igemm_tiles=None):
        self.get_kernel, self.alloc, self.gemm = get_kernel, alloc, gemm
        self.free, self.synchronize = free, synchronize
        self.device_name, self.workspace_bytes = device_name, workspace_bytes
        self.igemm_tiles = igemm_tiles or dict(TSM=64, TSN=64, TSK=16, WPTM=4, WPTN=4)
        self._kernels = {}

    def kernel(self, file, name, sig, defines=None):
        """Cached kernel handle from cl/<file>, after the shared cl/conv_geometry.cl
        and cl/activation.cl."""
        defines = defines or {}
        key = (file, name, tuple(sorted(defines.items())))
        k = self._kernels.get(key)
        if k is None:
            k = self._kernels[key] = self.get_kernel(("conv_geometry.cl", "activation.cl", file), defines,
                                                     name, sig)
        return k

    def temp(self, nelems):
        """A float32 scratch buffer of at least one element."""
        return self.alloc(max(int(nelems), 1) * _F32)

    def release(self, *bufs):
        """Return scratch buffers; safe at once on an in-order queue."""
        if self.free is not None:
            for b in bufs:
                if b is not None:
                    self.free(b)


def _ceil(a, b):
    return (a + b - 1) // b * b


def _grid(gsize, lsize):
    return tuple(_ceil(g, l) for g, l in zip(gsize, lsize))


_EW = (64, 1, 1)   # local size of elementwise-style kernels
_RED = 64          # local size of reductions (power of two)


def launch_ew(ctx, file, name, sig, gsize, args, defines=None):
    """Launch a bounds-checked elementwise kernel over a 3-D grid."""
    if min(gsize) <= 0:
        return
    ctx.kernel(file, name, sig, defines).launch(_grid(gsize, _EW), _EW, args)


def _d4(t):
    return (t.buf, t.offset) + tuple(t.strides)


# ---- layout helpers ---------------------------------------------------------

def _launch_flat(ctx, name, sig, n, args):
    """Launch a conv_im2col.cl kernel over n elements, one work-item each."""
    if n > 0:
        ctx.kernel("conv_im2col.cl", name, sig).launch((_ceil(n, 256),), (256,), args)


def copy4d(ctx, src, dst):
    """dst[...] = src[...] for two 4-D descriptors of equal shape."""
    N, C, H, W = src.shape
    _launch_flat(ctx, "copy4d", "Biiiii" "Biiiii" "iiii", N * C * H * W,
                 _d4(src) + _d4(dst) + (N, C, H, W))


def fill4d(ctx, dst, value=0.0):
    """dst[...] = value."""
    N, C, H, W = dst.shape
    _launch_flat(ctx, "fill4d", "Biiiii" "iiiif", N * C * H * W,
                 _d4(dst) + (N, C, H, W, float(value)))


def packed(ctx, t):
    """t if dense row-major, else a dense copy (the copy's buffer is owned by
    the caller: release it with ctx.release(result.buf) when result is not t)."""
    if is_contiguous(t):
        return t
    out = TensorDesc(ctx.temp(t.numel), 0, t.shape, contiguous_strides(t.shape), t.dtype)
    copy4d(ctx, t, out)
    return out


def hw_flat(t):
    """True when (h, w) of a 4-D desc collapse to one stride, which the GEMM
    views of the 1x1 and im2col paths need (NCHW and NHWC both qualify)."""
    n, c, h, w = t.shape
    return h == 1 or w == 1 or t.strides[2] == w * t.strides[3]


def hw_stride(t):
    """The stride of the collapsed (h, w) index of a hw_flat desc."""
    return t.strides[2] if t.shape[3] == 1 else t.strides[3]


def nhw_stride(t):
    """The stride of the collapsed (n, h, w) index of a 4-D desc, or None when
    those dims do not collapse to one (NHWC and single images do; NCHW with
    several images does not)."""
    dims = [(size, st) for size, st in zip(t.shape[:1] + t.shape[2:], t.strides[:1] + t.strides[2:])
            if size > 1]
    for (_, outer), (size, inner) in zip(dims, dims[1:]):
        if outer != size * inner:
            return None
    return dims[-1][1] if dims else 1


def channel_rows(ctx, t, n0, nb):
    """Images n0 .. n0+nb-1 of t as a [C, nb*H*W] matrix whose column index
    n*H*W + h*W + w runs over images, then positions: (buf, offset, row
    stride, column stride, owned). Read in place when those dims collapse,
    else packed channel-major into owned (else None), which the caller
    releases."""
    C, H, W = t.shape[1:]
    chunk = t.with_view((nb, C, H, W), t.strides, t.offset + n0 * t.strides[0])
    js = nhw_stride(chunk)
    if js is not None:
        return chunk.buf, chunk.offset, t.strides[1], js, None
    buf = ctx.temp(C * nb * H * W)
    copy4d(ctx, chunk, TensorDesc(buf, 0, chunk.shape, (H * W, nb * H * W, W, 1), t.dtype))
    return buf, 0, nb * H * W, 1, buf


def pack_bytes(t):
    """Workspace bytes per image that channel_rows needs for t."""
    C, H, W = t.shape[1:]
    return 0 if nhw_stride(t) is not None else C * H * W * _F32


class _Flat:
    """Context manager yielding a GEMM-viewable version of an input (copied
    if needed) and releasing the copy afterwards; for outputs, also copies the
    result back into the caller's descriptor on exit."""

    def __init__(self, ctx, t, output=False, need=hw_flat):
        self.ctx, self.t, self.output, self.need = ctx, t, output, need

    def __enter__(self):
        if self.need(self.t):
            self.v = self.t
        elif self.output:
            self.v = TensorDesc(self.ctx.temp(self.t.numel), 0, self.t.shape,
                                contiguous_strides(self.t.shape), self.t.dtype)
        else:
            self.v = packed(self.ctx, self.t)
        return self.v

    def __exit__(self, *exc):
        if self.v is not self.t:
            if self.output and exc[0] is None:
                copy4d(self.ctx, self.v, self.t)
            self.ctx.release(self.v.buf)


def bias_act(ctx, y, bias, act="none"):
    """In place y = act(y + bias[c]) (act: a name of ACTIVATIONS)."""
    if bias is None and act == "none":
        return
    N, C, H, W = y.shape
    b = (bias.buf, bias.offset) if bias is not None else (y.buf, 0)
    launch_ew(ctx, "conv_bias.cl", "bias_act", "Biiiii" "Bi" "iiii" "ii", (H * W, C, N),
              _d4(y) + b + (N, C, H, W, int(bias is not None), ACTIVATIONS[act]))


def _bias_args(bias, y):
    """The (buffer, offset, has_bias) arguments of the kernels' fused bias."""
    return (bias.buf, bias.offset, 1) if bias is not None else (y.buf, 0, 0)


def gemm_epilogue(bias, act, k0):
    """Keywords of ctx.gemm for a GEMM whose rows are output channels k0, k0+1, ...:
    bias[k] (BIAS_ROW) and act applied in its epilogue."""
    if bias is None:
        return {} if act == "none" else {"act": act}
    return {"bias": bias.buf, "bias_off": bias.offset + k0, "bias_dim": "row", "act": act}


def bias_grad(ctx, dy, db):
    """db[k] = sum over n, p, q of dy[n, k, p, q], deterministic."""
    N, K, P, Q = dy.shape
    if K == 0:
        return
    ctx.kernel("conv_bias.cl", "bias_grad", "Biiiii" "Bi" "iii" "Z").launch(
        (_RED, K, 1), (_RED, 1, 1), _d4(dy) + (db.buf, db.offset, N, P, Q, _RED * _F32))


# ---- algorithms -------------------------------------------------------------

class Algorithm:
    """Interface: supports(g, pass_) and the three passes."""
    name = ""

    def supports(self, g, pass_=FORWARD):
        raise NotImplementedError

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        """y = act(conv(x, w) + bias), act a name of ACTIVATIONS."""
        raise NotImplementedError

    def grad_input(self, ctx, g, dy, w, dx):
        """dx = dL/dx given dy = dL/dy."""
        raise NotImplementedError

    def grad_weight(self, ctx, g, dy, x, dw):
        """dw = dL/dw given dy = dL/dy."""
        raise NotImplementedError


def _w_matrix(ctx, w):
    """Dense weights so that w[K][C*R*S] is a row-major matrix."""
    return _Flat(ctx, w, need=is_contiguous)


class Gemm1x1(Algorithm):
    """1x1, stride 1, no padding: y[n] = W[Ko,Ci] x[n][Ci,HW] per group, a
    strided-batched GEMM straight on the tensors (no im2col), bias and
    activation in its epilogue; the filter gradient is deep_grad_weight on x (packed only when its images and
    positions do not collapse to one stride, as in NCHW)."""
    name = "gemm_1x1"

    def supports(self, g, pass_=FORWARD):
        return (g.R == 1 and g.S == 1 and g.sh == 1 and g.sw == 1
                and g.pt == g.pb == g.pl == g.pr == 0)

    @staticmethod
    def _columns(g, src, dst):
        """(columns, src and dst column strides, batch, src and dst batch strides) of the
        product: positions per image, batched over images; with one position per image (the
        squeeze-excitation convolutions) the images themselves, in one GEMM instead of a batch
        of matrix-vector products that each read the whole filter."""
        if g.H * g.W == 1:
            return g.N, src.strides[0], dst.strides[0], 1, 0, 0
        return g.H * g.W, hw_stride(src), hw_stride(dst), g.N, src.strides[0], dst.strides[0]

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        with _Flat(ctx, x) as xv, _Flat(ctx, y, True) as yv:
            sx, sw_, sy = xv.strides, w.strides, yv.strides
            cols, xc, yc, batch, xb, yb = self._columns(g, xv, yv)
            for gi in range(g.groups):
                ctx.gemm(w.buf, w.offset + gi * g.Kg * sw_[0], sw_[0], sw_[1],
                         xv.buf, xv.offset + gi * g.Cg * sx[1], sx[1], xc,
                         yv.buf, yv.offset + gi * g.Kg * sy[1], sy[1], yc,
                         g.Kg, cols, g.Cg, 1.0, 0.0, batch, 0, xb, yb,
                         **gemm_epilogue(bias, act, gi * g.Kg))

    def grad_input(self, ctx, g, dy, w, dx):
        with _Flat(ctx, dy) as dyv, _Flat(ctx, dx, True) as dxv:
            sy, sw_, sx = dyv.strides, w.strides, dxv.strides
            cols, yc, xc, batch, yb, xb = self._columns(g, dyv, dxv)
            for gi in range(g.groups):
                ctx.gemm(w.buf, w.offset + gi * g.Kg * sw_[0], sw_[1], sw_[0],
                         dyv.buf, dyv.offset + gi * g.Kg * sy[1], sy[1], yc,
                         dxv.buf, dxv.offset + gi * g.Cg * sx[1], sx[1], xc,
                         g.Cg, cols, g.Kg, 1.0, 0.0, batch, 0, yb, xb)

    def grad_weight(self, ctx, g, dy, x, dw):
        dwm = (dw.buf, dw.offset, dw.strides[0], dw.strides[1])
        # With several NCHW images, one deep GEMM would first copy dy and x
        # channel-major; per-image products read them in place and cost only
        # their (small) partial filters when positions outnumber channels.
        if (g.groups == 1 and pack_bytes(x) and hw_flat(x) and hw_flat(dy)
                and g.Kg * g.Cg < (g.Kg + g.Cg) * g.H * g.W):
            per_image_grad_weight(ctx, g, dy, x, dwm)
        else:
            deep_grad_weight(ctx, g, dy, lambda n0, nb: channel_rows(ctx, x, n0, nb), pack_bytes(x),
                             dwm)


_IM2COL_SIG = "BiiiiiBiii" + "i" * 15
_COL2IM_SIG = "BiBiiiii" + "i" * 15


def _col_args(g, n0, nb):
    return (g.C, g.H, g.W, g.R, g.S, g.P, g.Q, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, n0, nb)


def _chunks(n, per_image, budget):
    nb = n if per_image <= 0 else max(1, min(n, budget // per_image))
    for n0 in range(0, n, nb):
        yield n0, min(nb, n - n0)


def deep_grad_weight(ctx, g, dy, rows, per_image, dw):
    """dW[K, Cg*R*S] = dY[K, j] @ X[C*R*S, j]^T per group, the reduction index
    j = n*P*Q + p*Q + q running over images and positions: one deep GEMM
    (batched over groups, split over K by the GEMM planner) per workspace
    chunk of images, accumulated in chunk order (deterministic). rows(n0, nb)
    gives a chunk's X as channel_rows does, using per_image workspace bytes
    per image; dw is (buf, offset, row stride, column stride)."""
    CgRS, PQ = g.Cg * g.R * g.S, g.P * g.Q
    dwb, dwo, dwr, dwc = dw
    for n0, nb in _chunks(g.N, per_image + pack_bytes(dy), ctx.workspace_bytes):
        yb, yo, yr, yj, yown = channel_rows(ctx, dy, n0, nb)
        xb, xo, xr, xj, xown = rows(n0, nb)
        ctx.gemm(yb, yo, yr, yj, xb, xo, xj, xr, dwb, dwo, dwr, dwc,
                 g.Kg, CgRS, nb * PQ, 1.0, 0.0 if n0 == 0 else 1.0,
                 g.groups, g.Kg * yr, CgRS * xr, g.Kg * dwr)
        ctx.release(yown, xown)


def per_image_grad_weight(ctx, g, dy, x, dw):
    """dW[K, C] = sum over images n of dY[n][K, HW] @ X[n][C, HW]^T for a 1x1
    convolution (groups 1, (h, w) flat): a GEMM batched over the images of a
    workspace chunk into per-image partial filters, summed in image order
    (deterministic) into dw = (buf, offset, row stride, column stride)."""
    K, C, HW = g.Kg, g.Cg, g.H * g.W
    dwb, dwo, dwr, dwc = dw
    for n0, nb in _chunks(g.N, K * C * _F32, ctx.workspace_bytes):
        part = ctx.temp(nb * K * C)
        ctx.gemm(dy.buf, dy.offset + n0 * dy.strides[0], dy.strides[1], hw_stride(dy),
                 x.buf, x.offset + n0 * x.strides[0], hw_stride(x), x.strides[1],
                 part, 0, C, 1, K, C, HW, 1.0, 0.0, nb, dy.strides[0], x.strides[0], K * C)
        sum_slices(ctx.get_kernel, None, part, nb, C, K, dwb, dwo, dwc, dwr,
                   beta=0.0 if n0 == 0 else 1.0)
        ctx.release(part)


class Im2colGemm(Algorithm):
    """Explicit im2col into a column buffer (a chunk of images at a time,
    bounded by the workspace) and a GEMM per group, bias and activation in
    its epilogue; col2im (a deterministic gather) for the input gradient; for the filter gradient, a column buffer
    col[crs][n][pq] per chunk feeds deep_grad_weight. Works for every shape:
    the fallback."""
    name = "im2col"

    def supports(self, g, pass_=FORWARD):
        return True

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        CRS, PQ, CgRS = g.C * g.R * g.S, g.P * g.Q, g.Cg * g.R * g.S
        with _w_matrix(ctx, w) as wv, _Flat(ctx, y, True) as yv:
            sy = yv.strides
            for n0, nb in _chunks(g.N, CRS * PQ * _F32, ctx.workspace_bytes):
                col = ctx.temp(nb * CRS * PQ)
                _launch_flat(ctx, "im2col", _IM2COL_SIG, nb * CRS * PQ,
                             _d4(x) + (col, 0, CRS * PQ, PQ) + _col_args(g, n0, nb))
                for gi in range(g.groups):
                    ctx.gemm(wv.buf, wv.offset + gi * g.Kg * CgRS, CgRS, 1,
                             col, gi * CgRS * PQ, PQ, 1,
                             yv.buf, yv.offset + n0 * sy[0] + gi * g.Kg * sy[1],
                             sy[1], hw_stride(yv),
                             g.Kg, PQ, CgRS, 1.0, 0.0, nb, 0, CRS * PQ, sy[0],
                             **gemm_epilogue(bias, act, gi * g.Kg))
                ctx.release(col)

    def grad_input(self, ctx, g, dy, w, dx):
        CRS, PQ, CgRS = g.C * g.R * g.S, g.P * g.Q, g.Cg * g.R * g.S
        with _w_matrix(ctx, w) as wv, _Flat(ctx, dy) as dyv:
            sy = dyv.strides
            for n0, nb in _chunks(g.N, CRS * PQ * _F32, ctx.workspace_bytes):
                col = ctx.temp(nb * CRS * PQ)
                for gi in range(g.groups):
                    ctx.gemm(wv.buf, wv.offset + gi * g.Kg * CgRS, 1, CgRS,
                             dyv.buf, dyv.offset + n0 * sy[0] + gi * g.Kg * sy[1],
                             sy[1], hw_stride(dyv),
                             col, gi * CgRS * PQ, PQ, 1,
                             CgRS, PQ, g.Kg, 1.0, 0.0, nb, 0, sy[0], CRS * PQ)
                _launch_flat(ctx, "col2im", _COL2IM_SIG, nb * g.C * g.H * g.W,
                             (col, 0) + _d4(dx) + _col_args(g, n0, nb))
                ctx.release(col)

    def grad_weight(self, ctx, g, dy, x, dw):
        CRS, PQ = g.C * g.R * g.S, g.P * g.Q

        def rows(n0, nb):   # col[crs][n][pq]: the reduction index n*PQ + pq has stride 1
            col = ctx.temp(CRS * nb * PQ)
            _launch_flat(ctx, "im2col", _IM2COL_SIG, nb * CRS * PQ,
                         _d4(x) + (col, 0, PQ, nb * PQ) + _col_args(g, n0, nb))
            return col, 0, nb * PQ, 1, col
        with _Flat(ctx, dw, True, need=is_contiguous) as dwv:
            deep_grad_weight(ctx, g, dy, rows, CRS * PQ * _F32,
                             (dwv.buf, dwv.offset, g.Cg * g.R * g.S, 1))


_IGEMM_SIG = "Biiiii" * 3 + "Bii" + "i" * 16


class ImplicitGemm(Algorithm):
    """Implicit GEMM (cl/conv_implicit_gemm.cl): im2col folded into the tile
    loads, all three passes, groups on the grid, fused bias + activation forward."""
    name = "implicit_gemm"

    def supports(self, g, pass_=FORWARD):
        return True

    def _run(self, ctx, g, mode, x, w, y, bias=None, act="none"):
        t = ctx.igemm_tiles
        defines = dict(t, MODE=mode, ACT=ACTIVATIONS[act])
        if mode == 0:
            md, nd = g.Kg, g.N * g.P * g.Q
        elif mode == 1:
            md, nd = g.Cg, g.N * g.H * g.W
        else:
            md, nd = g.Kg, g.Cg * g.R * g.S
        rtm, rtn = t["TSM"] // t["WPTM"], t["TSN"] // t["WPTN"]
        gsize = (-(-nd // t["TSN"]) * rtn, -(-md // t["TSM"]) * rtm, g.groups)
        ctx.kernel("conv_implicit_gemm.cl", "conv_igemm", _IGEMM_SIG, defines).launch(
            gsize, (rtn, rtm, 1),
            _d4(x) + _d4(w) + _d4(y) + _bias_args(bias, y)
            + (g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.P, g.Q, g.groups,
               g.sh, g.sw, g.pt, g.pl, g.dh, g.dw))

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        self._run(ctx, g, 0, x, w, y, bias, act)

    def grad_input(self, ctx, g, dy, w, dx):
        self._run(ctx, g, 1, dx, w, dy)

    def grad_weight(self, ctx, g, dy, x, dw):
        self._run(ctx, g, 2, x, dw, dy)


def _dw_w(w):
    return (w.buf, w.offset, w.strides[0], w.strides[2], w.strides[3])


def _dw_geo(g):
    return (g.H, g.W, g.P, g.Q, g.R, g.S, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw)


def _cdiv(a, b):
    return -(-a // b)


_DW_VP = 4                # output rows per work-item (VP in conv_depthwise.cl) ...
_DW_VP_FORWARD_S1 = 8     # ... of stride-1 forwards (bench/probes/depthwise_tiles.py on an H200:
#                           efficientnet_b0's and mobilenet_v2's stride-1 layers 5-25% faster)
_DW_PARTS = 16            # WG_PARTS in conv_depthwise.cl
_DW_LOCAL = 32 << 10      # local-memory bytes a tiled depthwise work-group may use
_DW_SPECIAL = ((3, 3), (5, 5), (7, 7))


def _dw_vp(g, pass_):
    """Output rows per work-item of the tiled forward / data-gradient kernel."""
    return _DW_VP_FORWARD_S1 if pass_ == FORWARD and g.sh == g.sw == 1 else _DW_VP


def _dw_defines(g, pass_):
    """Output rows per work-item, and compile-time geometry for the common kernel
    sizes (stride 1 or 2, no dilation); other problems share one program with
    runtime geometry."""
    if (g.R, g.S) in _DW_SPECIAL and g.sh == g.sw in (1, 2) and g.dh == g.dw == 1:
        return dict(VP=_dw_vp(g, pass_), KR=g.R, KS=g.S, KSH=g.sh, KSW=g.sw, KDH=1, KDW=1)
    return dict(VP=_dw_vp(g, pass_))


def _dw_tile(rows, cols, nt, nb, span_h, span_w, RS):
    """(LX, LY, LZ, TH, TW) of a tiled kernel over a rows x cols output plane
    whose work-items own nt x nb outputs and whose LY*nt x LX*nb tile reads a
    span_h(LY*nt) x span_w(LX*nb) input tile: the least modelled cost (outputs
    computed including the overhang, half the staged inputs, a fixed cost per
    tile) that fits in local memory, with LZ planes per work-group so that it
    has at least 64 work-items; None when no tile fits."""
    best = None
    for lx in (8, 16, 32):
        for ly in (1, 2, 4, 8):
            th, tw = span_h(ly * nt), span_w(lx * nb)
            lz = min(max(1, 64 // (lx * ly)), _DW_LOCAL // ((RS + th * tw) * _F32))
            if lz == 0:
                continue
            cost = _cdiv(rows, ly * nt) * _cdiv(cols, lx * nb) * (lx * ly * nt * nb + th * tw / 2 + 32)
            if best is None or cost < best[0]:
                best = (cost, lx, ly, lz, th, tw)
    return best and best[1:]


def _dw_forward_tile(g):
    return _dw_tile(g.P, g.Q, _dw_vp(g, FORWARD), 1, lambda n: (n - 1) * g.sh + (g.R - 1) * g.dh + 1,
                    lambda n: (n - 1) * g.sw + (g.S - 1) * g.dw + 1, g.R * g.S)


def _dw_grad_input_tile(g):
    """Tile, rows and columns per work-item, and the origin (hs, ws) of the
    tiles in h' = h + pad, w' = w + pad, the largest multiples of the strides
    up to the padding, so that a tile of n outputs reads n / stride dy rows
    plus the kernel's reach whenever n is a multiple of the stride (always
    with compile-time geometry, whose work-items own whole stride phases)."""
    spec = "KR" in _dw_defines(g, GRAD_INPUT)

    def span(n, stride, k, dil):
        if n % stride == 0:
            return n // stride + _cdiv((k - 1) * dil, stride)
        return (n - 1 + (k - 1) * dil) // stride + 2
    vp = _dw_vp(g, GRAD_INPUT)
    nt, nb = (vp * g.sh, g.sw) if spec else (vp, 1)
    hs, ws = g.pt - g.pt % g.sh, g.pl - g.pl % g.sw
    tile = _dw_tile(g.H + g.pt - hs, g.W + g.pl - ws, nt, nb, lambda n: span(n, g.sh, g.R, g.dh),
                    lambda n: span(n, g.sw, g.S, g.dw), g.R * g.S)
    return tile, nt, nb, hs, ws


def _dw_weight_blocks(g):
    """(NI, PB, BP, TQ, XR, XC, LX, LY, blocks) of the weight gradient's stage
    1: blocks of NI images x PB output rows, enough of them for about 2048
    work-groups over K channels but each with at least ~1024 dy elements;
    columns in chunks of TQ; XR x XC input tile per image; None when even a
    one-element tile does not fit in local memory."""
    RS = g.R * g.S
    want = max(_cdiv(g.N * g.P, _cdiv(2048, g.K)), _cdiv(1024, g.Q))
    PB, NI = (g.P, max(1, min(g.N, want // g.P))) if want >= g.P else (want, 1)
    TQ = min(g.Q, 256)
    while True:
        LX = min((8, 16, 32), key=lambda lx: (_cdiv(TQ, lx) * lx, -lx))
        LY = 1 << max(1, min(NI * PB, 256 // LX, _DW_LOCAL // (2 * _F32 * RS * LX))).bit_length() - 1
        XR, XC = (PB - 1) * g.sh + (g.R - 1) * g.dh + 1, (TQ - 1) * g.sw + (g.S - 1) * g.dw + 1
        if (NI * XR * XC + RS * (LX * LY + _DW_PARTS)) * _F32 <= _DW_LOCAL:
            break
        if NI > 1:
            NI //= 2
        elif PB > 1:
            PB //= 2
        elif TQ > 1:
            TQ //= 2
        else:
            return None
    BP = _cdiv(g.P, PB)
    return NI, PB, BP, TQ, XR, XC, LX, LY, _cdiv(g.N, NI) * BP


# ---- per-element fallbacks of the depthwise and grouped algorithms (cl/conv_direct.cl) ----

_DIRECT_SIG_FWD = "Biiiii" * 3 + "Biii" + "iiii" + "i" * 12
_DIRECT_SIG_GI = "Biiiii" * 3 + "iiii" + "i" * 12


def _groups_args(g):
    return (g.N, g.groups, g.Cg, g.Kg) + _dw_geo(g)


def direct_forward(ctx, g, x, w, bias, y, act):
    """y = act(conv(x, w) + bias), one output per work-item."""
    launch_ew(ctx, "conv_direct.cl", "conv_direct_forward", _DIRECT_SIG_FWD, (g.P * g.Q, g.K, g.N),
              _d4(x) + _d4(w) + _d4(y) + _bias_args(bias, y) + (ACTIVATIONS[act],) + _groups_args(g))


def direct_grad_input(ctx, g, dy, w, dx):
    """dx as a gather over dy, one input element per work-item."""
    launch_ew(ctx, "conv_direct.cl", "conv_direct_grad_input", _DIRECT_SIG_GI, (g.H * g.W, g.C, g.N),
              _d4(dy) + _d4(w) + _d4(dx) + _groups_args(g))


def direct_grad_weight(ctx, g, dy, x, dw):
    """dw, one work-group per filter element, a fixed-order tree sum."""
    ctx.kernel("conv_direct.cl", "conv_direct_grad_weight", _DIRECT_SIG_GI + "Z").launch(
        (_RED, g.K * g.Cg * g.R * g.S, 1), (_RED, 1, 1), _d4(dy) + _d4(x) + _d4(dw) + _groups_args(g) + (_RED * _F32,))


def _dw_launch(ctx, g, pass_, name, sig, head, tile, planes, rows, cols, nt, nb, extra):
    """Launches tiled depthwise kernel name (of pass_) over planes output planes
    of rows x cols (work-items owning nt x nb outputs, tile = (LX, LY, LZ, TH,
    TW)), with extra ints after head."""
    defines = _dw_defines(g, pass_)
    LX, LY, LZ, TH, TW = tile
    tq = _cdiv(cols, LX * nb)
    ctx.kernel("conv_depthwise.cl", name, sig + "i" * (len(extra) + 3) + "Z", defines).launch(
        (tq * _cdiv(planes, LZ) * LX, _cdiv(rows, LY * nt) * LY, LZ), (LX, LY, LZ),
        head + extra + (tq, TH, TW, LZ * (g.R * g.S + TH * TW) * _F32))


class Depthwise(Algorithm):
    """Depthwise kernels (groups == C, K = C * multiplier): tiled through
    local memory, compile-time geometry for the common kernel sizes, a
    two-stage deterministic weight gradient (per-block partials, then the
    GEMM core's ordered sum_slices); the per-element kernels of
    cl/conv_direct.cl when a tile does not fit."""
    name = "depthwise"
    _plans = {}

    def supports(self, g, pass_=FORWARD):
        return g.is_depthwise

    def _plan(self, g, pass_, make):
        key = (g, pass_, _DW_LOCAL, _DW_VP, _DW_VP_FORWARD_S1)
        p = self._plans.get(key)
        if p is None:
            p = self._plans[key] = make(g)
        return p

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        tile = self._plan(g, FORWARD, _dw_forward_tile)
        if tile is None:
            direct_forward(ctx, g, x, w, bias, y, act)
            return
        head = (_d4(x) + _dw_w(w) + _d4(y) + _bias_args(bias, y) + (ACTIVATIONS[act], g.N * g.K, g.K, g.K // g.C)
                + _dw_geo(g))
        _dw_launch(ctx, g, FORWARD, "dw_forward", "Biiiii" "Biiii" "Biiiii" "Biii" "iii" + "i" * 12, head, tile,
                   g.N * g.K, g.P, g.Q, _dw_vp(g, FORWARD), 1, ())

    def grad_input(self, ctx, g, dy, w, dx):
        tile, nt, nb, hs, ws = self._plan(g, GRAD_INPUT, _dw_grad_input_tile)
        if tile is None:
            direct_grad_input(ctx, g, dy, w, dx)
            return
        head = _d4(dy) + _dw_w(w) + _d4(dx) + (g.N * g.C, g.C, g.K // g.C) + _dw_geo(g)
        _dw_launch(ctx, g, GRAD_INPUT, "dw_grad_input", "Biiiii" "Biiii" "Biiiii" "iii" + "i" * 12, head, tile,
                   g.N * g.C, g.H + g.pt - hs, g.W + g.pl - ws, nt, nb, (hs, ws))

    def grad_weight(self, ctx, g, dy, x, dw):
        plan = self._plan(g, GRAD_WEIGHT, _dw_weight_blocks)
        if plan is None:
            direct_grad_weight(ctx, g, dy, x, dw)
            return
        RS, defines = g.R * g.S, _dw_defines(g, GRAD_WEIGHT)
        head = _d4(dy) + _d4(x)
        tail = (g.N, g.K, g.K // g.C) + _dw_geo(g)
        NI, PB, BP, TQ, XR, XC, LX, LY, blocks = plan
        part = ctx.temp(blocks * g.K * RS)
        local = (NI * XR * XC + RS * (LX * LY + _DW_PARTS)) * _F32
        ctx.kernel("conv_depthwise.cl", "dw_grad_weight_part",
                   "Biiiii" "Biiiii" "Bi" "iii" + "i" * 12 + "iiiiiiZ", defines).launch(
            (blocks * g.K * LX, LY), (LX, LY),
            head + (part, 0) + tail + (NI, PB, BP, TQ, XR, XC, local))
        # Stage 2: the blocks' partials (part[blk][k][rs]) summed in block order.
        with _Flat(ctx, dw, True, need=is_contiguous) as dwv:
            sum_slices(ctx.get_kernel, None, part, blocks, RS, g.K, dwv.buf, dwv.offset, 1, RS)
        ctx.release(part)


from .grouped import Grouped  # noqa: E402  (grouped.py and winograd.py build on this module's helpers)
from .winograd import Winograd, WinogradTiles  # noqa: E402
ALGORITHMS = {a.name: a for a in (Gemm1x1(), Im2colGemm(), ImplicitGemm(), Winograd(), WinogradTiles(4, 3),
                                  WinogradTiles(2, 5), Depthwise(), Grouped())}
