// The filter gradient of Winograd F(2x2,3x3) for 3x3, stride 1, dilation 1
// convolutions (oclcore/conv/winograd.py; its forward and data-gradient passes
// run cl/conv_winograd.cl with MT=2, RT=3), with the classic matrices
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].

// Input transform V[xi][g][ci][t] = B^T d B of the tiles of the images
// n0 .. n0+Nc-1; T = Nc*TH*TW.
__kernel void wino_input(__global const float* x, int x_off, int sxn, int sxc, int sxh, int sxw,
                         __global float* V, int v_off,
                         int Ci, int G, int H, int W, int TH, int TW, int T, int ph, int pw, int n0)
{
    const int t = get_global_id(0), ci = get_global_id(1), g = get_global_id(2);
    if (t >= T || ci >= Ci) return;
    const int n = t / (TH * TW), tt = t - n * (TH * TW), th = tt / TW, tw = tt - th * TW;
    const int h0 = 2 * th - ph, w0 = 2 * tw - pw;
    __global const float* xs = x + x_off + (n0 + n) * sxn + (g * Ci + ci) * sxc;
    float d[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
            const int h = h0 + i, w = w0 + j;
            d[i][j] = (h >= 0 && h < H && w >= 0 && w < W) ? xs[h * sxh + w * sxw] : 0.0f;
        }
    float b[4][4];                      // B^T d
    for (int j = 0; j < 4; ++j) {
        b[0][j] = d[0][j] - d[2][j];
        b[1][j] = d[1][j] + d[2][j];
        b[2][j] = d[2][j] - d[1][j];
        b[3][j] = d[1][j] - d[3][j];
    }
    const int stride = G * Ci * T;
    __global float* v = V + v_off + (g * Ci + ci) * T + t;
    for (int i = 0; i < 4; ++i) {       // (B^T d) B
        v[(i * 4 + 0) * stride] = b[i][0] - b[i][2];
        v[(i * 4 + 1) * stride] = b[i][1] + b[i][2];
        v[(i * 4 + 2) * stride] = b[i][2] - b[i][1];
        v[(i * 4 + 3) * stride] = b[i][1] - b[i][3];
    }
}

// Filter gradient (dW = G^T dU G, dU[xi] = sum over tiles of Z[xi] V[xi]^T):
//   Z[xi][g][ko][t] = A dY A^T           (output-gradient transform, below)
//   V[xi][g][ci][t] = B^T d B            (wino_input, above)
//   dU[xi][g][ko][ci] = sum_t Z V        (16*G batched GEMMs, host)
// An output tile that overhangs P x Q contributes zeros there: those tile
// outputs are not outputs of the convolution.
__kernel void wino_grad_output(__global const float* dy, int dy_off, int syn, int syc, int syh, int syw,
                               __global float* Z, int z_off,
                               int Ko, int G, int P, int Q, int TH, int TW, int T, int n0)
{
    const int t = get_global_id(0), ko = get_global_id(1), g = get_global_id(2);
    if (t >= T || ko >= Ko) return;
    const int n = t / (TH * TW), tt = t - n * (TH * TW), th = tt / TW, tw = tt - th * TW;
    __global const float* ds = dy + dy_off + (n0 + n) * syn + (g * Ko + ko) * syc;
    float d[2][2];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
            const int p = 2 * th + i, q = 2 * tw + j;
            d[i][j] = (p < P && q < Q) ? ds[p * syh + q * syw] : 0.0f;
        }
    float a[4][2];                      // A dY
    for (int j = 0; j < 2; ++j) {
        a[0][j] = d[0][j];
        a[1][j] = d[0][j] + d[1][j];
        a[2][j] = d[0][j] - d[1][j];
        a[3][j] = -d[1][j];
    }
    const int stride = G * Ko * T;
    __global float* z = Z + z_off + (g * Ko + ko) * T + t;
    for (int i = 0; i < 4; ++i) {       // (A dY) A^T
        z[(i * 4 + 0) * stride] = a[i][0];
        z[(i * 4 + 1) * stride] = a[i][0] + a[i][1];
        z[(i * 4 + 2) * stride] = a[i][0] - a[i][1];
        z[(i * 4 + 3) * stride] = -a[i][1];
    }
}

// dw[g*Ko+ko][ci][r][s] = (G^T dU[g][ko][ci] G)[r][s]
__kernel void wino_filter_grad(__global const float* dU, int u_off,
                               __global float* dw, int dw_off, int swk, int swc, int swr, int sws,
                               int Ko, int Ci, int G)
{
    const int ci = get_global_id(0), ko = get_global_id(1), g = get_global_id(2);
    if (ci >= Ci || ko >= Ko) return;
    const int stride = G * Ko * Ci;
    __global const float* u = dU + u_off + (g * Ko + ko) * Ci + ci;
    float t[3][4];                      // G^T dU
    for (int j = 0; j < 4; ++j) {
        const float u0 = u[(0 * 4 + j) * stride], u1 = u[(1 * 4 + j) * stride];
        const float u2 = u[(2 * 4 + j) * stride], u3 = u[(3 * 4 + j) * stride];
        t[0][j] = u0 + 0.5f * (u1 + u2);
        t[1][j] = 0.5f * (u1 - u2);
        t[2][j] = 0.5f * (u1 + u2) + u3;
    }
    __global float* o = dw + dw_off + (g * Ko + ko) * swk + ci * swc;
    for (int r = 0; r < 3; ++r) {       // (G^T dU) G
        o[r * swr + 0 * sws] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
        o[r * swr + 1 * sws] = 0.5f * (t[r][1] - t[r][2]);
        o[r * swr + 2 * sws] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
    }
}
