"""The "grouped" convolution algorithm: direct kernels (cl/conv_grouped.cl)
for grouped convolutions with narrow groups (groups > 1, at most 32 channels
per group on either side, not depthwise), such as regnet's and resnext's 3x3
layers, where GEMM tiles would be mostly empty and per-group GEMMs would
multiply launches. Every pass is one launch over all groups (the filter
gradient two: per-block partial filters, then their ordered sum)."""
from ..gemm.planner import sum_slices
from .algorithms import (_DIRECT_SIG_FWD, _DIRECT_SIG_GI, ACTIVATIONS, FORWARD, GRAD_INPUT, GRAD_WEIGHT, _F32,
                         Algorithm, _Flat, _bias_args, _cdiv, _d4, _dw_geo, direct_forward, direct_grad_input,
                         direct_grad_weight, is_contiguous)

_VP = 4                 # output rows per work-item of gc_forward (VP in conv_grouped.cl)
_VQ = 4                 # positions along q per step of gc_grad_weight_part, compile-time geometry (VQ)
_LOCAL = 32 << 10       # local-memory bytes per work-group: what every OpenCL device offers
_MAX_WG = 256           # work-items per work-group at most
_SPECIAL = ((1, 1), (3, 3), (5, 5), (7, 7))
_WG_TARGET = 2048       # stage-1 work-groups wanted for the filter gradient ...
_MAX_BLOCKS = 128       # ... with at most this many partial filters (stage 2 sums them serially)
_MIN_POSITIONS = 256    # ... and at least this many dy positions per block
_SIG_FWD, _SIG_GI = _DIRECT_SIG_FWD, _DIRECT_SIG_GI   # the tiled kernels start with the direct ones' arguments
_SIG_GW = "Biiiii" * 2 + "Bi" + "iiii" + "i" * 12


def _pow2(n):
    return 1 << max(0, n - 1).bit_length()


def _defines(g, define):
    """The program of one pass: its define (NF output channels per work-item
    forward, NI input channels for the data gradient, WK filter rows for the
    filter gradient) and, for the common kernel sizes with stride 1 or 2 and
    no dilation, compile-time geometry."""
    spec = (g.R, g.S) in _SPECIAL and g.sh == g.sw in (1, 2) and g.dh == g.dw == 1
    wk = 4 if not spec or g.R * g.S <= 9 else 1   # WK * R * S accumulators stay in registers
    d = {"NF": min(8, _pow2(g.Kg)), "NI": min(8, _pow2(g.Cg)), "WK": min(wk, _pow2(g.Kg))}
    out = {define: d[define]}
    if spec:
        out.update(KR=g.R, KS=g.S, KSH=g.sh, KSW=g.sw, KDH=1, KDW=1)
    return out


def _tile(images, groups, rows, cols, nt, nb, span_h, span_w, RS, red, blocks, nacc):
    """(LX, LY, LN, CC, TH, TW) of gc_forward / gc_grad_input over output
    planes of rows x cols whose work-items own nt x nb positions and nacc of
    a group's blocks * nacc accumulated channels, reducing over red channels
    in chunks of CC staged at a time: the group's filter slice once and a
    TH x TW tile per channel for each of the LN images of a work-group (so
    that it has at least 64 work-items). The least modelled cost
    (multiply-adds including the overhangs, staged elements, a fixed cost per
    chunk) that fits in local memory; None when no tile does."""
    best = None
    for lx in (8, 16, 32):
        for ly in (1, 2, 4, 8):
            items = lx * ly * blocks
            if items > _MAX_WG:
                continue
            th, tw = span_h(ly * nt), span_w(lx * nb)
            ln = max(1, min(64 // items, images))
            while ln > 1 and (ln * th * tw + RS * blocks * nacc) * _F32 > _LOCAL:
                ln -= 1
            per_ch = ln * th * tw + RS * blocks * nacc
            cc = min(red, _LOCAL // (per_ch * _F32))
            if cc == 0:
                continue
            cc = _cdiv(red, _cdiv(red, cc))   # even chunks
            wgs = _cdiv(rows, ly * nt) * _cdiv(cols, lx * nb) * groups * _cdiv(images, ln)
            cost = wgs * (ln * items * nt * nb * nacc * red * RS + 8 * red * per_ch + 64 * _cdiv(red, cc))
            if best is None or cost < best[0]:
                best = (cost, lx, ly, ln, cc, th, tw)
    return best and best[1:]


def _forward_plan(g):
    d = _defines(g, "NF")
    kblk = _cdiv(g.Kg, d["NF"])
    tile = _tile(g.N, g.groups, g.P, g.Q, _VP, 1, lambda n: (n - 1) * g.sh + (g.R - 1) * g.dh + 1,
                 lambda n: (n - 1) * g.sw + (g.S - 1) * g.dw + 1, g.R * g.S, g.Cg, kblk, d["NF"])
    return d, kblk, tile


def _grad_input_plan(g):
    """As gc_grad_input tiles dx in shifted coordinates h' = h + pt from
    hs, the largest multiple of the stride up to the padding (see
    Depthwise's data gradient): a tile of n rows reads n / stride dy rows plus
    the kernel's reach when n is a multiple of the stride (always with
    compile-time geometry, whose work-items own whole stride phases)."""
    d = _defines(g, "NI")
    cblk = _cdiv(g.Cg, d["NI"])
    nt, nb = (g.sh * max(1, _VP // (g.sh * g.sw)), g.sw) if "KR" in d else (_VP, 1)

    def span(n, stride, k, dil):
        if n % stride == 0:
            return n // stride + _cdiv((k - 1) * dil, stride)
        return (n - 1 + (k - 1) * dil) // stride + 2
    hs, ws = g.pt - g.pt % g.sh, g.pl - g.pl % g.sw
    tile = _tile(g.N, g.groups, g.H + g.pt - hs, g.W + g.pl - ws, nt, nb,
                 lambda n: span(n, g.sh, g.R, g.dh), lambda n: span(n, g.sw, g.S, g.dw),
                 g.R * g.S, g.Kg, cblk, d["NI"])
    return d, cblk, tile, nt, nb, hs, ws


def _grad_weight_plan(g):
    """Stage-1 geometry of the filter gradient, or None when it does not fit
    in local memory: chunks (KCH filter rows, CCH channels, TCH taps) of each
    group's filter small enough that one work-item per (WK rows, channel, all
    taps or one tap) fits in a work-group, SPLITS work-items sharing each
    one's positions; blocks of NIMG images x PB output rows (enough blocks
    for about _WG_TARGET work-groups, within _MAX_BLOCKS and _MIN_POSITIONS),
    staged PR rows x TQ columns at a time."""
    d = _defines(g, "WK")
    spec, WK, RS = "KR" in d, d["WK"], g.R * g.S
    taps, vq = (RS, _VQ) if spec else (1, 1)
    max_ls = min(_MAX_WG, _LOCAL // (WK * taps * _F32))
    kch, cch, tch = g.Kg, g.Cg, RS

    def owners():
        return _cdiv(kch, WK) * cch * (1 if spec else tch)
    while owners() > max_ls:
        kw = _cdiv(kch, WK)
        largest = max(kw, cch, 1 if spec else tch)
        if largest <= 1:
            return d, None
        if not spec and tch == largest:
            tch = _cdiv(tch, 2)
        elif cch == largest:
            cch = _cdiv(cch, 2)
        else:
            kch = _cdiv(kw, 2) * WK
    own = owners()
    if own == 0:
        return d, None
    splits = 1 << ((max_ls // own).bit_length() - 1)
    kcn, ccn, tcn = _cdiv(g.Kg, kch), _cdiv(g.Cg, cch), _cdiv(RS, tch)
    units = g.groups * kcn * ccn * tcn
    want = max(_cdiv(g.N * g.P * units, _WG_TARGET), _cdiv(_MIN_POSITIONS, g.Q),
               _cdiv(g.N * g.P, _MAX_BLOCKS))
    PB, NIMG = (g.P, max(1, min(g.N, want // g.P))) if want >= g.P else (want, 1)
    kchp, floats = _cdiv(kch, WK) * WK, _LOCAL // _F32
    TQ = _cdiv(min(g.Q, 64), vq) * vq
    while True:
        XC = (TQ - 1) * g.sw + (g.S - 1) * g.dw + 1
        fixed = cch * (((g.R - 1) * g.dh + 1 - g.sh) * XC + 1) + kchp   # the +1s: odd pitches
        PR = min(PB, (floats - fixed) // (cch * g.sh * XC + kchp * TQ))
        if PR >= 1:
            break
        if TQ <= vq:
            return d, None
        TQ = _cdiv(TQ // 2, vq) * vq
    PR = _cdiv(PB, _cdiv(PB, PR))   # even row chunks
    XR = (PR - 1) * g.sh + (g.R - 1) * g.dh + 1
    XP, DP = XR * XC | 1, PR * TQ | 1    # odd channel pitches spread the channels over banks
    ls = own * splits
    local = max(cch * XP + kchp * DP, ls * WK * taps) * _F32
    BP = _cdiv(g.P, PB)
    blocks = _cdiv(g.N, NIMG) * BP
    return d, dict(ls=ls, local=local, units=units, blocks=blocks,
                   args=(kch, kcn, cch, ccn, tch, tcn, NIMG, PB, BP, PR, TQ, XR, XC, XP, DP, splits))


class Grouped(Algorithm):
    """Direct grouped convolution, groups on the grid: the forward pass and
    the data gradient stage input (or dy) tiles and the group's filter in
    local memory, each work-item accumulating several positions for a block
    of a group's channels in registers (fused bias + activation forward); the
    filter gradient writes per-block partial filters that the GEMM core's
    sum_slices adds in block order (deterministic, no atomics). The per-element
    kernels of cl/conv_direct.cl when a tile does not fit in local memory."""
    name = "grouped"
    _plans = {}

    def supports(self, g, pass_=FORWARD):
        return g.groups > 1 and not g.is_depthwise and g.Cg <= 32 and g.Kg <= 32

    def _plan(self, g, pass_, make):
        key = (g, pass_, _LOCAL, _WG_TARGET, _MAX_BLOCKS, _MIN_POSITIONS)
        p = self._plans.get(key)
        if p is None:
            p = self._plans[key] = make(g)
        return p

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        d, kblk, tile = self._plan(g, FORWARD, _forward_plan)
        if tile is None:
            direct_forward(ctx, g, x, w, bias, y, act)
            return
        head = (_d4(x) + _d4(w) + _d4(y) + _bias_args(bias, y) + (ACTIVATIONS[act], g.N, g.groups, g.Cg, g.Kg)
                + _dw_geo(g))
        LX, LY, LN, CC, TH, TW = tile
        tq = _cdiv(g.Q, LX)
        local = CC * (LN * TH * TW + g.R * g.S * kblk * d["NF"]) * _F32
        ctx.kernel("conv_grouped.cl", "gc_forward", _SIG_FWD + "iiiiiZ", d).launch(
            (tq * g.groups * _cdiv(g.N, LN) * LX, _cdiv(g.P, LY * _VP) * LY, LN * kblk), (LX, LY, LN * kblk),
            head + (CC, kblk, tq, TH, TW, local))

    def grad_input(self, ctx, g, dy, w, dx):
        d, cblk, tile, nt, nb, hs, ws = self._plan(g, GRAD_INPUT, _grad_input_plan)
        if tile is None:
            direct_grad_input(ctx, g, dy, w, dx)
            return
        head = _d4(dy) + _d4(w) + _d4(dx) + (g.N, g.groups, g.Cg, g.Kg) + _dw_geo(g)
        LX, LY, LN, KC, TH, TW = tile
        tq = _cdiv(g.W + g.pl - ws, LX * nb)
        local = KC * (LN * TH * TW + g.R * g.S * cblk * d["NI"]) * _F32
        ctx.kernel("conv_grouped.cl", "gc_grad_input", _SIG_GI + "iiiiiiiZ", d).launch(
            (tq * g.groups * _cdiv(g.N, LN) * LX, _cdiv(g.H + g.pt - hs, LY * nt) * LY, LN * cblk),
            (LX, LY, LN * cblk), head + (hs, ws, KC, cblk, tq, TH, TW, local))

    def grad_weight(self, ctx, g, dy, x, dw):
        d, plan = self._plan(g, GRAD_WEIGHT, _grad_weight_plan)
        if plan is None:
            direct_grad_weight(ctx, g, dy, x, dw)
            return
        tail = (g.N, g.groups, g.Cg, g.Kg) + _dw_geo(g)
        CgRS, blocks = g.Cg * g.R * g.S, plan["blocks"]
        part = ctx.temp(blocks * g.K * CgRS)
        ctx.kernel("conv_grouped.cl", "gc_grad_weight_part", _SIG_GW + "i" * 16 + "Z", d).launch(
            (plan["units"] * blocks * plan["ls"],), (plan["ls"],),
            _d4(dy) + _d4(x) + (part, 0) + tail + plan["args"] + (plan["local"],))
        # Stage 2: the blocks' partials (part[blk][k][c*R*S + rs]) summed in block order.
        with _Flat(ctx, dw, True, need=is_contiguous) as dwv:
            sum_slices(ctx.get_kernel, None, part, blocks, CgRS, g.K, dwv.buf, dwv.offset, 1, CgRS)
        ctx.release(part)
