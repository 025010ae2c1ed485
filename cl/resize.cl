// 2-d upsampling: nearest, nearest-exact and bilinear, forward and backward.
//
// -D: T, LD, ST, TO=T, CT as in cl/types.cl.
// Tensors are (N, C, H, W) with any strides; stride vectors are (n, c, h, w).
// geom = (C, H, W, OH, OW). Scales are input/output ratios computed on the host
// exactly as torch computes them. Backward ops gather over the outputs that
// read each input element (deterministic, no atomics).

#define OFF4(s, n, c, h, w) ((n) * (s).s0 + (c) * (s).s1 + (h) * (s).s2 + (w) * (s).s3)

// Source index of output o for nearest (exact = 0) and nearest-exact (exact = 1).
inline int nearest_src(int o, int in, int out, float scale, int exact) {
  if (exact) return min((int)floor(((float)o + 0.5f) * scale), in - 1);
  if (out == in) return o;
  if (out == 2 * in) return o >> 1;
  return min((int)floor((float)o * scale), in - 1);
}

__kernel void upsample_nearest_forward(__global T* y, int y_off, __global const T* x, int x_off, int8 geom,
                                       int8 xs, int8 ys, float sh, float sw, int exact, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4;
  int ow = i % OW, oh = (i / OW) % OH, c = (i / (OW * OH)) % C, n = i / (OW * OH * C);
  int h = nearest_src(oh, H, OH, sh, exact), w = nearest_src(ow, W, OW, sw, exact);
  ST(y, y_off + OFF4(ys, n, c, oh, ow), LD(x, x_off + OFF4(xs, n, c, h, w)));
}

// Outputs [lo, hi) along one axis that may read input i (checked exactly by the caller).
inline void nearest_candidates(int i, int in, int out, float scale, int* lo, int* hi) {
  *lo = max((int)floor((float)i / scale) - 2, 0);
  *hi = min((int)ceil((float)(i + 1) / scale) + 2, out);
}

__kernel void upsample_nearest_backward(__global T* gi, int gi_off, __global const T* gy, int gy_off, int8 geom,
                                        int8 gys, int8 gis, float sh, float sw, int exact, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4;
  int iw = i % W, ih = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
  int hlo, hhi, wlo, whi;
  nearest_candidates(ih, H, OH, sh, &hlo, &hhi);
  nearest_candidates(iw, W, OW, sw, &wlo, &whi);
  CT sum = 0;
  for (int oh = hlo; oh < hhi; oh++) {
    if (nearest_src(oh, H, OH, sh, exact) != ih) continue;
    for (int ow = wlo; ow < whi; ow++)
      if (nearest_src(ow, W, OW, sw, exact) == iw) sum += LD(gy, gy_off + OFF4(gys, n, c, oh, ow));
  }
  ST(gi, gi_off + OFF4(gis, n, c, ih, iw), sum);
}

// Linear interpolation along one axis: output o reads i0 (weight l0) and i0 + step (weight l1).
inline void linear_src(int o, int in, CT scale, int align_corners, int* i0, int* step, CT* l0, CT* l1) {
  CT src = align_corners ? scale * (CT)o : scale * ((CT)o + (CT)0.5) - (CT)0.5;
  if (src < 0) src = 0;
  int i = (int)floor(src);
  CT l = min(max(src - (CT)i, (CT)0), (CT)1);
  i = min(i, in - 1);
  *i0 = i;
  *step = i < in - 1 ? 1 : 0;
  *l1 = l;
  *l0 = (CT)1 - l;
}

__kernel void upsample_bilinear_forward(__global T* y, int y_off, __global const T* x, int x_off, int8 geom,
                                        int8 xs, int8 ys, CT sh, CT sw, int align_corners, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4;
  int ow = i % OW, oh = (i / OW) % OH, c = (i / (OW * OH)) % C, n = i / (OW * OH * C);
  int h0, hp, w0, wp;
  CT h0l, h1l, w0l, w1l;
  linear_src(oh, H, sh, align_corners, &h0, &hp, &h0l, &h1l);
  linear_src(ow, W, sw, align_corners, &w0, &wp, &w0l, &w1l);
  int b = x_off + OFF4(xs, n, c, h0, w0);
  CT top = w0l * LD(x, b) + w1l * LD(x, b + wp * xs.s3);
  CT bottom = w0l * LD(x, b + hp * xs.s2) + w1l * LD(x, b + hp * xs.s2 + wp * xs.s3);
  ST(y, y_off + OFF4(ys, n, c, oh, ow), h0l * top + h1l * bottom);
}

// Weight with which output o reads input i along one axis (0 when it does not).
inline CT linear_weight(int o, int i, int in, CT scale, int align_corners) {
  int i0, step;
  CT l0, l1;
  linear_src(o, in, scale, align_corners, &i0, &step, &l0, &l1);
  return (i0 == i ? l0 : (CT)0) + (i0 + step == i ? l1 : (CT)0);
}

inline void linear_candidates(int i, int out, CT scale, int align_corners, int* lo, int* hi) {
  if (scale <= 0) {
    *lo = 0;
    *hi = out;
    return;
  }
  CT shift = align_corners ? (CT)0 : (CT)0.5;
  *lo = max((int)floor(((CT)(i - 1) + shift) / scale - shift) - 2, 0);
  *hi = min((int)ceil(((CT)(i + 1) + shift) / scale - shift) + 2, out);
}

__kernel void upsample_bilinear_backward(__global T* gi, int gi_off, __global const T* gy, int gy_off, int8 geom,
                                         int8 gys, int8 gis, CT sh, CT sw, int align_corners, int total) {
  int i = get_global_id(0);
  if (i >= total) return;
  int C = geom.s0, H = geom.s1, W = geom.s2, OH = geom.s3, OW = geom.s4;
  int iw = i % W, ih = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
  int hlo, hhi, wlo, whi;
  linear_candidates(ih, OH, sh, align_corners, &hlo, &hhi);
  linear_candidates(iw, OW, sw, align_corners, &wlo, &whi);
  CT sum = 0;
  for (int oh = hlo; oh < hhi; oh++) {
    CT wh = linear_weight(oh, ih, H, sh, align_corners);
    if (wh == 0) continue;
    CT row = 0;
    for (int ow = wlo; ow < whi; ow++) {
      CT ww = linear_weight(ow, iw, W, sw, align_corners);
      if (ww != 0) row += ww * LD(gy, gy_off + OFF4(gys, n, c, oh, ow));
    }
    sum += wh * row;
  }
  ST(gi, gi_off + OFF4(gis, n, c, ih, iw), sum);
}
