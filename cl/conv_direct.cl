// Per-element convolution kernels for any groups (depthwise: Cg = 1, Kg = the
// channel multiplier), runtime geometry and a bounds check per tap: the
// fallbacks of the depthwise and grouped algorithms when no tile of theirs fits
// in local memory. Tensors are (buffer, offset, 4 strides); weights (K, Cg, R, S).

// Global (P*Q, K, N): one output per work-item.
__kernel void conv_direct_forward(__global const float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                                  __global const float* w, int w_off, int swk, int swc, int swr, int sws,
                                  __global float* y, int y_off, int syn, int syc, int syh, int syw,
                                  __global const float* bias, int b_off, int has_bias, int act,
                                  int N, int G, int Cg, int Kg, GEOM)
{
    const int pq = get_global_id(0), k = get_global_id(1), n = get_global_id(2);
    if (pq >= P * Q || k >= G * Kg) return;
    const int p = pq / Q, q = pq - p * Q, gi = k / Kg;
    const int h0 = p * sh - ph, w0 = q * sw - pw;
    __global const float* xs = x + x_off + n * sxn + gi * Cg * sxc;
    __global const float* wk = w + w_off + k * swk;
    float acc = has_bias ? bias[b_off + k] : 0.0f;
    for (int c = 0; c < Cg; ++c)
        for (int r = 0; r < R; ++r) {
            const int h = h0 + r * dh;
            if (h < 0 || h >= H) continue;
            for (int s = 0; s < S; ++s) {
                const int ww = w0 + s * dw;
                if (ww < 0 || ww >= W) continue;
                acc = fma(xs[c * sxc + h * sxh + ww * sxw], wk[c * swc + r * swr + s * sws], acc);
            }
        }
    y[y_off + n * syn + k * syc + p * syh + q * syw] = activation(acc, act);
}

// Global (H*W, C, N): one input position and channel per work-item.
__kernel void conv_direct_grad_input(__global const float* dy, int y_off, int syn, int syc, int syh, int syw,
                                     __global const float* w, int w_off, int swk, int swc, int swr, int sws,
                                     __global float* dx, int x_off, int sxn, int sxc, int sxh, int sxw,
                                     int N, int G, int Cg, int Kg, GEOM)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= H * W || c >= G * Cg) return;
    const int h = hw / W, ww = hw - h * W, gi = c / Cg, cg = c - gi * Cg;
    float acc = 0.0f;
    for (int kk = 0; kk < Kg; ++kk) {
        const int k = gi * Kg + kk;
        __global const float* ys = dy + y_off + n * syn + k * syc;
        for (int r = 0; r < R; ++r) {
            const int p = tap_output(h, ph, r, dh, sh, P);
            if (p < 0) continue;
            for (int s = 0; s < S; ++s) {
                const int q = tap_output(ww, pw, s, dw, sw, Q);
                if (q < 0) continue;
                acc = fma(ys[p * syh + q * syw], w[w_off + k * swk + cg * swc + r * swr + s * sws], acc);
            }
        }
    }
    dx[x_off + n * sxn + c * sxc + h * sxh + ww * sxw] = acc;
}

// One work-group per filter element: global (L, K*Cg*R*S), local (L, 1), L a
// power of two; a fixed-order tree sum over the images and positions.
__kernel void conv_direct_grad_weight(__global const float* dy, int y_off, int syn, int syc, int syh, int syw,
                                      __global const float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                                      __global float* dw_, int w_off, int swk, int swc, int swr, int sws,
                                      int N, int G, int Cg, int Kg, GEOM, __local float* red)
{
    const int lid = get_local_id(0), ls = get_local_size(0);
    const int e = get_group_id(1), RS = R * S;
    const int k = e / (Cg * RS), crs = e - k * Cg * RS, cg = crs / RS, rs = crs - cg * RS, r = rs / S, s = rs - r * S;
    const int c = k / Kg * Cg + cg, PQ = P * Q, total = N * PQ;
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
    if (lid == 0) dw_[w_off + k * swk + cg * swc + r * swr + s * sws] = red[0];
}
