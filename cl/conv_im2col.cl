// im2col / col2im for NCHW convolutions. The input is addressed through its
// four strides (n, c, h, w), so NCHW, channels-last and other strided views
// are read and written in place. The column buffer has p*Q + q contiguous;
// im2col takes its image and row strides (scn, scc), so it can write
// col[n][c*R*S + r*S + s][p*Q + q] (the forward GEMMs, col2im's layout) or
// col[c*R*S + r*S + s][n][p*Q + q] (the filter gradient, whose reduction
// index n*P*Q + p*Q + q then has stride 1), for the images n0 .. n0+nb-1.
// col2im gathers (one work-item per input element, fixed summation order),
// so it is deterministic and needs no atomics. Both run one work-item per
// element over a flat range (see copy4d below for why).

// (n, c, h, w) of element i of a dense N x C x H x W range.
inline int4 nchw_of(int i, int C, int H, int W) {
  const int w = i % W, t = i / W, h = t % H, u = t / H;
  return (int4)(u / C, u % C, h, w);
}

__kernel void im2col(__global const float* x, int x_off,
                     int sxn, int sxc, int sxh, int sxw,
                     __global float* col, int col_off, int scn, int scc,
                     int C, int H, int W, int R, int S, int P, int Q,
                     int sh, int sw, int ph, int pw, int dh, int dw, int n0, int nb)
{
    const int i = get_global_id(0), PQ = P * Q, CRS = C * R * S;
    if (i >= nb * CRS * PQ) return;
    const int pq = i % PQ, t = i / PQ, crs = t % CRS, n = t / CRS;
    const int p = pq / Q, q = pq - p * Q;
    const int c = crs / (R * S), rs = crs - c * (R * S);
    const int r = rs / S, s = rs - r * S;
    const int h = p * sh - ph + r * dh, w = q * sw - pw + s * dw;
    float v = 0.0f;
    if (h >= 0 && h < H && w >= 0 && w < W)
        v = x[x_off + (n0 + n) * sxn + c * sxc + h * sxh + w * sxw];
    col[col_off + n * scn + crs * scc + pq] = v;
}

__kernel void col2im(__global const float* col, int col_off,
                     __global float* x, int x_off,
                     int sxn, int sxc, int sxh, int sxw,
                     int C, int H, int W, int R, int S, int P, int Q,
                     int sh, int sw, int ph, int pw, int dh, int dw, int n0, int nb)
{
    const int i = get_global_id(0);
    if (i >= nb * C * H * W) return;
    const int4 e = nchw_of(i, C, H, W);
    const int n = e.x, c = e.y, h = e.z, w = e.w;
    const int PQ = P * Q;
    __global const float* cn = col + col_off + (n * C + c) * R * S * PQ;
    float acc = 0.0f;
    for (int r = 0; r < R; ++r) {
        const int p = tap_output(h, ph, r, dh, sh, P);
        if (p < 0) continue;
        for (int s = 0; s < S; ++s) {
            const int q = tap_output(w, pw, s, dw, sw, Q);
            if (q < 0) continue;
            acc += cn[(r * S + s) * PQ + p * Q + q];
        }
    }
    x[x_off + (n0 + n) * sxn + c * sxc + h * sxh + w * sxw] = acc;
}

// Strided 4-D copy and fill: the fallbacks that turn any view into the
// layout an algorithm needs. One work-item per element of a flat 1-D range
// (work-groups of 256): a 3-D grid with one image row per group left most of
// an H200 idle on small images (1 TB/s for a channel-major copy).
__kernel void copy4d(__global const float* src, int s_off, int ssn, int ssc, int ssh, int ssw,
                     __global float* dst, int d_off, int dsn, int dsc, int dsh, int dsw,
                     int N, int C, int H, int W)
{
    const int i = get_global_id(0);
    if (i >= N * C * H * W) return;
    const int4 p = nchw_of(i, C, H, W);
    dst[d_off + p.x * dsn + p.y * dsc + p.z * dsh + p.w * dsw] =
        src[s_off + p.x * ssn + p.y * ssc + p.z * ssh + p.w * ssw];
}

__kernel void fill4d(__global float* dst, int d_off, int dsn, int dsc, int dsh, int dsw,
                     int N, int C, int H, int W, float value)
{
    const int i = get_global_id(0);
    if (i >= N * C * H * W) return;
    const int4 p = nchw_of(i, C, H, W);
    dst[d_off + p.x * dsn + p.y * dsc + p.z * dsh + p.w * dsw] = value;
}
