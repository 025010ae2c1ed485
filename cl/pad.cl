// Padding: constant, reflect, replicate and circular, and the backward of
// reflect/replicate.
//
// -D: T, LD, ST, TO=T, CT as in cl/types.cl.
// pad_forward handles up to 8 dims of any strides: osz/isz are the output and
// input sizes, xs/ys the strides, pb the padding before each dim (negative
// pads crop). The backward gathers one padded axis at a time, on contiguous
// (outer, size, inner) tensors: each input position sums the outputs that
// copied it, in a fixed order.

#define PAD_CONSTANT 0
#define PAD_REFLECT 1
#define PAD_REPLICATE 2
#define PAD_CIRCULAR 3

__kernel void pad_forward(__global T* y, int y_off, __global const T* x, int x_off, int8 osz8, int8 isz8,
                          int8 xs8, int8 ys8, int8 pb8, int rank, int mode, CT value, int total) {
  int t = get_global_id(0);
  if (t >= total) return;
  int r = t, yo = y_off, xo = x_off;
  bool inside = true;
#pragma unroll
  for (int d = 7; d >= 0; d--) {
    if (d >= rank) continue;
    const int os = INT8_AT(osz8, d), in = INT8_AT(isz8, d);
    int o = r % os;
    r /= os;
    yo += o * INT8_AT(ys8, d);
    int i = o - INT8_AT(pb8, d);
    if (mode == PAD_REFLECT) {
      if (i < 0) i = -i;
      if (i >= in) i = 2 * (in - 1) - i;
    } else if (mode == PAD_REPLICATE) {
      i = clamp(i, 0, in - 1);
    } else if (mode == PAD_CIRCULAR) {
      i = ((i % in) + in) % in;
    } else if (i < 0 || i >= in) {
      inside = false;
    }
    xo += i * INT8_AT(xs8, d);
  }
  ST(y, yo, inside ? LD(x, xo) : value);
}

__kernel void pad_backward_axis(__global T* gi, int gi_off, __global const T* gy, int gy_off, int outer, int O,
                                int I, int inner, int pb, int mode, int total) {
  int t = get_global_id(0);
  if (t >= total) return;
  int k = t % inner, i = (t / inner) % I, m = t / (inner * I);
  int base = gy_off + m * O * inner + k;
  CT sum = 0;
  if (mode == PAD_REPLICATE && i == 0)
    for (int o = 0; o < min(pb, O); o++) sum += LD(gy, base + o * inner);
  if (mode == PAD_REFLECT && i >= 1 && pb - i >= 0 && pb - i < O) sum += LD(gy, base + (pb - i) * inner);
  int o = i + pb;
  if (o >= 0 && o < O) sum += LD(gy, base + o * inner);
  if (mode == PAD_REFLECT && i <= I - 2) {
    int r = 2 * (I - 1) - i + pb;
    if (r >= 0 && r < O) sum += LD(gy, base + r * inner);
  }
  if (mode == PAD_REPLICATE && i == I - 1)
    for (int q = max(pb + I, 0); q < O; q++) sum += LD(gy, base + q * inner);
  ST(gi, gi_off + t, sum);
}
