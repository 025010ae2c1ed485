// Depthwise convolution: groups == C, K = C * mult; tensors addressed by their strides.
//
// Tiled kernels: a work-group stages the input tile of one (n, channel) plane
// (zero-padded, loaded along the contiguous W axis) and that plane's weights
// in local memory, so the inner loops have no bounds checks, and each
// work-item accumulates several outputs in registers:
//   dw_forward       y = act(conv + bias); VP output rows per work-item;
//   dw_grad_input    dx as a gather over dy; with compile-time geometry a
//                    work-item owns VP*KSH rows x KSW columns of dx, whole
//                    stride phases, so which taps hit which of its outputs
//                    is known at compile time (else VP rows x 1 column);
//   dw_grad_weight_part  stage 1 of dw: one work-group per (k, block of
//                    images x rows) accumulates all R*S partials at once (each
//                    dy element read once, x from the local tile) and reduces
//                    them in a fixed order into part[block][k][R*S];
// Stage 2 (the blocks' partials summed in order into dw) is the GEMM core's
// split-K reduction (oclcore.gemm.planner.sum_slices).
// Compile-time or runtime geometry (KR, ...) as in conv_geometry.cl.
// Tiles that do not fit in local memory take cl/conv_direct.cl. Launch
// geometry: oclcore/conv/algorithms.py (Depthwise).

// VP (-D, _DW_VP): output rows per work-item of the tiled forward and data-gradient kernels
#define WG_PARTS 16   // first-level partial sums per tap in dw_grad_weight_part (_DW_PARTS)

#ifdef KR
#define NT (VP * KSH) // dx rows and columns per work-item of dw_grad_input
#define NB KSW
#else
#define NT VP
#define NB 1
#endif

// t[i][j] = src[(h0 + i) * srow + (w0 + j) * scol] for (h0 + i, w0 + j) inside
// [0, H) x [0, W), else 0, for a rows x cols tile; flat over the work-group
// so consecutive work-items load consecutive columns.
inline void stage_tile(__local float* t, int rows, int cols, __global const float* src,
                       int srow, int scol, int h0, int w0, int H, int W, int live)
{
    const int ls = get_local_size(0) * get_local_size(1);
    const int lid = get_local_id(1) * get_local_size(0) + get_local_id(0);
    const int di = ls / cols, dj = ls - di * cols;
    int i = lid / cols, j = lid - i * cols;
    while (i < rows) {
        const int h = h0 + i, w = w0 + j;
        t[i * cols + j] = live && h >= 0 && h < H && w >= 0 && w < W ? src[h * srow + w * scol] : 0.0f;
        i += di;
        j += dj;
        if (j >= cols) {
            j -= cols;
            ++i;
        }
    }
}

// Plane (n*K + k, or n*C + c) of this work-item in a launch whose dimension 0
// runs over tiles_q column tiles of each group of local_size(2) planes.
inline int dw_plane(int tiles_q)
{
    return get_group_id(0) / tiles_q * get_local_size(2) + get_local_id(2);
}

// First column (in tiles of get_local_size(0) * per) of this work-group.
inline int dw_tile_col(int tiles_q, int per)
{
    return get_group_id(0) % tiles_q * get_local_size(0) * per;
}

inline void stage_weights(__local float* wl, __global const float* w, int swr, int sws, int R, int S)
{
    const int ls = get_local_size(0) * get_local_size(1);
    for (int i = get_local_id(1) * get_local_size(0) + get_local_id(0); i < R * S; i += ls) {
        const int r = i / S;
        wl[i] = w[r * swr + (i - r * S) * sws];
    }
}

// Global (tiles_q * planes_groups * LX, tiles_p * LY, LZ), local (LX, LY, LZ):
// group (gx, gy) covers outputs [gy*LY*VP, +LY*VP) x [(gx % tiles_q)*LX, +LX)
// of planes (gx / tiles_q) * LZ + lz; the input tile is TH x TW per plane.
__kernel void dw_forward(__global const float* restrict x, int x_off, int sxn, int sxc, int sxh, int sxw,
                         __global const float* restrict w, int w_off, int swk, int swr, int sws,
                         __global float* restrict y, int y_off, int syn, int syc, int syh, int syw,
                         __global const float* restrict bias, int b_off, int has_bias, int act,
                         int NK, int K, int mult, GEOM, int tiles_q, int TH, int TW, __local float* lm)
{
    const int lx = get_local_id(0), ly = get_local_id(1), lz = get_local_id(2);
    const int plane = dw_plane(tiles_q), live = plane < NK;
    const int n = live ? plane / K : 0, k = live ? plane - n * K : 0, c = k / mult;
    const int p0 = get_group_id(1) * get_local_size(1) * VP, q0 = dw_tile_col(tiles_q, 1);
    __local float* wl = lm + lz * (R_ * S_ + TH * TW);
    __local float* t = wl + R_ * S_;
    stage_weights(wl, w + w_off + k * swk, swr, sws, R_, S_);
    stage_tile(t, TH, TW, x + x_off + n * sxn + c * sxc, sxh, sxw, p0 * SH_ - ph, q0 * SW_ - pw, H, W, live);
    barrier(CLK_LOCAL_MEM_FENCE);

    const float b0 = has_bias && live ? bias[b_off + k] : 0.0f;
    float acc[VP];
#pragma unroll
    for (int v = 0; v < VP; ++v)
        acc[v] = b0;
    __local const float* tb = t + ly * VP * SH_ * TW + lx * SW_;
    UNROLL
    for (int r = 0; r < R_; ++r)
        UNROLL
        for (int s = 0; s < S_; ++s) {
            const float wv = wl[r * S_ + s];
#pragma unroll
            for (int v = 0; v < VP; ++v)
                acc[v] = fma(tb[(v * SH_ + r * DH_) * TW + s * DW_], wv, acc[v]);
        }
    const int q = q0 + lx;
    if (!live || q >= Q)
        return;
    __global float* yo = y + y_off + n * syn + k * syc + q * syw;
#pragma unroll
    for (int v = 0; v < VP; ++v) {
        const int p = p0 + ly * VP + v;
        if (p < P)
            yo[p * syh] = activation(acc[v], act);
    }
}

// dx[h][w] = sum over m < mult, taps (r, s) with h + ph - r*dh = p*sh and
// w + pw - s*dw = q*sw of dy[c*mult + m][p][q] * w[c*mult + m][r][s].
// In shifted coordinates h' = h + ph, w' = w + pw, group (gx, gy) covers
// h' in [hs + gy*LY*NT, +LY*NT), w' in [ws + (gx % tiles_q)*LX*NB, +LX*NB)
// (hs <= ph, ws <= pw multiples of the strides); the dy tile (TH x TW per
// plane, one plane of the multiplier at a time) starts at the first dy
// row/column any of them reads.
__kernel void dw_grad_input(__global const float* restrict dy, int y_off, int syn, int syc, int syh, int syw,
                            __global const float* restrict w, int w_off, int swk, int swr, int sws,
                            __global float* restrict dx, int x_off, int sxn, int sxc, int sxh, int sxw,
                            int NC, int C, int mult, GEOM, int hs, int ws, int tiles_q, int TH, int TW,
                            __local float* lm)
{
    const int lx = get_local_id(0), ly = get_local_id(1), lz = get_local_id(2);
    const int plane = dw_plane(tiles_q), live = plane < NC;
    const int n = live ? plane / C : 0, c = live ? plane - n * C : 0;
    const int hg = hs + get_group_id(1) * get_local_size(1) * NT, wg = ws + dw_tile_col(tiles_q, NB);
    const int pt = floor_div(hg - (R_ - 1) * DH_, SH_), qt = floor_div(wg - (S_ - 1) * DW_, SW_);
    const int hb = hg + ly * NT, wb = wg + lx * NB;
#ifdef KR
    const int hm = 0, wm = 0;   // hb, wb are multiples of the strides
#else
    const int hm = hb % sh, wm = wb % sw;
#endif
    // tile row/column of the dy element at h' = hb - hm, w' = wb - wm
    const int pb = (hb - hm) / SH_ - pt, qb = (wb - wm) / SW_ - qt;
    __local float* wl = lm + lz * (R_ * S_ + TH * TW);
    __local float* t = wl + R_ * S_;
    float acc[NT * NB];
#pragma unroll
    for (int i = 0; i < NT * NB; ++i)
        acc[i] = 0.0f;
    for (int m = 0; m < mult; ++m) {
        const int k = c * mult + m;
        stage_weights(wl, w + w_off + k * swk, swr, sws, R_, S_);
        stage_tile(t, TH, TW, dy + y_off + n * syn + k * syc, syh, syw, pt, qt, P, Q, live);
        barrier(CLK_LOCAL_MEM_FENCE);
        UNROLL
        for (int r = 0; r < R_; ++r)
            UNROLL
            for (int s = 0; s < S_; ++s) {
                const float wv = wl[r * S_ + s];
#pragma unroll
                for (int i = 0; i < NT; ++i) {
                    const int a = hm + i - r * DH_;
                    if (a % SH_ == 0) {
#pragma unroll
                        for (int j = 0; j < NB; ++j) {
                            const int e = wm + j - s * DW_;
                            if (e % SW_ == 0)
                                acc[i * NB + j] = fma(t[(pb + a / SH_) * TW + qb + e / SW_], wv, acc[i * NB + j]);
                        }
                    }
                }
            }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (!live)
        return;
    __global float* xo = dx + x_off + n * sxn + c * sxc;
#pragma unroll
    for (int i = 0; i < NT; ++i) {
        const int h = hb + i - ph;
#pragma unroll
        for (int j = 0; j < NB; ++j) {
            const int ww = wb + j - pw;
            if (h >= 0 && h < H && ww >= 0 && ww < W)
                xo[h * sxh + ww * sxw] = acc[i * NB + j];
        }
    }
}

// Stage 1 of dw. Global (K * blocks * LX, LY), local (LX, LY); group g = blk*K + k.
// Block blk covers images [(blk / BP) * NI, +NI) and output rows
// [(blk % BP) * PB, +PB) of each; columns go in chunks of TQ, each staging an
// NI x XR x XC input tile. Local memory: the tile, then R*S x LS per-work-item
// partials, then R*S x WG_PARTS first-level sums.
__kernel void dw_grad_weight_part(__global const float* restrict dy, int y_off, int syn, int syc, int syh, int syw,
                                  __global const float* restrict x, int x_off, int sxn, int sxc, int sxh, int sxw,
                                  __global float* restrict part, int part_off, int N, int K, int mult, GEOM,
                                  int NI, int PB, int BP, int TQ, int XR, int XC, __local float* lm)
{
    const int lx = get_local_id(0), ly = get_local_id(1), LX = get_local_size(0), LY = get_local_size(1);
    const int lid = ly * LX + lx, ls = LX * LY, RS = R_ * S_;
    const int g = get_group_id(0), blk = g / K, k = g - blk * K, c = k / mult;
    const int n0 = (blk / BP) * NI, p0 = (blk - (blk / BP) * BP) * PB;
    const int ni = min(NI, N - n0), np = min(PB, P - p0);
    __local float* t = lm;
    __local float* red = lm + NI * XR * XC;
    __local float* red2 = red + RS * ls;
    __global const float* xc = x + x_off + c * sxc;
    __global const float* dyk = dy + y_off + k * syc;
#ifdef KR
    float acc[KR * KS];
#pragma unroll
    for (int i = 0; i < KR * KS; ++i)
        acc[i] = 0.0f;
#define ACC(i) acc[i]
#else
    for (int i = 0; i < RS; ++i)
        red[i * ls + lid] = 0.0f;
#define ACC(i) red[(i) * ls + lid]
#endif
    for (int qc = 0; qc < Q; qc += TQ) {
        const int nq = min(TQ, Q - qc);
        for (int img = 0; img < ni; ++img)
            stage_tile(t + img * XR * XC, XR, XC, xc + (n0 + img) * sxn, sxh, sxw,
                       p0 * SH_ - ph, qc * SW_ - pw, H, W, 1);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int v = ly; v < ni * np; v += LY) {
            const int img = v / np, pp = v - img * np;
            __global const float* dyr = dyk + (n0 + img) * syn + (p0 + pp) * syh + qc * syw;
            __local const float* tr = t + (img * XR + pp * SH_) * XC;
            for (int q = lx; q < nq; q += LX) {
                const float d = dyr[q * syw];
                __local const float* tq = tr + q * SW_;
                UNROLL
                for (int r = 0; r < R_; ++r)
                    UNROLL
                    for (int s = 0; s < S_; ++s)
                        ACC(r * S_ + s) = fma(d, tq[r * DH_ * XC + s * DW_], ACC(r * S_ + s));
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#ifdef KR
#pragma unroll
    for (int i = 0; i < KR * KS; ++i)
        red[i * ls + lid] = acc[i];
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
#undef ACC
    for (int i = lid; i < RS * WG_PARTS; i += ls) {
        const int tap = i / WG_PARTS, pi = i - tap * WG_PARTS;
        const int hi = (pi + 1) * ls / WG_PARTS;
        float sum = 0.0f;
        for (int j = pi * ls / WG_PARTS; j < hi; ++j)
            sum += red[tap * ls + j];
        red2[i] = sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = lid; i < RS; i += ls) {
        float sum = 0.0f;
        for (int j = 0; j < WG_PARTS; ++j)
            sum += red2[i * WG_PARTS + j];
        part[part_off + g * RS + i] = sum;
    }
}
