// 2-d pooling (max, average, adaptive average, adaptive max) and backward.
//
// -D: T, LD, ST, TO=T, CT as in cl/types.cl.
// Tensors are (N, C, H, W) with any strides: strides vectors are (n, c, h, w).
// geom = (C, H, W, OH, OW); win = (kH, kW, sH, sW, pH, pW, dH, dW).
// Backward ops gather: each input element sums the outputs whose windows hold
// it, in a fixed order (deterministic, no atomics).

#define POOL_MAX 0
#define POOL_AVG 1
#define POOL_ADAPTIVE_AVG 2
#define POOL_ADAPTIVE_MAX 3

#define OFF4(s, n, c, h, w) ((n) * (s).s0 + (c) * (s).s1 + (h) * (s).s2 + (w) * (s).s3)

// Window of output o along one axis: positions start, start+step, ... < end.
inline void pool_window(int mode, int o, int in, int out, int k, int s, int p, int d,
                        int* start, int* end, int* step) {
  if (mode == POOL_ADAPTIVE_AVG || mode == POOL_ADAPTIVE_MAX) {
    *start = (o * in) / out;
    *end = ((o + 1) * in + out - 1) / out;
    *step = 1;
  } else if (mode == POOL_AVG) {
    int a = o * s - p;
    *start = max(a, 0);
    *end = min(min(a + k, in + p), in);
    *step = 1;
  } else {
    int a = o * s - p;
    *end = min(a + (k - 1) * d + 1, in);
    while (a < 0) a += d;
    *start = a;
    *step = d;
  }
}

// Divisor of average pooling for output (oh, ow), as torch computes it.
inline int avg_divisor(int oh, int ow, int8 geom, int8 win, int count_include_pad, int divisor) {
  if (divisor) return divisor;
  int hs = oh * win.s2 - win.s4, ws = ow * win.s3 - win.s5;
  int he = min(hs + win.s0, geom.s1 + win.s4), we = min(ws + win.s1, geom.s2 + win.s5);
  if (count_include_pad) return (he - hs) * (we - ws);
  return (min(he, geom.s1) - max(hs, 0)) * (min(we, geom.s2) - max(ws, 0));
}

__kernel void pool2d_forward(__global T* y, int y_off, __global long* idx, int idx_off,
                             __global const T* x, int x_off, int8 geom, int8 win, int8 xs, int8 ys,
                             int8 is, int mode, int count_include_pad, int divisor, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4;
  int ow = i % OW, oh = (i / OW) % OH, c = (i / (OW * OH)) % C, n = i / (OW * OH * C);
  int h0, h1, hstep, w0, w1, wstep;
  pool_window(mode, oh, H, OH, win.s0, win.s2, win.s4, win.s6, &h0, &h1, &hstep);
  pool_window(mode, ow, W, OW, win.s1, win.s3, win.s5, win.s7, &w0, &w1, &wstep);
  int xb = x_off + OFF4(xs, n, c, 0, 0);
  if (mode == POOL_MAX || mode == POOL_ADAPTIVE_MAX) {
    CT best = -INFINITY;
    long best_i = (long)h0 * W + w0;
    for (int h = h0; h < h1; h += hstep)
      for (int w = w0; w < w1; w += wstep) {
        CT v = LD(x, xb + h * xs.s2 + w * xs.s3);
        if (v > best || isnan(v)) {
          best = v;
          best_i = (long)h * W + w;
        }
      }
    ST(y, y_off + OFF4(ys, n, c, oh, ow), best);
    idx[idx_off + OFF4(is, n, c, oh, ow)] = best_i;
  } else {
    CT sum = 0;
    for (int h = h0; h < h1; h++)
      for (int w = w0; w < w1; w++) sum += LD(x, xb + h * xs.s2 + w * xs.s3);
    int div = mode == POOL_AVG ? avg_divisor(oh, ow, geom, win, count_include_pad, divisor)
                               : (h1 - h0) * (w1 - w0);
    ST(y, y_off + OFF4(ys, n, c, oh, ow), sum / (CT)div);
  }
}

// Outputs along one axis whose window may hold input position i: [lo, hi).
inline void pool_candidates(int mode, int i, int in, int out, int k, int s, int p, int d, int* lo, int* hi) {
  if (mode == POOL_ADAPTIVE_AVG || mode == POOL_ADAPTIVE_MAX) {
    *lo = (i * out) / in;
    *hi = min(((i + 1) * out + in - 1) / in, out);
  } else {
    int a = i + p - (k - 1) * d;  // first output: o * s >= a
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    *hi = min((i + p) / s + 1, out);
  }
}

// Whether output o's window along one axis holds input position i.
inline bool pool_holds(int mode, int o, int i, int in, int out, int k, int s, int p, int d) {
  int a, b, step;
  pool_window(mode, o, in, out, k, s, p, d, &a, &b, &step);
  return i >= a && i < b && (i - a) % step == 0;
}

__kernel void pool2d_backward(__global T* gi, int gi_off, __global const T* gy, int gy_off,
                              __global const long* idx, int idx_off, int8 geom, int8 win, int8 gis, int8 gys,
                              int8 is, int mode, int count_include_pad, int divisor, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4;
  int iw = i % W, ih = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
  int hlo, hhi, wlo, whi;
  pool_candidates(mode, ih, H, OH, win.s0, win.s2, win.s4, win.s6, &hlo, &hhi);
  pool_candidates(mode, iw, W, OW, win.s1, win.s3, win.s5, win.s7, &wlo, &whi);
  bool is_max = mode == POOL_MAX || mode == POOL_ADAPTIVE_MAX;
  long self = (long)ih * W + iw;
  CT sum = 0;
  for (int oh = hlo; oh < hhi; oh++) {
    if (!pool_holds(mode, oh, ih, H, OH, win.s0, win.s2, win.s4, win.s6)) continue;
    for (int ow = wlo; ow < whi; ow++) {
      if (!pool_holds(mode, ow, iw, W, OW, win.s1, win.s3, win.s5, win.s7)) continue;
      CT g = LD(gy, gy_off + OFF4(gys, n, c, oh, ow));
      if (is_max) {
        if (idx[idx_off + OFF4(is, n, c, oh, ow)] == self) sum += g;
      } else {
        int div;
        if (mode == POOL_AVG) {
          div = avg_divisor(oh, ow, geom, win, count_include_pad, divisor);
        } else {
          int a, b, st, a2, b2;
          pool_window(mode, oh, H, OH, 0, 0, 0, 0, &a, &b, &st);
          pool_window(mode, ow, W, OW, 0, 0, 0, 0, &a2, &b2, &st);
          div = (b - a) * (b2 - a2);
        }
        sum += g / (CT)div;
      }
    }
  }
  ST(gi, gi_off + OFF4(gis, n, c, ih, iw), sum);
}
