// Elementwise kernels: one template for every pointwise op.
//
// Specialised by -D:
//   TO, TA, TB, TC  storage types of the output and up to three inputs
//   LDA, LDB, LDC   how to load each input as the compute type CT (LD_* below)
//   STO             how to store CT into the output (ST_* below)
//   CT              compute type; IDX index type (int, or long for huge tensors)
//   FP64            defined when any type is double
// Loads and stores come from cl/types.cl, which the host puts first.
// The host appends one line per op, e.g. POINTWISE1(relu, x < 0 ? (CT)0 : x),
// so a whole family for one type signature is a single program.
//
// Every input may be a scalar instead of a tensor: bit k of `scalars` set
// means input k reads its value argument (av, bv, cv) and ignores memory.
// rank == 0 means every tensor operand is contiguous in the same order, so
// element i is at offset + i; otherwise sizes and per-operand strides (at most
// 8 dims, collapsed by the host) locate it.

// Locates element i: offsets of the output and each input.
#define POINTWISE_INDEX(NOPS)                                                \
  IDX offs[4] = {o_off, a_off, b_off, c_off};                                \
  if (rank == 0) {                                                           \
    for (int k = 0; k < NOPS; k++) offs[k] += i;                             \
  } else {                                                                   \
    IDX r = i;                                                               \
    for (int d = 7; d >= 0; d--) {                                           \
      if (d < rank) {                                                        \
        const IDX sd = INT8_AT(sz, d), c = r % sd;                           \
        r /= sd;                                                             \
        offs[0] += c * INT8_AT(so, d);                                       \
        if (NOPS > 1) offs[1] += c * INT8_AT(sa, d);                         \
        if (NOPS > 2) offs[2] += c * INT8_AT(sb, d);                         \
        if (NOPS > 3) offs[3] += c * INT8_AT(sc, d);                         \
      }                                                                      \
    }                                                                        \
  }

#define POINTWISE_ARGS                                                       \
  CT p0, CT p1, CT p2, int scalars, IDX n, int rank, int8 sz, int8 so

#define POINTWISE1(NAME, EXPR)                                               \
  __kernel void NAME(__global TO* out, IDX o_off, __global const TA* a,      \
                     IDX a_off, CT av, POINTWISE_ARGS, int8 sa) {            \
    IDX i = get_global_id(0);                                                \
    if (i >= n) return;                                                      \
    const IDX b_off = 0, c_off = 0;                                          \
    const int8 sb = 0, sc = 0;                                               \
    POINTWISE_INDEX(2)                                                       \
    CT x = (scalars & 1) ? av : LDA(a, offs[1]);                             \
    STO(out, offs[0], (EXPR));                                               \
  }

#define POINTWISE2(NAME, EXPR)                                               \
  __kernel void NAME(__global TO* out, IDX o_off, __global const TA* a,      \
                     IDX a_off, CT av, __global const TB* b, IDX b_off,      \
                     CT bv, POINTWISE_ARGS, int8 sa, int8 sb) {              \
    IDX i = get_global_id(0);                                                \
    if (i >= n) return;                                                      \
    const IDX c_off = 0;                                                     \
    const int8 sc = 0;                                                       \
    POINTWISE_INDEX(3)                                                       \
    CT x = (scalars & 1) ? av : LDA(a, offs[1]);                             \
    CT y = (scalars & 2) ? bv : LDB(b, offs[2]);                             \
    STO(out, offs[0], (EXPR));                                               \
  }

#define POINTWISE3(NAME, EXPR)                                               \
  __kernel void NAME(__global TO* out, IDX o_off, __global const TA* a,      \
                     IDX a_off, CT av, __global const TB* b, IDX b_off,      \
                     CT bv, __global const TC* c, IDX c_off, CT cv,          \
                     POINTWISE_ARGS, int8 sa, int8 sb, int8 sc) {            \
    IDX i = get_global_id(0);                                                \
    if (i >= n) return;                                                      \
    POINTWISE_INDEX(4)                                                       \
    CT x = (scalars & 1) ? av : LDA(a, offs[1]);                             \
    CT y = (scalars & 2) ? bv : LDB(b, offs[2]);                             \
    CT z = (scalars & 4) ? cv : LDC(c, offs[3]);                             \
    STO(out, offs[0], (EXPR));                                               \
  }

// Helpers the op expressions use; generic over CT.
#define SIGMOID(v) ((CT)1 / ((CT)1 + exp(-(v))))
#define SOFTPLUS(v, beta, threshold) \
  ((v) * (beta) > (threshold) ? (v) : log1p(exp((v) * (beta))) / (beta))
#define GELU_TANH_INNER(v) ((CT)0.7978845608028654 * ((v) + (CT)0.044715 * (v) * (v) * (v)))
#define NAN_OR(a, b, v) ((isnan(a) || isnan(b)) ? (CT)NAN : (v))

#ifdef CT_IS_INT
inline CT ipow(CT base, CT e) {
  if (e < 0) return base == 1 ? (CT)1 : (base == -1 ? ((e & 1) ? (CT)-1 : (CT)1) : (CT)0);
  CT r = 1;
  while (e) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return r;
}
#endif
