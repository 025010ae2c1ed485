// Bias and activation (an activation.cl code) as a pass of its own, for the
// outputs no algorithm computes (no input channels, transposed convolutions),
// and the bias gradient as a deterministic per-channel reduction.

__kernel void bias_act(__global float* y, int y_off, int syn, int syc, int syh, int syw,
                       __global const float* bias, int b_off,
                       int N, int C, int H, int W, int has_bias, int act)
{
    const int hw = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (hw >= H * W || c >= C || n >= N) return;
    const int h = hw / W, w = hw - h * W;
    const int i = y_off + n * syn + c * syc + h * syh + w * syw;
    float v = y[i];
    if (has_bias) v += bias[b_off + c];
    y[i] = activation(v, act);
}

// One work-group per channel; each work-item sums a fixed strided subset,
// then a tree reduction in local memory. Local size must be a power of two.
__kernel void bias_grad(__global const float* dy, int dy_off, int sn, int sc, int sh, int sw,
                        __global float* db, int db_off,
                        int N, int H, int W, __local float* red)
{
    const int c = get_group_id(1), lid = get_local_id(0), ls = get_local_size(0);
    const int HW = H * W, total = N * HW;
    float acc = 0.0f;
    for (int i = lid; i < total; i += ls) {
        const int n = i / HW, hw = i - n * HW, h = hw / W, w = hw - h * W;
        acc += dy[dy_off + n * sn + c * sc + h * sh + w * sw];
    }
    red[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = ls >> 1; s > 0; s >>= 1) {
        if (lid < s) red[lid] += red[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) db[db_off + c] = red[0];
}
