// Reductions over any set of dims of a strided tensor, and the softmax family.
//
// Specialised by -D:
//   TI, LDI     input storage type and load macro (cl/types.cl, put first)
//   CT          compute / accumulation type; TO, STO output storage and store
//   IDX         index type (int, or long for huge tensors)
//   WG          largest local size the host launches (a power of two)
//   CT_IS_INT   CT is an integer type (CT_IS_LONG when it is long); FP64
//
// Ops come in families sharing a state type; each family is one kernel
// `reduce_<family>` taking the op (an OP_* code below) as an argument, since
// PoCL's build time grows with the number of kernels in a program.
//
// Geometry (built by the host): output element o is a point of the "kept"
// dims (krank dims: sizes ksz, input strides kin, output strides kout); the
// elements it reduces are r = 0..nred-1 over the reduced dims (rrank dims:
// sizes rsz, input strides rin), in row-major order of those dims, which is
// what max/argmax indices count.
//
// `mode` picks the work split:
//   MODE_GROUP  one work-group per (output, chunk): each work-item folds every
//               L-th element of the chunk, then a tree in local memory; with
//               one chunk it stores the result, else the chunk's state in `part`.
//   MODE_PARTS  one work-group per output folds its `chunks` partial states.
//   MODE_ITEM   one work-item per (output, chunk) folds its elements in order
//               (many outputs, or short reductions; outputs adjacent in a
//               warp, so strided columns load coalesced); with several
//               chunks it leaves the chunk's state in `part`.
// reduce_rows (the value family) gives each output `lanes` work-items (a
// power of two) and a work-group several outputs: lane j folds elements j,
// j + lanes, ... four loads at a time, then a tree over the output's lanes
// (means over the positions of many planes: squeeze-excitation pooling).
// The shapes alone fix the order of every fold, so results are bitwise
// reproducible.

#define MODE_GROUP 0
#define MODE_PARTS 1
#define MODE_ITEM 2

#ifdef CT_IS_INT
#define IS_NAN(v) 0
#ifdef CT_IS_LONG
#define CT_LOWEST LONG_MIN
#define CT_HIGHEST LONG_MAX
#else
#define CT_LOWEST INT_MIN
#define CT_HIGHEST INT_MAX
#endif
#else
#define IS_NAN(v) isnan(v)
#define CT_LOWEST (-INFINITY)
#define CT_HIGHEST INFINITY
#endif

// max/min that propagate NaN (the first operand wins ties)
#define MAX_NAN(a, b) (((a) >= (b) || IS_NAN(a)) ? (a) : (b))
#define MIN_NAN(a, b) (((a) <= (b) || IS_NAN(a)) ? (a) : (b))

// Offset of the element at position i of dims (rank, sizes, strides), row-major.
inline IDX locate(IDX i, int rank, int8 sz, int8 st) {
  if (rank <= 1) return rank ? i * st.s0 : 0;
  IDX off = 0;
#pragma unroll
  for (int d = 7; d >= 0; d--) {
    if (d < rank) {
      const IDX s = INT8_AT(sz, d);
      off += (i % s) * INT8_AT(st, d);
      i /= s;
    }
  }
  return off;
}

// ---- family "value": one CT ----
#define OP_SUM 0
#define OP_NANSUM 1
#define OP_PROD 2
#define OP_AMAX 3
#define OP_AMIN 4
#define OP_ALL 5
#define OP_ANY 6
#define OP_MEAN 7
#define OP_NORM1 8
#define OP_NORM2 9
#define OP_NORMP 10
#define OP_NORMINF 11
#define OP_NORMNINF 12

typedef struct { CT v; } value_state;

inline value_state value_init(int op) {
  value_state s;
  switch (op) {
    case OP_PROD: case OP_ALL: s.v = 1; break;
    case OP_AMAX: s.v = CT_LOWEST; break;
    case OP_AMIN: case OP_NORMNINF: s.v = CT_HIGHEST; break;
    default: s.v = 0;
  }
  return s;
}

inline value_state value_accum(int op, value_state s, CT x, long r, CT p) {
  CT v = s.v;
  switch (op) {
    case OP_NANSUM: s.v = IS_NAN(x) ? v : v + x; break;
    case OP_PROD: s.v = v * x; break;
    case OP_AMAX: s.v = MAX_NAN(v, x); break;
    case OP_AMIN: s.v = MIN_NAN(v, x); break;
    case OP_ALL: s.v = v != (CT)0 && x != (CT)0; break;
    case OP_ANY: s.v = v != (CT)0 || x != (CT)0; break;
#ifndef CT_IS_INT
    case OP_NORM1: s.v = v + fabs(x); break;
    case OP_NORM2: s.v = v + x * x; break;
    case OP_NORMP: s.v = v + pow(fabs(x), p); break;
    case OP_NORMINF: s.v = MAX_NAN(v, fabs(x)); break;
    case OP_NORMNINF: s.v = MIN_NAN(v, fabs(x)); break;
#endif
    default: s.v = v + x;  // sum, mean
  }
  return s;
}

inline value_state value_combine(int op, value_state s, value_state t) {
  CT a = s.v, b = t.v;
  switch (op) {
    case OP_PROD: s.v = a * b; break;
    case OP_AMAX: case OP_NORMINF: s.v = MAX_NAN(a, b); break;
    case OP_AMIN: case OP_NORMNINF: s.v = MIN_NAN(a, b); break;
    case OP_ALL: s.v = a != (CT)0 && b != (CT)0; break;
    case OP_ANY: s.v = a != (CT)0 || b != (CT)0; break;
    default: s.v = a + b;
  }
  return s;
}

inline void value_store(int op, value_state s, long n, CT p0, CT p1, __global TO* out, IDX o,
                        __global TO* out2, IDX o2) {
  CT v = s.v;
#ifndef CT_IS_INT
  if (op == OP_MEAN) v /= (CT)n;
  else if (op == OP_NORM2) v = sqrt(v);
  else if (op == OP_NORMP) v = pow(v, (CT)1 / p0);
#endif
  STO(out, o, v);
}

// ---- family "count": a long count of nonzero elements (count_nonzero, the 0-"norm") ----
typedef struct { long v; } count_state;
inline count_state count_init(int op) {
  count_state s;
  s.v = 0;
  return s;
}
inline count_state count_accum(int op, count_state s, CT x, long r, CT p) {
  s.v += x != (CT)0;
  return s;
}
inline count_state count_combine(int op, count_state s, count_state t) {
  s.v += t.v;
  return s;
}
inline void count_store(int op, count_state s, long n, CT p0, CT p1, __global TO* out, IDX o,
                        __global TO* out2, IDX o2) {
  STO(out, o, s.v);
}

// ---- family "arg": value and first index; op: 0 max, 1 min, 2 argmax, 3 argmin ----
typedef struct { CT v; long i; } arg_state;

// True when (bv, bi) should replace (av, ai): more extreme, or NaN (NaN beats
// numbers), or equal with a smaller index.
inline int arg_better(int op, CT av, long ai, CT bv, long bi) {
  if (IS_NAN(av)) return IS_NAN(bv) && bi < ai;
  if (IS_NAN(bv)) return 1;
  if (bv == av) return bi < ai;
  return (op & 1) ? bv < av : bv > av;
}
inline arg_state arg_init(int op) {
  arg_state s;
  s.v = (op & 1) ? CT_HIGHEST : CT_LOWEST;
  s.i = LONG_MAX;
  return s;
}
inline arg_state arg_accum(int op, arg_state s, CT x, long r, CT p) {
  if (arg_better(op, s.v, s.i, x, r)) {
    s.v = x;
    s.i = r;
  }
  return s;
}
inline arg_state arg_combine(int op, arg_state s, arg_state t) {
  return arg_better(op, s.v, s.i, t.v, t.i) ? t : s;
}
inline void arg_store(int op, arg_state s, long n, CT p0, CT p1, __global TO* out, IDX o,
                      __global long* out2, IDX o2) {
  if (op < 2) STO(out, o, s.v);
  out2[o2] = s.i;
}

// ---- family "aminmax": (min, max) ----
typedef struct { CT lo; CT hi; } aminmax_state;
inline aminmax_state aminmax_init(int op) {
  aminmax_state s;
  s.lo = CT_HIGHEST;
  s.hi = CT_LOWEST;
  return s;
}
inline aminmax_state aminmax_accum(int op, aminmax_state s, CT x, long r, CT p) {
  s.lo = MIN_NAN(s.lo, x);
  s.hi = MAX_NAN(s.hi, x);
  return s;
}
inline aminmax_state aminmax_combine(int op, aminmax_state s, aminmax_state t) {
  s.lo = MIN_NAN(s.lo, t.lo);
  s.hi = MAX_NAN(s.hi, t.hi);
  return s;
}
inline void aminmax_store(int op, aminmax_state s, long n, CT p0, CT p1, __global TO* out, IDX o,
                          __global TO* out2, IDX o2) {
  STO(out, o, s.lo);
  STO(out2, o2, s.hi);
}

#ifndef CT_IS_INT
// ---- family "moments": Welford's (count, mean, sum of squared deviations);
// op: 0 var, 1 std, 2 var_mean, 3 std_mean; p0 = correction ----
typedef struct { long n; CT mean; CT m2; } moments_state;
inline moments_state moments_init(int op) {
  moments_state s;
  s.n = 0;
  s.mean = 0;
  s.m2 = 0;
  return s;
}
inline moments_state moments_accum(int op, moments_state s, CT x, long r, CT p) {
  s.n += 1;
  CT d = x - s.mean;
  s.mean += d / (CT)s.n;
  s.m2 += d * (x - s.mean);
  return s;
}
inline moments_state moments_combine(int op, moments_state a, moments_state b) {
  if (b.n == 0) return a;
  if (a.n == 0) return b;
  long n = a.n + b.n;
  CT d = b.mean - a.mean;
  CT wb = (CT)b.n / (CT)n;
  a.mean += d * wb;
  a.m2 += b.m2 + d * d * (CT)a.n * wb;
  a.n = n;
  return a;
}
inline void moments_store(int op, moments_state s, long n, CT p0, CT p1, __global TO* out, IDX o,
                          __global TO* out2, IDX o2) {
  CT var = s.m2 / fmax((CT)s.n - p0, (CT)0);
  STO(out, o, (op & 1) ? sqrt(var) : var);
  if (op >= 2) STO(out2, o2, s.mean);
}

// ---- family "lse": running (max m, sum s of exp(x - m)) for logsumexp and softmax ----
// An infinite maximum makes s NaN, so softmax rows holding +inf give NaN like
// torch; logsumexp returns an infinite or NaN m as it is.
typedef struct { CT m; CT s; } lse_state;
inline lse_state lse_init(int op) {
  lse_state s;
  s.m = -INFINITY;
  s.s = 0;
  return s;
}
inline lse_state lse_combine(int op, lse_state a, lse_state b) {
  if (isnan(a.m) || isnan(b.m)) {
    a.m = a.s = NAN;
    return a;
  }
  CT hi = fmax(a.m, b.m);
  if (hi == -INFINITY) return a;
  if (hi == INFINITY) {
    a.m = INFINITY;
    a.s = NAN;
    return a;
  }
  a.s = a.s * exp(a.m - hi) + b.s * exp(b.m - hi);
  a.m = hi;
  return a;
}
inline lse_state lse_accum(int op, lse_state a, CT x, long r, CT p) {
  lse_state b;
  b.m = x;
  b.s = 1;
  return lse_combine(op, a, b);
}
inline void lse_store(int op, lse_state s, long n, CT p0, CT p1, __global TO* out, IDX o,
                      __global TO* out2, IDX o2) {
  STO(out, o, isfinite(s.m) ? s.m + log(s.s) : s.m);
}
#endif

// Leaves the work-group's combined state in s (every work-item).
#define GROUP_TREE(COMBINE, op, scratch, s)                                    \
  {                                                                            \
    const int lid_ = get_local_id(0);                                          \
    scratch[lid_] = s;                                                         \
    barrier(CLK_LOCAL_MEM_FENCE);                                              \
    for (int h = (int)get_local_size(0) >> 1; h > 0; h >>= 1) {                \
      if (lid_ < h) scratch[lid_] = COMBINE(op, scratch[lid_], scratch[lid_ + h]); \
      barrier(CLK_LOCAL_MEM_FENCE);                                            \
    }                                                                          \
    s = scratch[0];                                                            \
  }

// The one kernel of family F (state F##_state, second output of type T2).
#define REDUCE_KERNEL(F, T2)                                                   \
  __kernel void reduce_##F(                                                    \
      __global TO* out, IDX o_off, __global T2* out2, IDX o2_off,              \
      __global const TI* in, IDX i_off, __global F##_state* part, IDX p_off,   \
      CT p0, CT p1, IDX nout, IDX nred, int chunks, IDX chunk_len, int krank,  \
      int8 ksz, int8 kin, int8 kout, int rrank, int8 rsz, int8 rin, int op,    \
      int mode) {                                                              \
    __local F##_state scratch[WG];                                             \
    F##_state s = F##_init(op);                                                \
    if (mode == MODE_ITEM) {                                                   \
      const IDX gid = get_global_id(0);                                        \
      if (gid >= nout * chunks) return;                                        \
      const IDX o = gid % nout, c = gid / nout;                                \
      const IDX ib = i_off + locate(o, krank, ksz, kin);                       \
      const IDX r1 = min((c + 1) * chunk_len, nred);                           \
      for (IDX r = c * chunk_len; r < r1; r++)                                 \
        s = F##_accum(op, s, LDI(in, ib + locate(r, rrank, rsz, rin)), r, p0); \
      if (chunks > 1) {                                                        \
        part[p_off + o * chunks + c] = s;                                      \
        return;                                                                \
      }                                                                        \
      const IDX oo = locate(o, krank, ksz, kout);                              \
      F##_store(op, s, nred, p0, p1, out, o_off + oo, out2, o2_off + oo);      \
      return;                                                                  \
    }                                                                          \
    const int lid = get_local_id(0), L = get_local_size(0);                    \
    const IDX g = get_group_id(0);                                             \
    IDX o;                                                                     \
    if (mode == MODE_GROUP) {                                                  \
      o = g / chunks;                                                          \
      const IDX c = g % chunks;                                                \
      const IDX ib = i_off + locate(o, krank, ksz, kin);                       \
      const IDX r1 = min((c + 1) * chunk_len, nred);                           \
      for (IDX r = c * chunk_len + lid; r < r1; r += L)                        \
        s = F##_accum(op, s, LDI(in, ib + locate(r, rrank, rsz, rin)), r, p0); \
    } else {                                                                   \
      o = g;                                                                   \
      for (int c = lid; c < chunks; c += L)                                    \
        s = F##_combine(op, s, part[p_off + o * chunks + c]);                  \
    }                                                                          \
    GROUP_TREE(F##_combine, op, scratch, s)                                    \
    if (lid == 0) {                                                            \
      if (mode == MODE_GROUP && chunks > 1) {                                  \
        part[p_off + g] = s;                                                   \
      } else {                                                                 \
        const IDX oo = locate(o, krank, ksz, kout);                            \
        F##_store(op, s, nred, p0, p1, out, o_off + oo, out2, o2_off + oo);    \
      }                                                                        \
    }                                                                          \
  }

REDUCE_KERNEL(value, TO)
// A kernel of its own: as a mode of REDUCE_KERNEL, its per-output tree gave wrong
// results on PoCL. Its arguments are reduce_value's, with `lanes` in the chunks slot
// (out2, part, chunk_len and mode unused).
__kernel void reduce_rows(__global TO* out, IDX o_off, __global TO* out2, IDX o2_off,
                          __global const TI* in, IDX i_off, __global value_state* part, IDX p_off,
                          CT p0, CT p1, IDX nout, IDX nred, int lanes, IDX chunk_len, int krank,
                          int8 ksz, int8 kin, int8 kout, int rrank, int8 rsz, int8 rin, int op, int mode) {
  __local value_state scratch[WG];
  const int lid = get_local_id(0), lane = lid & (lanes - 1);
  const IDX o = (IDX)get_group_id(0) * (get_local_size(0) / lanes) + lid / lanes;
  value_state s = value_init(op);
  if (o < nout) {
    const IDX ib = i_off + locate(o, krank, ksz, kin);
    IDX r = lane;
    for (; r + 3 * lanes < nred; r += 4 * lanes) {
      const CT x0 = LDI(in, ib + locate(r, rrank, rsz, rin));
      const CT x1 = LDI(in, ib + locate(r + lanes, rrank, rsz, rin));
      const CT x2 = LDI(in, ib + locate(r + 2 * lanes, rrank, rsz, rin));
      const CT x3 = LDI(in, ib + locate(r + 3 * lanes, rrank, rsz, rin));
      s = value_accum(op, s, x0, r, p0);
      s = value_accum(op, s, x1, r + lanes, p0);
      s = value_accum(op, s, x2, r + 2 * lanes, p0);
      s = value_accum(op, s, x3, r + 3 * lanes, p0);
    }
    for (; r < nred; r += lanes) s = value_accum(op, s, LDI(in, ib + locate(r, rrank, rsz, rin)), r, p0);
  }
  scratch[lid] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int h = lanes >> 1; h > 0; h >>= 1) {
    if (lane < h) scratch[lid] = value_combine(op, scratch[lid], scratch[lid + h]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lane == 0 && o < nout) {
    s = scratch[lid];
    value_store(op, s, nred, p0, p1, out, o_off + locate(o, krank, ksz, kout), out, 0);
  }
}

REDUCE_KERNEL(count, TO)
REDUCE_KERNEL(arg, long)
REDUCE_KERNEL(aminmax, TO)
#ifndef CT_IS_INT
REDUCE_KERNEL(moments, TO)
REDUCE_KERNEL(lse, TO)

// ---- softmax family: rows along one dim ----
// Row q (of nrows) is a point of the kept dims (krank, ksz and per-tensor
// strides); its D elements are d* apart in each tensor. MODE_GROUP gives a
// row to a work-group (the dim is contiguous and long), MODE_ITEM a row to a
// work-item. log_out selects log_softmax.

inline CT softmax_value(CT x, lse_state t, int log_out) {
  return log_out ? x - t.m - log(t.s) : exp(x - t.m) / t.s;
}

__kernel void softmax(__global TO* out, IDX o_off, __global const TI* in, IDX i_off, IDX nrows,
                      IDX D, int krank, int8 ksz, int log_out, int8 kin, int8 kout, IDX din,
                      IDX dout, int mode) {
  __local lse_state scratch[WG];
  const int item = mode == MODE_ITEM;
  const IDX q = item ? get_global_id(0) : get_group_id(0);
  if (q >= nrows) return;
  const IDX d0 = item ? 0 : get_local_id(0), step = item ? 1 : get_local_size(0);
  const IDX ib = i_off + locate(q, krank, ksz, kin), ob = o_off + locate(q, krank, ksz, kout);
  lse_state s = lse_init(0);
  for (IDX d = d0; d < D; d += step) s = lse_accum(0, s, LDI(in, ib + d * din), d, 0);
  if (!item) GROUP_TREE(lse_combine, 0, scratch, s)
  for (IDX d = d0; d < D; d += step) STO(out, ob + d * dout, softmax_value(LDI(in, ib + d * din), s, log_out));
}

// Backward, with y the forward output and g its gradient (both stored as TI):
// softmax: g_in = y * (g - sum(g * y)); log_softmax: g_in = g - exp(y) * sum(g).
__kernel void softmax_backward(__global TO* out, IDX o_off, __global const TI* g, IDX g_off,
                               __global const TI* y, IDX y_off, IDX nrows, IDX D, int krank,
                               int8 ksz, int log_out, int8 kg, int8 ky, int8 kout, IDX dg, IDX dy,
                               IDX dout, int mode) {
  __local value_state scratch[WG];
  const int item = mode == MODE_ITEM;
  const IDX q = item ? get_global_id(0) : get_group_id(0);
  if (q >= nrows) return;
  const IDX d0 = item ? 0 : get_local_id(0), step = item ? 1 : get_local_size(0);
  const IDX gb = g_off + locate(q, krank, ksz, kg), yb = y_off + locate(q, krank, ksz, ky);
  const IDX ob = o_off + locate(q, krank, ksz, kout);
  value_state s = value_init(OP_SUM);
  for (IDX d = d0; d < D; d += step) {
    CT gv = LDI(g, gb + d * dg);
    s.v += log_out ? gv : gv * LDI(y, yb + d * dy);
  }
  if (!item) GROUP_TREE(value_combine, OP_SUM, scratch, s)
  for (IDX d = d0; d < D; d += step) {
    CT gv = LDI(g, gb + d * dg), yv = LDI(y, yb + d * dy);
    STO(out, ob + d * dout, log_out ? gv - exp(yv) * s.v : yv * (gv - s.v));
  }
}
#endif
