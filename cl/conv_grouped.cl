// Grouped convolution for narrow groups (groups > 1, Cg and Kg <= 32, not
// depthwise); tensors addressed by their strides. One launch per pass for all
// groups.
//
//   gc_forward       a work-group (one group, LN images) stages, per chunk of
//                    CC input channels, the group's filter [c][r][s][k] and
//                    each image's zero-padded input tile in local memory;
//                    each work-item owns VP output rows of one column for NF
//                    output channels (the filter block kb of the group), so
//                    every staged input value read feeds NF * VP accumulators;
//   gc_grad_input    the gather form: the filter as [k][r][s][c] and dy tiles
//                    per chunk of KC output channels; each work-item owns
//                    GI_NT x GI_NB dx positions (whole stride phases with
//                    compile-time geometry, as in conv_depthwise.cl) for NI
//                    input channels; no atomics, no scratch;
//   gc_grad_weight_part  stage 1 of dw: a work-group per (block of images x
//                    output rows, group, chunk of filter rows k, input
//                    channels c and taps) stages x and dy tiles and its
//                    work-items each accumulate WK filter rows x one channel
//                    x all taps (compile-time geometry, VQ positions along q
//                    at a time so x values are reused across taps) or one tap
//                    (runtime geometry) over a share of the positions; the
//                    shares are summed in a fixed order into
//                    part[block][k][c][r][s].
// Stage 2 (the blocks summed in order into dw) is the GEMM core's split-K
// reduction (oclcore.gemm.planner.sum_slices).
// Each pass is its own program, selected by its define: NF (output channels
// per work-item, forward), NI (input channels per work-item, data gradient)
// or WK (filter rows per work-item, filter gradient); PoCL generates code for
// every kernel of a program, and the unrolled kernels are slow to generate.
// Compile-time or runtime geometry (KR, ...) as in conv_geometry.cl. Problems
// whose tiles do not fit in local memory take cl/conv_direct.cl. Launch
// geometry: oclcore/conv/grouped.py.

#define VP 4          // output rows per work-item of gc_forward (_VP)

#ifdef KR
#define GI_NT (KSH * (KSH * KSW >= VP ? 1 : VP / (KSH * KSW)))
#define GI_NB KSW
#define VQ 4          // positions along q per work-item step in gc_grad_weight_part (_VQ)
#else
#define GI_NT VP
#define GI_NB 1
#define VQ 1
#endif

// The staging loops walk their elements cnt work-items at a time with
// mixed-radix counters (an increment and a carry per digit), not divisions.

// t[c * cp + i * cols + j] = src[c * sc + (h0 + i) * srow + (w0 + j) * scol] for
// c < live and (h0 + i, w0 + j) inside [0, H) x [0, W), else 0, for c < nc,
// i < rows, j < cols; shared by cnt work-items (this one is id). Consecutive
// work-items take consecutive elements along the smaller of the channel and
// column strides, so NCHW and NHWC tensors both load coalesced.
inline void gc_stage(__local float* t, int nc, int live, int cp, int rows, int cols,
                     __global const float* src, int sc, int srow, int scol,
                     int h0, int w0, int H, int W, int id, int cnt)
{
    const int cfirst = nc > 1 && sc < scol;   // digits (i, j, c), else (c, i, j)
    const int n0 = cfirst ? rows : nc, n1 = cfirst ? cols : rows, n2 = cfirst ? nc : cols;
    int d2 = id % n2, d1 = id / n2 % n1, d0 = id / (n1 * n2);
    const int s2 = cnt % n2, s1 = cnt / n2 % n1, s0 = cnt / (n1 * n2);
    while (d0 < n0) {
        const int c = cfirst ? d2 : d0, i = cfirst ? d0 : d1, j = cfirst ? d1 : d2;
        const int h = h0 + i, w = w0 + j;
        t[c * cp + i * cols + j] = c < live && h >= 0 && h < H && w >= 0 && w < W ? src[c * sc + h * srow + w * scol] : 0.0f;
        d2 += s2;
        if (d2 >= n2) {
            d2 -= n2;
            ++d1;
        }
        d1 += s1;
        if (d1 >= n1) {
            d1 -= n1;
            ++d0;
        }
        d0 += s0;
    }
}

// wl[((a * R + r) * S + s) * nb + b] = w[a * sa + b * sb + r * swr + s * sws] for
// b < live, else 0, for a < na, b < nb: a filter slice with the accumulated
// channel b fastest (digits (b, a, r, s), s fastest, as dense filters lie).
inline void gc_stage_filter(__local float* wl, int na, int nb, int live, __global const float* w,
                            int sa, int sb, int swr, int sws, int R, int S, int id, int cnt)
{
    int s = id % S, r = id / S % R, a = id / (R * S) % na, b = id / (R * S * na);
    const int ds = cnt % S, dr = cnt / S % R, da = cnt / (R * S) % na, db = cnt / (R * S * na);
    while (b < nb) {
        wl[((a * R + r) * S + s) * nb + b] = b < live ? w[a * sa + b * sb + r * swr + s * sws] : 0.0f;
        s += ds;
        if (s >= S) {
            s -= S;
            ++r;
        }
        r += dr;
        if (r >= R) {
            r -= R;
            ++a;
        }
        a += da;
        if (a >= na) {
            a -= na;
            ++b;
        }
        b += db;
    }
}

// The group gi and first image n0 of a forward / data-gradient work-group,
// whose LN images share the group's filter slice, over tiles_q column tiles.
inline void gc_images(int N, int LN, int tiles_q, int* gi, int* n0)
{
    const int blocks = (N + LN - 1) / LN, pg = get_group_id(0) / tiles_q;
    *gi = pg / blocks;
    *n0 = (pg - *gi * blocks) * LN;
}

// ---- forward (built with -DNF) ----------------------------------------------

#ifdef NF

// Global (tiles_q * G * ceil(N / LN) * LX, tiles_p * LY, LN * KBLK), local
// (LX, LY, LN * KBLK): group (gx, gy) covers output rows [gy * LY * VP, +LY * VP)
// and columns [(gx % tiles_q) * LX, +LX) of LN images of one group (gc_images);
// work-item (lx, ly, lz) owns rows ly * VP + v of column lx of image
// n0 + lz / KBLK for the output channels [(lz % KBLK) * NF, +NF) of the group.
// Local memory: the group's filter slice [CC][R*S][KBLK * NF] for a chunk of
// CC input channels, then per image those channels' TH x TW input tiles.
__kernel void gc_forward(__global const float* restrict x, int x_off, int sxn, int sxc, int sxh, int sxw,
                         __global const float* restrict w, int w_off, int swk, int swc, int swr, int sws,
                         __global float* restrict y, int y_off, int syn, int syc, int syh, int syw,
                         __global const float* restrict bias, int b_off, int has_bias, int act,
                         int N, int G, int Cg, int Kg, GEOM, int CC, int KBLK, int tiles_q, int TH, int TW,
                         __local float* lm)
{
    const int lx = get_local_id(0), ly = get_local_id(1), lz = get_local_id(2);
    const int LX = get_local_size(0), LY = get_local_size(1), LN = get_local_size(2) / KBLK;
    const int pl = lz / KBLK, kb = lz - pl * KBLK, KP = KBLK * NF, RS = R_ * S_, TP = TH * TW;
    int gi, n0;
    gc_images(N, LN, tiles_q, &gi, &n0);
    const int n = n0 + pl, live = n < N;
    const int p0 = get_group_id(1) * LY * VP, q0 = get_group_id(0) % tiles_q * LX;
    const int id = (lz * LY + ly) * LX + lx, cnt = LX * LY * LN * KBLK;
    __local float* wl = lm;
    __local float* tiles = lm + CC * RS * KP;
    __local const float* t = tiles + pl * CC * TP;
    __global const float* xs = x + x_off + gi * Cg * sxc;
    __global const float* ws = w + w_off + gi * Kg * swk;

    float acc[NF][VP];
#pragma unroll
    for (int k = 0; k < NF; ++k) {
        const int kk = kb * NF + k;
        const float b0 = has_bias && live && kk < Kg ? bias[b_off + gi * Kg + kk] : 0.0f;
#pragma unroll
        for (int v = 0; v < VP; ++v)
            acc[k][v] = b0;
    }
    for (int c0 = 0; c0 < Cg; c0 += CC) {
        const int cc = min(CC, Cg - c0);
        gc_stage_filter(wl, cc, KP, Kg, ws + c0 * swc, swc, swk, swr, sws, R_, S_, id, cnt);
        for (int j = 0; j < LN; ++j)
            gc_stage(tiles + j * CC * TP, cc, n0 + j < N ? cc : 0, TP, TH, TW, xs + min(n0 + j, N - 1) * sxn + c0 * sxc,
                     sxc, sxh, sxw, p0 * SH_ - ph, q0 * SW_ - pw, H, W, id, cnt);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int c = 0; c < cc; ++c) {
            __local const float* tb = t + c * TP + ly * VP * SH_ * TW + lx * SW_;
            __local const float* wb = wl + c * RS * KP + kb * NF;
            UNROLL
            for (int r = 0; r < R_; ++r)
                UNROLL
                for (int s = 0; s < S_; ++s) {
                    float xv[VP];
#pragma unroll
                    for (int v = 0; v < VP; ++v)
                        xv[v] = tb[(v * SH_ + r * DH_) * TW + s * DW_];
                    __local const float* wk = wb + (r * S_ + s) * KP;
#pragma unroll
                    for (int k = 0; k < NF; ++k) {
                        const float wv = wk[k];
#pragma unroll
                        for (int v = 0; v < VP; ++v)
                            acc[k][v] = fma(xv[v], wv, acc[k][v]);
                    }
                }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const int q = q0 + lx;
    if (!live || q >= Q)
        return;
    __global float* yo = y + y_off + n * syn + (gi * Kg + kb * NF) * syc + q * syw;
#pragma unroll
    for (int k = 0; k < NF; ++k)
#pragma unroll
        for (int v = 0; v < VP; ++v) {
            const int p = p0 + ly * VP + v;
            if (kb * NF + k < Kg && p < P)
                yo[k * syc + p * syh] = activation(acc[k][v], act);
        }
}

#endif  // NF

// ---- data gradient (built with -DNI) ----------------------------------------

#ifdef NI

// dx[c][h][w] = sum over the group's k and taps (r, s) with h + ph - r*dh = p*sh
// and w + pw - s*dw = q*sw of dy[k][p][q] * w[k][c][r][s].
// Global (tiles_q * G * ceil(N / LN) * LX, tiles_p * LY, LN * CBLK), local
// (LX, LY, LN * CBLK). In shifted coordinates h' = h + ph, w' = w + pw, group
// (gx, gy) covers h' in [hs + gy*LY*GI_NT, +LY*GI_NT), w' in
// [ws + (gx % tiles_q)*LX*GI_NB, +LX*GI_NB) (hs <= ph, ws <= pw multiples of
// the strides) of LN images of one group (gc_images), work-item (lx, ly, lz)
// of image n0 + lz / CBLK for the input channels [(lz % CBLK) * NI, +NI); the
// dy tiles (TH x TW, KC channels at a time) start at the first dy row/column
// any of them reads. Local memory: the filter slice [KC][R*S][CBLK * NI], then
// per image the KC dy tiles.
__kernel void gc_grad_input(__global const float* restrict dy, int y_off, int syn, int syc, int syh, int syw,
                            __global const float* restrict w, int w_off, int swk, int swc, int swr, int sws,
                            __global float* restrict dx, int x_off, int sxn, int sxc, int sxh, int sxw,
                            int N, int G, int Cg, int Kg, GEOM, int hs, int ws, int KC, int CBLK,
                            int tiles_q, int TH, int TW, __local float* lm)
{
    const int lx = get_local_id(0), ly = get_local_id(1), lz = get_local_id(2);
    const int LX = get_local_size(0), LY = get_local_size(1), LN = get_local_size(2) / CBLK;
    const int pl = lz / CBLK, cb = lz - pl * CBLK, CP = CBLK * NI, RS = R_ * S_, TP = TH * TW;
    int gi, n0;
    gc_images(N, LN, tiles_q, &gi, &n0);
    const int n = n0 + pl, live = n < N;
    const int hg = hs + get_group_id(1) * LY * GI_NT, wg = ws + get_group_id(0) % tiles_q * LX * GI_NB;
    const int pt = floor_div(hg - (R_ - 1) * DH_, SH_), qt = floor_div(wg - (S_ - 1) * DW_, SW_);
    const int hb = hg + ly * GI_NT, wb = wg + lx * GI_NB;
#ifdef KR
    const int hm = 0, wm = 0;   // hb, wb are multiples of the strides
#else
    const int hm = hb % sh, wm = wb % sw;
#endif
    // tile row/column of the dy element at h' = hb - hm, w' = wb - wm
    const int pb = (hb - hm) / SH_ - pt, qb = (wb - wm) / SW_ - qt;
    const int id = (lz * LY + ly) * LX + lx, cnt = LX * LY * LN * CBLK;
    __local float* wl = lm;
    __local float* tiles = lm + KC * RS * CP;
    __local const float* t = tiles + pl * KC * TP;
    __global const float* ys = dy + y_off + gi * Kg * syc;
    __global const float* wsrc = w + w_off + gi * Kg * swk;

    float acc[NI][GI_NT * GI_NB];
#pragma unroll
    for (int c = 0; c < NI; ++c)
#pragma unroll
        for (int i = 0; i < GI_NT * GI_NB; ++i)
            acc[c][i] = 0.0f;
    for (int k0 = 0; k0 < Kg; k0 += KC) {
        const int kc = min(KC, Kg - k0);
        gc_stage_filter(wl, kc, CP, Cg, wsrc + k0 * swk, swk, swc, swr, sws, R_, S_, id, cnt);
        for (int j = 0; j < LN; ++j)
            gc_stage(tiles + j * KC * TP, kc, n0 + j < N ? kc : 0, TP, TH, TW, ys + min(n0 + j, N - 1) * syn + k0 * syc,
                     syc, syh, syw, pt, qt, P, Q, id, cnt);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < kc; ++k) {
            __local const float* tk = t + k * TP;
            __local const float* wk = wl + k * RS * CP + cb * NI;
            UNROLL
            for (int r = 0; r < R_; ++r)
                UNROLL
                for (int s = 0; s < S_; ++s) {
                    float wv[NI];
#pragma unroll
                    for (int c = 0; c < NI; ++c)
                        wv[c] = wk[(r * S_ + s) * CP + c];
#pragma unroll
                    for (int i = 0; i < GI_NT; ++i) {
                        const int a = hm + i - r * DH_;
                        if (a % SH_ == 0) {
#pragma unroll
                            for (int j = 0; j < GI_NB; ++j) {
                                const int e = wm + j - s * DW_;
                                if (e % SW_ == 0) {
                                    const float d = tk[(pb + a / SH_) * TW + qb + e / SW_];
#pragma unroll
                                    for (int c = 0; c < NI; ++c)
                                        acc[c][i * GI_NB + j] = fma(d, wv[c], acc[c][i * GI_NB + j]);
                                }
                            }
                        }
                    }
                }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (!live)
        return;
    __global float* xo = dx + x_off + n * sxn + (gi * Cg + cb * NI) * sxc;
#pragma unroll
    for (int c = 0; c < NI; ++c)
#pragma unroll
        for (int i = 0; i < GI_NT; ++i) {
            const int h = hb + i - ph;
#pragma unroll
            for (int j = 0; j < GI_NB; ++j) {
                const int ww = wb + j - pw;
                if (cb * NI + c < Cg && h >= 0 && h < H && ww >= 0 && ww < W)
                    xo[c * sxc + h * sxh + ww * sxw] = acc[c][i * GI_NB + j];
            }
        }
}

#endif  // NI

// ---- filter gradient (built with -DWK) --------------------------------------

#ifdef WK

#ifdef KR
#define TAPS (KR * KS)   // taps accumulated per work-item of gc_grad_weight_part
#else
#define TAPS 1
#endif

// Stage 1 of dw. Global (units * blocks * LS), local (LS); work-group
// g = blk * units + unit, unit = ((gi * KCN + kcn) * CCN + ccn) * TCN + tcn: filter
// rows k in [kcn * KCH, +KCH) of group gi, channels c in [ccn * CCH, +CCH), taps
// [tcn * TCH, +TCH). Block blk covers images [(blk / BP) * NIMG, +NIMG) and
// output rows [(blk % BP) * PB, +PB) of each, staged PR rows x TQ columns (TQ a
// multiple of VQ) of one image at a time: the x tile CCH x XR x XC (channel
// pitch XP) then the dy tile KCHP x PR x TQ (KCHP = KCH rounded up to WK,
// channel pitch DP). Work-item lid = split * OWN + owner, owner = (kw * CCH + c)
// * TO + to (TO = 1 with compile-time geometry, else TCH): filter rows
// kw*WK .. +WK of the chunk, channel c, all taps (or tap to), over the
// positions split, split + SPLITS, ... of each staged tile. The SPLITS partial
// sums are then added in split order through local memory (reused) and
// written to part[blk][gi*Kg + k][c][r*S + s].
__kernel void gc_grad_weight_part(__global const float* restrict dy, int y_off, int syn, int syc, int syh, int syw,
                                  __global const float* restrict x, int x_off, int sxn, int sxc, int sxh, int sxw,
                                  __global float* restrict part, int part_off, int N, int G, int Cg, int Kg, GEOM,
                                  int KCH, int KCN, int CCH, int CCN, int TCH, int TCN, int NIMG, int PB, int BP,
                                  int PR, int TQ, int XR, int XC, int XP, int DP, int SPLITS, __local float* lm)
{
    const int lid = get_local_id(0), LS = get_local_size(0), RS = R_ * S_;
#ifdef KR
    const int TO = 1;
#else
    const int TO = TCH;
#endif
    const int OWN = (KCH + WK - 1) / WK * CCH * TO;
    const int split = lid / OWN, owner = lid - split * OWN;
    const int to = owner % TO, kw = owner / TO / CCH, c = owner / TO - kw * CCH;
    const int units = G * KCN * CCN * TCN, grp = get_group_id(0);
    const int blk = grp / units, unit = grp - blk * units;
    const int tcn = unit % TCN, ccn = unit / TCN % CCN, kcn = unit / (TCN * CCN) % KCN, gi = unit / (TCN * CCN * KCN);
    const int k0 = kcn * KCH, c0 = ccn * CCH, tap0 = tcn * TCH;
    const int kl = min(KCH, Kg - k0), cl = min(CCH, Cg - c0);
    const int n0 = blk / BP * NIMG, p0 = (blk - blk / BP * BP) * PB;
    const int ni = min(NIMG, N - n0), np = min(PB, P - p0);
    __local float* xt = lm;
    __local float* dyt = lm + CCH * XP;
    __global const float* xs = x + x_off + (gi * Cg + c0) * sxc;
    __global const float* ys = dy + y_off + (gi * Kg + k0) * syc;
#ifndef KR
    const int tap = min(tap0 + to, RS - 1), r = tap / S, s = tap - r * S;
#endif

    float acc[WK * TAPS];
#pragma unroll
    for (int a = 0; a < WK * TAPS; ++a)
        acc[a] = 0.0f;
    for (int img = 0; img < ni; ++img)
        for (int pr0 = 0; pr0 < np; pr0 += PR) {
            const int npr = min(PR, np - pr0), p = p0 + pr0;
            for (int qc = 0; qc < Q; qc += TQ) {
                const int nq = min(TQ, Q - qc);
                gc_stage(xt, CCH, cl, XP, XR, XC, xs + (n0 + img) * sxn, sxc, sxh, sxw,
                         p * sh - ph, qc * sw - pw, H, W, lid, LS);
                gc_stage(dyt, (KCH + WK - 1) / WK * WK, kl, DP, PR, TQ, ys + (n0 + img) * syn + p * syh + qc * syw,
                         syc, syh, syw, 0, 0, npr, nq, lid, LS);
                barrier(CLK_LOCAL_MEM_FENCE);
                const int nqg = (nq + VQ - 1) / VQ;
                for (int u = split; u < npr * nqg; u += SPLITS) {
                    const int pp = u / nqg, q = (u - pp * nqg) * VQ;
                    __local const float* xb = xt + c * XP + pp * SH_ * XC + q * SW_;
                    __local const float* db = dyt + kw * WK * DP + pp * TQ + q;
#ifdef KR
                    float d[WK][VQ];
#pragma unroll
                    for (int kk = 0; kk < WK; ++kk)
#pragma unroll
                        for (int v = 0; v < VQ; ++v)
                            d[kk][v] = db[kk * DP + v];
#pragma unroll
                    for (int rr = 0; rr < KR; ++rr) {
                        float xr[(VQ - 1) * KSW + (KS - 1) * KDW + 1];
#pragma unroll
                        for (int j = 0; j < (VQ - 1) * KSW + (KS - 1) * KDW + 1; ++j)
                            xr[j] = xb[rr * KDH * XC + j];
#pragma unroll
                        for (int ss = 0; ss < KS; ++ss)
#pragma unroll
                            for (int kk = 0; kk < WK; ++kk)
#pragma unroll
                                for (int v = 0; v < VQ; ++v)
                                    acc[(kk * KR + rr) * KS + ss] = fma(d[kk][v], xr[v * KSW + ss * KDW],
                                                                        acc[(kk * KR + rr) * KS + ss]);
                    }
#else
                    const float xv = xb[r * dh * XC + s * dw];
#pragma unroll
                    for (int kk = 0; kk < WK; ++kk)
                        acc[kk] = fma(db[kk * DP], xv, acc[kk]);
#endif
                }
                barrier(CLK_LOCAL_MEM_FENCE);
            }
        }
    // The splits' partial sums, added in split order; then the stores, at kernel end.
    __local float* red = lm;
#pragma unroll
    for (int a = 0; a < WK * TAPS; ++a)
        red[a * LS + lid] = acc[a];
    barrier(CLK_LOCAL_MEM_FENCE);
    const int K = G * Kg;
    for (int o = lid; o < OWN * WK * TAPS; o += LS) {
        const int ow = o / (WK * TAPS), a = o - ow * (WK * TAPS);
        float sum = 0.0f;
        for (int sp = 0; sp < SPLITS; ++sp)
            sum += red[a * LS + sp * OWN + ow];
        const int oto = ow % TO, okw = ow / TO / CCH, oc = ow / TO - okw * CCH;
        const int kk = okw * WK + a / TAPS;
#ifdef KR
        const int otap = a - a / TAPS * TAPS;
#else
        const int otap = tap0 + oto;
#endif
        if (kk < kl && oc < cl && oto < TCH && otap < RS)
            part[part_off + ((blk * K + gi * Kg + k0 + kk) * Cg + c0 + oc) * RS + otap] = sum;
    }
}

#endif  // WK
