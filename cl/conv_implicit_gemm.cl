// Implicit-GEMM convolution: a local-memory tiled GEMM whose tile loads do
// the im2col (or its transpose) on the fly, so no column buffer exists.
// One source, three problems chosen by -DMODE:
//   MODE 0 forward      out y [n,k,p,q]  M=Kg  cols=N*P*Q  red=Cg*R*S
//   MODE 1 grad input   out x [n,c,h,w]  M=Cg  cols=N*H*W  red=Kg*R*S
//   MODE 2 grad weight  out w [k,c,r,s]  M=Kg  cols=Cg*R*S red=N*P*Q
// Groups are the third grid dimension. Every tensor is addressed by its four
// strides. MODE 0 has a fused bias (runtime flag) + activation (-DACT, a code
// of activation.cl).
// Tiling: a work-group computes TSM x TSN outputs walking the reduction in
// steps of TSK; (TSN/WPTN) x (TSM/WPTM) work-items each own WPTM x WPTN
// outputs, strided across the tile so local-memory reads do not conflict.

#ifndef MODE
#define MODE 0
#endif
#ifndef ACT
#define ACT 0
#endif
#ifndef TSM
#define TSM 64
#endif
#ifndef TSN
#define TSN 64
#endif
#ifndef TSK
#define TSK 16
#endif
#ifndef WPTM
#define WPTM 4
#endif
#ifndef WPTN
#define WPTN 4
#endif
#define RTSM (TSM / WPTM)
#define RTSN (TSN / WPTN)
#define NTHREADS (RTSM * RTSN)

typedef struct {
    int N, C, H, W, K, R, S, P, Q, G, sh, sw, ph, pw, dh, dw;
} geom_t;

// x (conv input) value at image n, channel c, output position (p,q), tap (r,s)
inline float load_x(__global const float* x, int x_off, int4 sx, const geom_t* g,
                    int n, int c, int p, int q, int r, int s)
{
    const int h = p * g->sh - g->ph + r * g->dh, w = q * g->sw - g->pw + s * g->dw;
    if (h < 0 || h >= g->H || w < 0 || w >= g->W) return 0.0f;
    return x[x_off + n * sx.x + c * sx.y + h * sx.z + w * sx.w];
}

#if MODE == 0
#define MDIM(g) ((g).K / (g).G)
#define NDIM(g) ((g).N * (g).P * (g).Q)
#define KDIM(g) ((g).C / (g).G * (g).R * (g).S)
#elif MODE == 1
#define MDIM(g) ((g).C / (g).G)
#define NDIM(g) ((g).N * (g).H * (g).W)
#define KDIM(g) ((g).K / (g).G * (g).R * (g).S)
#else
#define MDIM(g) ((g).K / (g).G)
#define NDIM(g) ((g).C / (g).G * (g).R * (g).S)
#define KDIM(g) ((g).N * (g).P * (g).Q)
#endif

__kernel __attribute__((reqd_work_group_size(RTSN, RTSM, 1)))
void conv_igemm(__global float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                __global float* w, int w_off, int swk, int swc, int swr, int sws,
                __global float* y, int y_off, int syn, int syc, int syh, int syw,
                __global const float* bias, int b_off, int has_bias,
                int N, int C, int H, int W, int K, int R, int S, int P, int Q, int G,
                int sh, int sw, int ph, int pw, int dh, int dw)
{
    const geom_t g = {N, C, H, W, K, R, S, P, Q, G, sh, sw, ph, pw, dh, dw};
    const int4 sx = (int4)(sxn, sxc, sxh, sxw);
    const int4 swt = (int4)(swk, swc, swr, sws);
    const int4 sy = (int4)(syn, syc, syh, syw);
    const int Md = MDIM(g), Nd = NDIM(g), Kd = KDIM(g);
    const int Cg = C / G, Kg = K / G, RS = R * S, PQ = P * Q, HW = H * W;
    const int grp = get_group_id(2);
    const int tx = get_local_id(0), ty = get_local_id(1), tid = ty * RTSN + tx;
    const int m0 = get_group_id(1) * TSM, j0 = get_group_id(0) * TSN;

    __local float As[TSK][TSM];
    __local float Bs[TSK][TSN];
    float acc[WPTM][WPTN];
    for (int a = 0; a < WPTM; ++a)
        for (int b = 0; b < WPTN; ++b) acc[a][b] = 0.0f;

    for (int k0 = 0; k0 < Kd; k0 += TSK) {
        for (int i = tid; i < TSK * TSM; i += NTHREADS) {
            const int kk = i / TSM, mm = i - kk * TSM;
            const int m = m0 + mm, k = k0 + kk;
            float v = 0.0f;
            if (m < Md && k < Kd) {
#if MODE == 0      // A = W[g*Kg+m][c][r][s], k = (c,r,s)
                const int c = k / RS, rs = k - c * RS, r = rs / S, s = rs - r * S;
                v = w[w_off + (grp * Kg + m) * swt.x + c * swt.y + r * swt.z + s * swt.w];
#elif MODE == 1    // A = W[g*Kg+kk][m][r][s], k = (kk,r,s)
                const int kc = k / RS, rs = k - kc * RS, r = rs / S, s = rs - r * S;
                v = w[w_off + (grp * Kg + kc) * swt.x + m * swt.y + r * swt.z + s * swt.w];
#else              // A = dY[n][g*Kg+m][p][q], k = (n,p,q)
                const int n = k / PQ, pq = k - n * PQ, p = pq / Q, q = pq - p * Q;
                v = y[y_off + n * sy.x + (grp * Kg + m) * sy.y + p * sy.z + q * sy.w];
#endif
            }
            As[kk][mm] = v;
        }
        for (int i = tid; i < TSK * TSN; i += NTHREADS) {
            const int kk = i / TSN, jj = i - kk * TSN;
            const int j = j0 + jj, k = k0 + kk;
            float v = 0.0f;
            if (j < Nd && k < Kd) {
#if MODE == 0      // B = im2col(x), k = (c,r,s), j = (n,p,q)
                const int c = k / RS, rs = k - c * RS, r = rs / S, s = rs - r * S;
                const int n = j / PQ, pq = j - n * PQ, p = pq / Q, q = pq - p * Q;
                v = load_x(x, x_off, sx, &g, n, grp * Cg + c, p, q, r, s);
#elif MODE == 1    // B = transposed im2col of dY, k = (kk,r,s), j = (n,h,w)
                const int kc = k / RS, rs = k - kc * RS, r = rs / S, s = rs - r * S;
                const int n = j / HW, hw = j - n * HW, h = hw / W, ww = hw - h * W;
                const int hp = h + ph - r * dh, wq = ww + pw - s * dw;
                if (hp >= 0 && wq >= 0 && hp % sh == 0 && wq % sw == 0) {
                    const int p = hp / sh, q = wq / sw;
                    if (p < P && q < Q)
                        v = y[y_off + n * sy.x + (grp * Kg + kc) * sy.y + p * sy.z + q * sy.w];
                }
#else              // B = im2col(x)^T, k = (n,p,q), j = (c,r,s)
                const int n = k / PQ, pq = k - n * PQ, p = pq / Q, q = pq - p * Q;
                const int c = j / RS, rs = j - c * RS, r = rs / S, s = rs - r * S;
                v = load_x(x, x_off, sx, &g, n, grp * Cg + c, p, q, r, s);
#endif
            }
            Bs[kk][jj] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TSK; ++kk) {
            float a[WPTM], b[WPTN];
            for (int wm = 0; wm < WPTM; ++wm) a[wm] = As[kk][ty + wm * RTSM];
            for (int wn = 0; wn < WPTN; ++wn) b[wn] = Bs[kk][tx + wn * RTSN];
            for (int wm = 0; wm < WPTM; ++wm)
                for (int wn = 0; wn < WPTN; ++wn) acc[wm][wn] = fma(a[wm], b[wn], acc[wm][wn]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int wm = 0; wm < WPTM; ++wm) {
        const int m = m0 + ty + wm * RTSM;
        if (m >= Md) continue;
        for (int wn = 0; wn < WPTN; ++wn) {
            const int j = j0 + tx + wn * RTSN;
            if (j >= Nd) continue;
            float v = acc[wm][wn];
#if MODE == 0
            const int n = j / PQ, pq = j - n * PQ, p = pq / Q, q = pq - p * Q;
            const int k = grp * Kg + m;
            if (has_bias) v += bias[b_off + k];
            v = activation(v, ACT);
            y[y_off + n * sy.x + k * sy.y + p * sy.z + q * sy.w] = v;
#elif MODE == 1
            const int n = j / HW, hw = j - n * HW, h = hw / W, ww = hw - h * W;
            x[x_off + n * sx.x + (grp * Cg + m) * sx.y + h * sx.z + ww * sx.w] = v;
#else
            const int c = j / RS, rs = j - c * RS, r = rs / S, s = rs - r * S;
            w[w_off + (grp * Kg + m) * swt.x + c * swt.y + r * swt.z + s * swt.w] = v;
#endif
        }
    }
}
