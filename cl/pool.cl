// 2-d pooling (max, average, adaptive average, adaptive max) and backward.
//
// -D: T, LD, ST, TO=T, CT as in cl/types.cl.
// Tensors are (N, C, H, W) with any strides: strides vectors are (n, c, h, w).
// geom = (C, H, W, OH, OW, ...); win = (kH, kW, sH, sW, pH, pW, dH, dW).

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

// floor(x / d) for d > 0 and x of either sign.
inline int floor_div(int x, int d) { return x >= 0 ? x / d : -((d - 1 - x) / d); }

// Input extent of average-pooling window o along one axis: with the padding
// counted (torch's pool_size) or clipped to the input.
inline int avg_extent(int o, int in, int k, int s, int p, int include_pad) {
  int a = o * s - p, b = min(a + k, in + p);
  return include_pad ? b - a : min(b, in) - max(a, 0);
}

// Input extent of adaptive window o along one axis.
inline int adaptive_extent(int o, int in, int out) {
  return ((o + 1) * in + out - 1) / out - (o * in) / out;
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
    int div = mode != POOL_AVG ? (h1 - h0) * (w1 - w0)
              : divisor  ? divisor
                         : avg_extent(oh, H, win.s0, win.s2, win.s4, count_include_pad) *
                               avg_extent(ow, W, win.s1, win.s3, win.s5, count_include_pad);
    ST(y, y_off + OFF4(ys, n, c, oh, ow), sum / (CT)div);
  }
}

// Backward ops gather: a work-item owns one input column (or one channel of
// it, channels-last) over `rows` consecutive rows and sums, for each input
// element, the outputs whose windows hold it, oh-major then ow as torch's
// scatter adds them (same rounding). Along an axis those outputs are
// [max(0, floor((A i + Blo) / D)), min(out, floor((A i + Bhi) / D))), with
// cand = (A, Blo, Bhi, D) for rows then columns: the column range is computed
// once, the row range is stepped without divisions. Max pooling may scan a few
// outputs whose (dilated) windows skip the element: their indices never match.
// geom = (C, H, W, OH, OW, rows, row blocks, channels fastest).
inline void pool2d_backward_body(int mode, __global T* gi, int gi_off, __global const T* gy, int gy_off,
                                 __global const long* idx, int idx_off, int8 geom, int8 win, int8 cand,
                                 int8 gis, int8 gys, int8 is, int count_include_pad, int divisor, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4, rows = geom.s5, blocks = geom.s6;
  int n, c, iw, rb, t;
  if (geom.s7) {
    c = i % C;
    t = i / C;
    iw = t % W;
    t /= W;
    rb = t % blocks;
    n = t / blocks;
  } else {
    iw = i % W;
    t = i / W;
    rb = t % blocks;
    t /= blocks;
    c = t % C;
    n = t / C;
  }
  int wlo = max(floor_div(cand.s4 * iw + cand.s5, cand.s7), 0);
  int whi = min(floor_div(cand.s4 * iw + cand.s6, cand.s7), OW);
  int h = rb * rows, hend = min(h + rows, H);
  CT kw0 = mode == POOL_ADAPTIVE_AVG ? (CT)adaptive_extent(wlo, W, OW) : (CT)0;  // often the only one
  int A = cand.s0, D = cand.s3, dq = A / D, dr = A - dq * D;
  int x = A * h + cand.s1, qlo = floor_div(x, D), rlo = x - qlo * D;
  x = A * h + cand.s2;
  int qhi = floor_div(x, D), rhi = x - qhi * D;
  int gyb = gy_off + n * gys.s0 + c * gys.s1, ib = idx_off + n * is.s0 + c * is.s1;
  int gib = gi_off + n * gis.s0 + c * gis.s1 + iw * gis.s3;
  for (; h < hend; h++) {
    long self = (long)h * W + iw;
    CT sum = 0;
    for (int oh = max(qlo, 0); oh < min(qhi, OH); oh++) {
      int gyr = gyb + oh * gys.s2, ir = ib + oh * is.s2;
      if (mode == POOL_MAX) {
        for (int ow = wlo; ow < whi; ow++) {
          CT g = LD(gy, gyr + ow * gys.s3);  // loaded with its index, not after the compare
          sum += idx[ir + ow * is.s3] == self ? g : (CT)0;  // sum is never -0: adding +0 keeps it
        }
      } else if (mode == POOL_AVG) {
        int eh = avg_extent(oh, H, win.s0, win.s2, win.s4, count_include_pad);
        for (int ow = wlo; ow < whi; ow++) {
          int div = divisor ? divisor : eh * avg_extent(ow, W, win.s1, win.s3, win.s5, count_include_pad);
          sum += LD(gy, gyr + ow * gys.s3) / (CT)div;
        }
      } else {
        CT kh = (CT)adaptive_extent(oh, H, OH);
        for (int ow = wlo; ow < whi; ow++)
          sum += LD(gy, gyr + ow * gys.s3) / kh / (ow == wlo ? kw0 : (CT)adaptive_extent(ow, W, OW));
      }
    }
    ST(gi, gib + h * gis.s2, sum);
    qlo += dq;
    rlo += dr;
    if (rlo >= D) {
      rlo -= D;
      qlo++;
    }
    qhi += dq;
    rhi += dr;
    if (rhi >= D) {
      rhi -= D;
      qhi++;
    }
  }
}

#define POOL2D_BACKWARD(name, mode)                                                                            \
  __kernel void name(__global T* gi, int gi_off, __global const T* gy, int gy_off, __global const long* idx,    \
                     int idx_off, int8 geom, int8 win, int8 cand, int8 gis, int8 gys, int8 is,                  \
                     int count_include_pad, int divisor, int total) {                                           \
    pool2d_backward_body(mode, gi, gi_off, gy, gy_off, idx, idx_off, geom, win, cand, gis, gys, is,             \
                         count_include_pad, divisor, total);                                                    \
  }

POOL2D_BACKWARD(pool2d_backward_max, POOL_MAX)
POOL2D_BACKWARD(pool2d_backward_avg, POOL_AVG)
POOL2D_BACKWARD(pool2d_backward_adaptive_avg, POOL_ADAPTIVE_AVG)
