// Winograd F(MT x MT, RT x RT) for RT x RT, stride 1, dilation 1 convolutions,
// any tile size: the transform matrices come from the host
// (oclcore/conv/winograd_transforms.py) as -D initializers.
//   U[xi][g][ko][ci] = G f G^T              (filter transform, NT x NT xi)
//   V[xi][g][ci][t]  = BT d BT^T            (input transform, t = (n,th,tw))
//   M[xi][g][ko][t]  = U[xi][g] V[xi][g]    (NT*NT batched GEMMs per group, host)
//   y[n][g*Ko+ko][MT*th+i][MT*tw+j] = (AT M AT^T)[i][j]   (output transform)
// The data gradient is the same pipeline on dY with the filter flipped and its
// in/out channels swapped (flip = 1), so no transposed copy of the weights is
// made. F(2x2,3x3)'s filter gradient is in conv_winograd_grad_weight.cl.
//
// -D: MT (output tile), RT (filter size), NT = MT + RT - 1, and AT_INIT
//     (MT x NT), G_INIT (NT x RT), BT_INIT (NT x NT), row-major.

__constant float AT[MT * NT] = AT_INIT;
__constant float GM[NT * RT] = G_INIT;
__constant float BT[NT * NT] = BT_INIT;

// flip == 0: f[ko][ci] = W[g*Ko+ko][ci][r][s]
// flip == 1: f[ko][ci] = W[g*Ci+ci][ko][RT-1-r][RT-1-s]   (Ko = Cg, Ci = Kg)
__kernel void wt_filter(__global const float* w, int w_off, int swk, int swc, int swr, int sws,
                        __global float* U, int u_off, int Ko, int Ci, int G, int flip)
{
    const int ci = get_global_id(0), ko = get_global_id(1), g = get_global_id(2);
    if (ci >= Ci || ko >= Ko) return;
    float f[RT][RT];
    for (int r = 0; r < RT; ++r)
        for (int s = 0; s < RT; ++s)
            f[r][s] = flip ? w[w_off + (g * Ci + ci) * swk + ko * swc + (RT - 1 - r) * swr + (RT - 1 - s) * sws]
                           : w[w_off + (g * Ko + ko) * swk + ci * swc + r * swr + s * sws];
    float t[NT][RT];                    // G f
    for (int i = 0; i < NT; ++i)
        for (int s = 0; s < RT; ++s) {
            float acc = 0.0f;
            for (int k = 0; k < RT; ++k) acc += GM[i * RT + k] * f[k][s];
            t[i][s] = acc;
        }
    const int stride = G * Ko * Ci;     // between xi planes
    __global float* u = U + u_off + (g * Ko + ko) * Ci + ci;
    for (int i = 0; i < NT; ++i)        // (G f) G^T
        for (int j = 0; j < NT; ++j) {
            float acc = 0.0f;
            for (int k = 0; k < RT; ++k) acc += t[i][k] * GM[j * RT + k];
            u[(i * NT + j) * stride] = acc;
        }
}

// Tiles of the images n0 .. n0+Nc-1; T = Nc*TH*TW.
__kernel void wt_input(__global const float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                       __global float* V, int v_off,
                       int Ci, int G, int H, int W, int TH, int TW, int T, int ph, int pw, int n0)
{
    const int t = get_global_id(0), ci = get_global_id(1), g = get_global_id(2);
    if (t >= T || ci >= Ci) return;
    const int n = t / (TH * TW), tt = t - n * (TH * TW), th = tt / TW, tw = tt - th * TW;
    const int h0 = MT * th - ph, w0 = MT * tw - pw;
    __global const float* xs = x + x_off + (n0 + n) * sxn + (g * Ci + ci) * sxc;
    float d[NT][NT];
    for (int i = 0; i < NT; ++i)
        for (int j = 0; j < NT; ++j) {
            const int h = h0 + i, w = w0 + j;
            d[i][j] = (h >= 0 && h < H && w >= 0 && w < W) ? xs[h * sxh + w * sxw] : 0.0f;
        }
    float b[NT][NT];                    // BT d
    for (int i = 0; i < NT; ++i)
        for (int j = 0; j < NT; ++j) {
            float acc = 0.0f;
            for (int k = 0; k < NT; ++k) acc += BT[i * NT + k] * d[k][j];
            b[i][j] = acc;
        }
    const int stride = G * Ci * T;
    __global float* v = V + v_off + (g * Ci + ci) * T + t;
    for (int i = 0; i < NT; ++i)        // (BT d) BT^T
        for (int j = 0; j < NT; ++j) {
            float acc = 0.0f;
            for (int k = 0; k < NT; ++k) acc += b[i][k] * BT[j * NT + k];
            v[(i * NT + j) * stride] = acc;
        }
}

__kernel void wt_output(__global const float* M, int m_off,
                        __global float* y, int y_off, int syn, int syc, int syh, int syw,
                        __global const float* bias, int b_off, int has_bias, int act,
                        int Ko, int G, int P, int Q, int TH, int TW, int T, int n0)
{
    const int t = get_global_id(0), ko = get_global_id(1), g = get_global_id(2);
    if (t >= T || ko >= Ko) return;
    const int n = t / (TH * TW), tt = t - n * (TH * TW), th = tt / TW, tw = tt - th * TW;
    const int stride = G * Ko * T;
    __global const float* m = M + m_off + (g * Ko + ko) * T + t;
    float a[MT][NT];                    // AT M
    for (int j = 0; j < NT; ++j) {
        float col[NT];
        for (int k = 0; k < NT; ++k) col[k] = m[(k * NT + j) * stride];
        for (int i = 0; i < MT; ++i) {
            float acc = 0.0f;
            for (int k = 0; k < NT; ++k) acc += AT[i * NT + k] * col[k];
            a[i][j] = acc;
        }
    }
    const float bv = has_bias ? bias[b_off + g * Ko + ko] : 0.0f;
    __global float* ys = y + y_off + (n0 + n) * syn + (g * Ko + ko) * syc;
    for (int i = 0; i < MT; ++i) {      // (AT M) AT^T
        const int p = MT * th + i;
        if (p >= P) continue;
        for (int j = 0; j < MT; ++j) {
            const int q = MT * tw + j;
            if (q >= Q) continue;
            float acc = 0.0f;
            for (int k = 0; k < NT; ++k) acc += a[i][k] * AT[j * NT + k];
            ys[p * syh + q * syw] = activation(acc + bv, act);
        }
    }
}
