// Direct depthwise convolution: groups == C, K = C * mult. Any kernel size,
// stride, padding, dilation; tensors addressed by their strides. The weight
// gradient is one work-group per weight element reducing over (n, p, q) in a
// fixed order (strided partial sums, then a local tree), so results are
// deterministic without float atomics.

__kernel void dw_forward(__global const float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                         __global const float* w, int w_off, int swk, int swr, int sws,
                         __global float* y, int y_off, int syn, int syc, int syh, int syw,
                         __global const float* bias, int b_off, int has_bias, int relu,
                         int H, int W, int K, int mult, int R, int S, int P, int Q,
                         int sh, int sw, int ph, int pw, int dh, int dw)
{
    const int pq = get_global_id(0), k = get_global_id(1), n = get_global_id(2);
    if (pq >= P * Q || k >= K) return;
    const int p = pq / Q, q = pq - p * Q, c = k / mult;
    const int h0 = p * sh - ph, w0 = q * sw - pw;
    __global const float* xs = x + x_off + n * sxn + c * sxc;
    __global const float* ws = w + w_off + k * swk;
    float acc = has_bias ? bias[b_off + k] : 0.0f;
    for (int r = 0; r < R; ++r) {
        const int h = h0 + r * dh;
        if (h < 0 || h >= H) continue;
        for (int s = 0; s < S; ++s) {
            const int ww = w0 + s * dw;
            if (ww < 0 || ww >= W) continue;
            acc = fma(xs[h * sxh + ww * sxw], ws[r * swr + s * sws], acc);
        }
    }
    if (relu) acc = fmax(acc, 0.0f);
    y[y_off + n * syn + k * syc + p * syh + q * syw] = acc;
}

__kernel void dw_grad_input(__global const float* dy, int y_off, int syn, int syc, int syh, int syw,
                            __global const float* w, int w_off, int swk, int swr, int sws,
                            __global float* dx, int x_off, int sxn, int sxc, int sxh, int sxw,
                            int H, int W, int C, int mult, int R, int S, int P, int Q,
                            int sh, int sw, int ph, int pw, int dh, int dw)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= H * W || c >= C) return;
    const int h = hw / W, ww = hw - h * W;
    float acc = 0.0f;
    for (int m = 0; m < mult; ++m) {
        const int k = c * mult + m;
        __global const float* ys = dy + y_off + n * syn + k * syc;
        for (int r = 0; r < R; ++r) {
            const int hp = h + ph - r * dh;
            if (hp < 0 || hp % sh) continue;
            const int p = hp / sh;
            if (p >= P) continue;
            for (int s = 0; s < S; ++s) {
                const int wq = ww + pw - s * dw;
                if (wq < 0 || wq % sw) continue;
                const int q = wq / sw;
                if (q >= Q) continue;
                acc = fma(ys[p * syh + q * syw], w[w_off + k * swk + r * swr + s * sws], acc);
            }
        }
    }
    dx[x_off + n * sxn + c * sxc + h * sxh + ww * sxw] = acc;
}

// Launch with global (L, K*R*S), local (L, 1), L a power of two.
__kernel void dw_grad_weight(__global const float* dy, int y_off, int syn, int syc, int syh, int syw,
                             __global const float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                             __global float* dw_, int w_off, int swk, int swr, int sws,
                             int N, int H, int W, int mult, int R, int S, int P, int Q,
                             int sh, int sw, int ph, int pw, int dh, int dw,
                             __local float* red)
{
    const int lid = get_local_id(0), ls = get_local_size(0);
    const int krs = get_group_id(1), RS = R * S;
    const int k = krs / RS, rs = krs - k * RS, r = rs / S, s = rs - r * S;
    const int c = k / mult, PQ = P * Q, total = N * PQ;
    float acc = 0.0f;
    for (int i = lid; i < total; i += ls) {
        const int n = i / PQ, pq = i - n * PQ, p = pq / Q, q = pq - p * Q;
        const int h = p * sh - ph + r * dh, ww = q * sw - pw + s * dw;
        if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
        acc = fma(dy[y_off + n * syn + k * syc + p * syh + q * syw],
                  x[x_off + n * sxn + c * sxc + h * sxh + ww * sxw], acc);
    }
    red[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int st = ls >> 1; st > 0; st >>= 1) {
        if (lid < st) red[lid] += red[lid + st];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) dw_[w_off + k * swk + r * swr + s * sws] = red[0];
}
