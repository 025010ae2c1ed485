// Random numbers from Philox-4x32-10, a counter-based generator: work-item g
// turns counter (base + g) and the 64-bit seed into four independent 32-bit
// words, so a launch is reproducible from (seed, base) alone and never
// depends on the work-group shape.
// -D: TO, STO (output storage and store macro), CT (float or double), IDX.

inline uint4 philox(uint4 c, uint2 k) {
  for (int r = 0; r < 10; r++) {
    uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
    uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k += (uint2)(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

inline uint4 philox_at(ulong counter, uint k0, uint k1) {
  return philox((uint4)((uint)counter, (uint)(counter >> 32), 0u, 0u), (uint2)(k0, k1));
}

#define U01(u) ((CT)((u) >> 8) * (CT)(1.0 / 16777216.0))                  // [0, 1)
#define U01_OPEN(u) (((CT)((u) >> 8) + (CT)1) * (CT)(1.0 / 16777216.0))   // (0, 1]

#define RANDOM_HEAD                                                    \
  IDX g = get_global_id(0);                                            \
  IDX i0 = g * 4;                                                      \
  if (i0 >= n) return;                                                 \
  uint4 r = philox_at(base + (ulong)g, k0, k1);                        \
  uint v[4] = {r.x, r.y, r.z, r.w};

__kernel void rand_uniform(__global TO* out, IDX o_off, IDX n, uint k0, uint k1, ulong base,
                           CT lo, CT hi) {
  RANDOM_HEAD
  for (int j = 0; j < 4 && i0 + j < n; j++) {
    CT x = lo + (hi - lo) * U01(v[j]);
    STO(out, o_off + i0 + j, x < hi ? x : lo);  // rounding must not reach hi
  }
}

__kernel void rand_normal(__global TO* out, IDX o_off, IDX n, uint k0, uint k1, ulong base,
                          CT mean, CT std) {
  RANDOM_HEAD
  for (int j = 0; j < 4; j += 2) {
    CT radius = sqrt((CT)-2 * log(U01_OPEN(v[j])));
    CT theta = (CT)6.283185307179586 * U01(v[j + 1]);
    if (i0 + j < n) STO(out, o_off + i0 + j, mean + std * radius * cos(theta));
    if (i0 + j + 1 < n) STO(out, o_off + i0 + j + 1, mean + std * radius * sin(theta));
  }
}

__kernel void rand_bernoulli(__global TO* out, IDX o_off, IDX n, uint k0, uint k1, ulong base,
                             CT p, CT unused) {
  RANDOM_HEAD
  for (int j = 0; j < 4 && i0 + j < n; j++) STO(out, o_off + i0 + j, (CT)(U01(v[j]) < p));
}

__kernel void rand_bernoulli_tensor(__global TO* out, IDX o_off, IDX n, uint k0, uint k1,
                                    ulong base, __global const float* p, IDX p_off) {
  RANDOM_HEAD
  for (int j = 0; j < 4 && i0 + j < n; j++)
    STO(out, o_off + i0 + j, (CT)(U01(v[j]) < (CT)p[p_off + i0 + j]));
}

__kernel void rand_exponential(__global TO* out, IDX o_off, IDX n, uint k0, uint k1, ulong base,
                               CT lambd, CT unused) {
  RANDOM_HEAD
  for (int j = 0; j < 4 && i0 + j < n; j++)
    STO(out, o_off + i0 + j, -log(U01_OPEN(v[j])) / lambd);
}

// Integers in [lo, lo + range): two words per value, so up to 2^64 values.
__kernel void rand_int(__global TO* out, IDX o_off, IDX n, uint k0, uint k1, ulong base,
                       long lo, ulong range) {
  IDX g = get_global_id(0);
  IDX i0 = g * 2;
  if (i0 >= n) return;
  uint4 r = philox_at(base + (ulong)g, k0, k1);
  ulong a = ((ulong)r.x << 32) | r.y, b = ((ulong)r.z << 32) | r.w;
  STO(out, o_off + i0, lo + (long)(a % range));
  if (i0 + 1 < n) STO(out, o_off + i0 + 1, lo + (long)(b % range));
}
