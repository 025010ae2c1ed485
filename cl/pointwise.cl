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
// element i is at offset + i (each item then handles ILP elements, below);
// rank -2 and -3 are 2-D launches over 2 or 3 collapsed dims (below);
// otherwise sizes and per-operand strides (at most 8 dims, collapsed by the
// host) locate the item's one element.

// rank == 0: the host launches ceil(n / ILP) items and item m handles elements
// i = m, m + G, ..., m + (ILP - 1) G (G the global size), issuing all its loads
// before its stores: with one element per item (or a load after each store,
// which the compiler may not reorder, out possibly being an input) NVIDIA
// GPUs stayed well below their memory bandwidth.
#define ILP 4

// Loads operand X of the ILP elements of this item into xs (contiguous operands).
#define POINTWISE_LOAD_ILP(xs, bit, LD, p, off, v)                           \
  CT xs[ILP];                                                                \
  for (int k = 0; k < ILP; k++) {                                            \
    const IDX i = item + k * G;                                              \
    xs[k] = (scalars & (bit)) ? (v) : (i < n ? LD(p, (off) + i) : (CT)0);    \
  }

// Stores EXPR of each of this item's elements (x, y, z bound to element k's operands).
#define POINTWISE_STORE_ILP(EXPR, BIND)                                      \
  for (int k = 0; k < ILP; k++) {                                            \
    const IDX i = item + k * G;                                              \
    if (i < n) {                                                             \
      BIND                                                                   \
      STO(out, o_off + i, (EXPR));                                           \
    }                                                                        \
  }

// rank < 0: a 2-D grid over the -rank (2 or 3) collapsed dims: dim 0 walks the
// last dim, ILP elements per item G apart, and dim 1 the others (one division
// per item for 3 dims, none per element). Broadcasts (per-channel scales, bias
// adds) ran at a third of the contiguous bandwidth with a division per dim and
// element in the flat walk below.
#define PLANE_BASE(off, s) (r == 2 ? (off) + q0 * (s).s0 : (off) + q0 * (s).s0 + q1 * (s).s1)
#define INNER_STRIDE(s) (r == 2 ? (s).s1 : (s).s2)

#define POINTWISE_PLANE_BEGIN                                                \
  const int r = -rank;                                                       \
  const IDX inner = r == 2 ? sz.s1 : sz.s2, pl = get_global_id(1);           \
  if (pl >= (r == 2 ? sz.s0 : sz.s0 * sz.s1)) return;                        \
  const IDX q0 = r == 2 ? pl : pl / sz.s1, q1 = r == 2 ? 0 : pl - q0 * sz.s1; \
  const IDX G = get_global_size(0);

#define POINTWISE_PLANE_LOAD(xs, bit, LD, p, off, s, v)                      \
  CT xs[ILP];                                                                \
  {                                                                          \
    const IDX b_ = PLANE_BASE(off, s), is_ = INNER_STRIDE(s);                \
    for (int k = 0; k < ILP; k++) {                                          \
      const IDX e = item + k * G;                                            \
      xs[k] = (scalars & (bit)) ? (v) : (e < inner ? LD(p, b_ + e * is_) : (CT)0); \
    }                                                                        \
  }

#define POINTWISE_PLANE_STORE(EXPR, BIND)                                    \
  {                                                                          \
    const IDX ob = PLANE_BASE(o_off, so), os = INNER_STRIDE(so);           \
    for (int k = 0; k < ILP; k++) {                                          \
      const IDX e = item + k * G;                                            \
      if (e < inner) {                                                       \
        const IDX i = pl * inner + e;                                        \
        BIND                                                                 \
        STO(out, ob + e * os, (EXPR));                                       \
      }                                                                      \
    }                                                                        \
  }

// Locates element i of a strided launch: offsets of the output and each input.
#define POINTWISE_INDEX(NOPS)                                                \
  IDX offs[4] = {o_off, a_off, b_off, c_off};                                \
  IDX r = i;                                                                 \
  for (int d = 7; d >= 0; d--) {                                             \
    if (d < rank) {                                                          \
      const IDX sd = INT8_AT(sz, d), c = r % sd;                             \
      r /= sd;                                                               \
      offs[0] += c * INT8_AT(so, d);                                         \
      if (NOPS > 1) offs[1] += c * INT8_AT(sa, d);                           \
      if (NOPS > 2) offs[2] += c * INT8_AT(sb, d);                           \
      if (NOPS > 3) offs[3] += c * INT8_AT(sc, d);                           \
    }                                                                        \
  }

#define POINTWISE_ARGS                                                       \
  CT p0, CT p1, CT p2, int scalars, IDX n, int rank, int8 sz, int8 so

// The contiguous (rank 0) and 2-D (rank < 0) launches of a kernel, which return; after
// them i is the element of a strided launch. LOADS_ILP / LOADS_PLANE load the operands
// into xs, ys, zs and BIND names element k's x, y, z.
#define POINTWISE_FAST_PATHS(EXPR, LOADS_ILP, LOADS_PLANE, BIND)              \
  const IDX item = get_global_id(0);                                         \
  if (rank == 0) {                                                           \
    const IDX G = get_global_size(0);                                        \
    LOADS_ILP                                                                \
    POINTWISE_STORE_ILP(EXPR, BIND)                                          \
    return;                                                                  \
  }                                                                          \
  if (rank < 0) {                                                            \
    POINTWISE_PLANE_BEGIN                                                    \
    LOADS_PLANE                                                              \
    POINTWISE_PLANE_STORE(EXPR, BIND)                                        \
    return;                                                                  \
  }                                                                          \
  const IDX i = item;                                                        \
  if (i >= n) return;

#define ILP_X POINTWISE_LOAD_ILP(xs, 1, LDA, a, a_off, av)
#define ILP_XY ILP_X POINTWISE_LOAD_ILP(ys, 2, LDB, b, b_off, bv)
#define ILP_XYZ ILP_XY POINTWISE_LOAD_ILP(zs, 4, LDC, c, c_off, cv)
#define PLANE_X POINTWISE_PLANE_LOAD(xs, 1, LDA, a, a_off, sa, av)
#define PLANE_XY PLANE_X POINTWISE_PLANE_LOAD(ys, 2, LDB, b, b_off, sb, bv)
#define PLANE_XYZ PLANE_XY POINTWISE_PLANE_LOAD(zs, 4, LDC, c, c_off, sc, cv)
#define BIND_X const CT x = xs[k];
#define BIND_XY BIND_X const CT y = ys[k];
#define BIND_XYZ BIND_XY const CT z = zs[k];

#define POINTWISE1(NAME, EXPR)                                               \
  __kernel void NAME(__global TO* out, IDX o_off, __global const TA* a,      \
                     IDX a_off, CT av, POINTWISE_ARGS, int8 sa) {            \
    POINTWISE_FAST_PATHS(EXPR, ILP_X, PLANE_X, BIND_X)                       \
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
    POINTWISE_FAST_PATHS(EXPR, ILP_XY, PLANE_XY, BIND_XY)                    \
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
    POINTWISE_FAST_PATHS(EXPR, ILP_XYZ, PLANE_XYZ, BIND_XYZ)                 \
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

#ifndef CT_IS_INT
// erfinv: Giles' single-precision approximation ("Approximating the erfinv function", GPU
// Computing Gems, 2011), then Newton steps on erf (two reach double precision).
inline CT erfinv_ct(CT x) {
  if (fabs(x) >= (CT)1) return fabs(x) == (CT)1 ? copysign((CT)INFINITY, x) : (CT)NAN;
  float xf = (float)x, w = -log((1.0f - xf) * (1.0f + xf)), p;
  if (w < 5.0f) {
    w -= 2.5f;
    p = 2.81022636e-08f;
    p = 3.43273939e-07f + p * w; p = -3.5233877e-06f + p * w; p = -4.39150654e-06f + p * w;
    p = 0.00021858087f + p * w; p = -0.00125372503f + p * w; p = -0.00417768164f + p * w;
    p = 0.246640727f + p * w; p = 1.50140941f + p * w;
  } else {
    w = sqrt(w) - 3.0f;
    p = -0.000200214257f;
    p = 0.000100950558f + p * w; p = 0.00134934322f + p * w; p = -0.00367342844f + p * w;
    p = 0.00573950773f + p * w; p = -0.0076224613f + p * w; p = 0.00943887047f + p * w;
    p = 1.00167406f + p * w; p = 2.83297682f + p * w;
  }
  CT y = (CT)(p * xf);
  for (int i = 0; i < 2; i++)
    y -= (erf(y) - x) / ((CT)1.1283791670955126 * exp(-y * y));
  return y;
}

// digamma as torch computes it: the reflection formula below 0, the recurrence up to 10, then the
// asymptotic series (Cephes' coefficients).
inline CT digamma_ct(CT x) {
  if (x == (CT)0) return copysign((CT)INFINITY, -x);
  CT result = 0;
  if (x < (CT)0) {
    if (x == trunc(x)) return (CT)NAN;
    result = -(CT)M_PI / tan((CT)M_PI * (x - trunc(x)));  // psi(x) = psi(1 - x) - pi / tan(pi x)
    x = (CT)1 - x;
  }
  while (x < (CT)10) {
    result -= (CT)1 / x;
    x += (CT)1;
  }
  if (x == (CT)10) return result + (CT)2.25175258906672110764;
  CT y = 0;
  if (x < (CT)1e17) {
    CT z = (CT)1 / (x * x), p = (CT)8.33333333333333333333E-2;
    p = p * z - (CT)2.10927960927960927961E-2;
    p = p * z + (CT)7.57575757575757575758E-3;
    p = p * z - (CT)4.16666666666666666667E-3;
    p = p * z + (CT)3.96825396825396825397E-3;
    p = p * z - (CT)8.33333333333333333333E-3;
    p = p * z + (CT)8.33333333333333333333E-2;
    y = z * p;
  }
  return result + log(x) - (CT)0.5 / x - y;
}

// The Hurwitz zeta function zeta(x, q) = sum over k >= 0 of (k + q)^-x, as torch computes it
// (Cephes' zeta: direct terms, then Euler-Maclaurin with the Bernoulli numbers below).
__constant CT ZETA_A[12] = {12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9,
                                7.47242496e10, -2.950130727918164224e12, 1.1646782814350067249e14,
                                -4.5979787224074726105e15, 1.8152105401943546773e17, -7.1661652561756670113e18};

inline CT zeta_ct(CT x, CT q) {
  const CT machep = (CT)1.11022302462515654042E-16;
  if (x == (CT)1) return (CT)INFINITY;
  if (x < (CT)1) return (CT)NAN;
  if (q <= (CT)0) {
    if (q == floor(q)) return (CT)INFINITY;
    if (x != floor(x)) return (CT)NAN;
  }
  CT s = pow(q, -x), a = q, b = 0;
  int i = 0;
  while (i < 9 || a <= (CT)9) {
    i += 1;
    a += (CT)1;
    b = pow(a, -x);
    s += b;
    if (-machep * s < b && b < machep * s) return s;
  }
  const CT w = a;
  s += b * w / (x - (CT)1);
  s -= (CT)0.5 * b;
  a = 1;
  CT k = 0;
  for (int j = 0; j < 12; j++) {
    a *= x + k;
    b /= w;
    CT t = a * b / ZETA_A[j];
    s = s + t;
    if (fabs(t / s) < machep) return s;
    k += (CT)1;
    a *= x + k;
    b /= w;
    k += (CT)1;
  }
  return s;
}

// trigamma (polygamma of order 1), as torch computes it: reflection below 1/2, six steps of the
// recurrence, then the asymptotic series.
inline CT trigamma_ct(CT x) {
  CT sign = 1, result = 0;
  if (x < (CT)0.5) {
    sign = -1;
    const CT sin_pi_x = sin((CT)M_PI * x);
    result -= ((CT)M_PI * (CT)M_PI) / (sin_pi_x * sin_pi_x);
    x = (CT)1 - x;
  }
  for (int i = 0; i < 6; ++i) {
    result += (CT)1 / (x * x);
    x += (CT)1;
  }
  const CT ixx = (CT)1 / (x * x);
  result += ((CT)1 + (CT)1 / ((CT)2 * x) + ixx * ((CT)1 / 6 - ixx * ((CT)1 / 30 - ixx * ((CT)1 / 42)))) / x;
  return sign * result;
}

// polygamma(n, x), n >= 0: digamma, trigamma, else (-1)^(n+1) n! zeta(n + 1, x).
inline CT polygamma_ct(int n, CT x) {
  if (n == 0) return digamma_ct(x);
  if (n == 1) return trigamma_ct(x);
  return ((n & 1) ? (CT)1 : (CT)-1) * exp(lgamma((CT)n + (CT)1)) * zeta_ct((CT)(n + 1), x);
}

// The modified Bessel functions I0 (nu = 0) and I1 (nu = 1, odd): the power series
// (x/2)^nu sum ((x/2)^2)^k / (k! (k+nu)!), positive terms, up to |x| = 15, then the asymptotic
// series e^x / sqrt(2 pi x) sum of terms with the ratio ((2k-1)^2 - 4 nu^2) / (8kx).
inline CT bessel_i_ct(CT x, int nu) {
  const CT eps = (CT)1.11022302462515654042E-16;
  const CT ax = fabs(x);
  if (isnan(x)) return x;
  CT r;
  if (ax <= (CT)15) {
    const CT q = (CT)0.25 * ax * ax;
    CT term = nu ? (CT)0.5 * ax : (CT)1, sum = term;
    for (int k = 1; k < 80 && term > sum * eps; ++k) {
      term *= q / (CT)(k * (k + nu));
      sum += term;
    }
    r = sum;
  } else {
    CT term = 1, sum = 1;
    for (int k = 1; k < 40 && fabs(term) > sum * eps; ++k) {
      term *= (CT)((2 * k - 1) * (2 * k - 1) - 4 * nu * nu) / ((CT)(8 * k) * ax);
      sum += term;
    }
    r = exp(ax) / sqrt((CT)(2 * M_PI) * ax) * sum;
  }
  return nu && x < (CT)0 ? -r : r;
}
#endif

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
