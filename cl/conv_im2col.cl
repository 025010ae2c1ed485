// im2col / col2im for NCHW convolutions. The input is addressed through its
// four strides (n, c, h, w), so NCHW, channels-last and other strided views
// are read and written in place. The column buffer has p*Q + q contiguous;
// im2col takes its image and row strides (scn, scc), so it can write
// col[n][c*R*S + r*S + s][p*Q + q] (the forward GEMMs, col2im's layout) or
// col[c*R*S + r*S + s][n][p*Q + q] (the filter gradient, whose reduction
// index n*P*Q + p*Q + q then has stride 1), for the images n0 .. n0+gridDim(2)-1.
// col2im gathers (one work-item per input element, fixed summation order),
// so it is deterministic and needs no atomics.

__kernel void im2col(__global const float* x, int x_off,
                     int sxn, int sxc, int sxh, int sxw,
                     __global float* col, int col_off, int scn, int scc,
                     int C, int H, int W, int R, int S, int P, int Q,
                     int sh, int sw, int ph, int pw, int dh, int dw, int n0)
{
    const int pq = get_global_id(0), crs = get_global_id(1), n = get_global_id(2);
    if (pq >= P * Q || crs >= C * R * S) return;
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
                     int sh, int sw, int ph, int pw, int dh, int dw, int n0)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= H * W || c >= C) return;
    const int h = hw / W, w = hw - h * W;
    const int PQ = P * Q;
    __global const float* cn = col + col_off + (n * C + c) * R * S * PQ;
    float acc = 0.0f;
    for (int r = 0; r < R; ++r) {
        const int hp = h + ph - r * dh;
        if (hp < 0 || hp % sh) continue;
        const int p = hp / sh;
        if (p >= P) continue;
        for (int s = 0; s < S; ++s) {
            const int wq = w + pw - s * dw;
            if (wq < 0 || wq % sw) continue;
            const int q = wq / sw;
            if (q >= Q) continue;
            acc += cn[(r * S + s) * PQ + p * Q + q];
        }
    }
    x[x_off + (n0 + n) * sxn + c * sxc + h * sxh + w * sxw] = acc;
}

// Strided 4-D copy: the fallback that turns any view into the layout an
// algorithm needs.
__kernel void copy4d(__global const float* src, int s_off, int ssn, int ssc, int ssh, int ssw,
                     __global float* dst, int d_off, int dsn, int dsc, int dsh, int dsw,
                     int N, int C, int H, int W)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= H * W || c >= C || n >= N) return;
    const int h = hw / W, w = hw - h * W;
    dst[d_off + n * dsn + c * dsc + h * dsh + w * dsw] =
        src[s_off + n * ssn + c * ssc + h * ssh + w * ssw];
}

__kernel void fill4d(__global float* dst, int d_off, int dsn, int dsc, int dsh, int dsw,
                     int N, int C, int H, int W, float value)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= H * W || c >= C || n >= N) return;
    const int h = hw / W, w = hw - h * W;
    dst[d_off + n * dsn + c * dsc + h * dsh + w * dsw] = value;
}
