// Dropout with Philox-4x32-10 random numbers (philox_at and U01 from
// cl/random.cl, which the host puts before this file): work-item g draws
// counter base + g and decides elements 4g .. 4g+3, so a mask depends only on
// (seed, base), never on the launch shape.
// -D: T, LD (input storage type and load macro), TO, STO (output, = T), CT, IDX, FP64.

// Element i is kept when its uniform number is >= p (probability 1 - p);
// out = x * keep * scale, as torch computes it (so inf * 0 gives NaN as there).
__kernel void dropout_forward(__global TO *out, int o_off, __global uchar *mask, int m_off,
                              __global const T *xp, int x_off, int n, uint k0, uint k1,
                              ulong base, CT p, CT scale) {
  int g = get_global_id(0);
  int i0 = g * 4;
  if (i0 >= n) return;
  uint4 r = philox_at(base + (ulong)g, k0, k1);
  uint v[4] = {r.x, r.y, r.z, r.w};
  for (int j = 0; j < 4 && i0 + j < n; j++) {
    int i = i0 + j;
    uchar keep = U01(v[j]) >= p;
    mask[m_off + i] = keep;
    STO(out, o_off + i, LD(xp, x_off + i) * (CT)keep * scale);
  }
}

__kernel void dropout_backward(__global TO *out, int o_off, __global const T *gp, int g_off,
                               __global const uchar *mask, int m_off, int n, CT scale) {
  int i = get_global_id(0);
  if (i >= n) return;
  STO(out, o_off + i, LD(gp, g_off + i) * (CT)(mask[m_off + i] != 0) * scale);
}
