// Multi-tensor (torch._foreach_*) kernels: one launch processes up to SLOTS
// (8, 16 or 32) tensors of a list.
//
// OpenCL 1.2 kernels cannot receive an array of buffers, so each of the
// SLOTS tensor slots has its own arguments: output o, inputs a, b, c (each buffer
// followed by its element offset), its length n and a per-slot scalar s.
// Slot j runs on get_global_id(1) == j; dimension 0 strides over the slot's
// elements. The host only sends dense tensors whose operands share a layout,
// so element i of slot j is at offset + i in every operand.
//
// -D: SLOTS (8, 16 or 32: as many as the device's argument space holds),
//     T (input storage type), LD (its load macro), TO/STO (output storage
//     type and store macro), CT (compute type), LS (work-group size of the
//     norm kernels, a power of two), FP64. The host puts types.cl and
//     pointwise.cl (the helpers of the op expressions) first and appends one
//     FOREACH(name, expr) line per op, the expressions of
//     oclcore/ops/pointwise_table.py.
//
// Operand sources, bits of `src`: bit 0/1/2: x/y/z is the slot's scalar
// instead of memory; bit 3: p0 is the slot's scalar; bit 4/5: y/z is the
// one element at b/c + offset (a list of 0-dim tensors). The slot's scalar is
// the host value s_j, or (dev != 0) read from device memory at
// sv[sv_off + j * sv_step] (a 0-dim tensor: sv_step 0).

// FE_EACH(M) is M(0) M(1) ... M(SLOTS - 1); a parameter macro M ends in a comma.
#define FE_EACH8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define FE_EACH16(M) FE_EACH8(M) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define FE_EACH32(M)                                                         \
  FE_EACH16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25)   \
      M(26) M(27) M(28) M(29) M(30) M(31)
#if SLOTS == 32
#define FE_EACH FE_EACH32
#elif SLOTS == 16
#define FE_EACH FE_EACH16
#else
#define FE_EACH FE_EACH8
#endif

#define FE_SLOT(j)                                                           \
  __global TO *o##j, int oo##j, __global const T *a##j, int ao##j,           \
      __global const T *b##j, int bo##j, __global const T *c##j, int co##j,  \
      int n##j, CT s##j,

#define FE_PICK(j)                                                           \
  case j:                                                                    \
    o = o##j; oo = oo##j; a = a##j; ao = ao##j; b = b##j; bo = bo##j;        \
    c = c##j; co = co##j; n = n##j; s = s##j;                                \
    break;

#define FOREACH(NAME, EXPR)                                                  \
  __kernel void NAME(FE_EACH(FE_SLOT)                                        \
                     int src, CT p0_in, CT p1, CT p2,                        \
                     __global const T *sv, int sv_off, int sv_step,          \
                     int dev) {                                              \
    int j = get_global_id(1);                                                \
    __global TO *o;                                                          \
    __global const T *a, *b, *c;                                             \
    int oo, ao, bo, co, n;                                                   \
    CT s;                                                                    \
    switch (j) {                                                             \
      FE_EACH(FE_PICK)                                                       \
      default: return;                                                       \
    }                                                                        \
    if (dev) s = LD(sv, sv_off + j * sv_step);                               \
    CT p0 = (src & 8) ? s : p0_in;                                           \
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {         \
      CT x = (src & 1) ? s : LD(a, ao + i);                                  \
      CT y = (src & 2) ? s : LD(b, bo + ((src & 16) ? 0 : i));               \
      CT z = (src & 4) ? s : LD(c, co + ((src & 32) ? 0 : i));               \
      STO(o, oo + i, (EXPR));                                                \
    }                                                                        \
  }

// ---- norms: _foreach_norm ----
// kind: 0 general p (sum |x|^p, then ^(1/p)), 1 (sum |x|), 2 (sqrt of sum x^2),
// 3 inf (max |x|), 4 -inf (min |x|), 5 zero "norm" (count of non-zeros),
// 6 the largest element (_foreach_max).
// Every tensor gets `groups` work-groups; group g sums elements
// g*LS + lid + k*groups*LS in a fixed order, so results are deterministic.

inline CT norm_term(CT v, int kind, CT ord) {
  CT m = fabs(v);
  switch (kind) {
    case 0: return pow(m, ord);
    case 2: return v * v;
    case 5: return (CT)(v != 0);
    case 6: return v;
    default: return m;
  }
}

inline CT norm_combine(CT u, CT v, int kind) {
  if (kind == 3 || kind == 6) return (isnan(u) || u > v) ? u : v;  // NaN propagates like torch's max
  if (kind == 4) return (isnan(u) || u < v) ? u : v;
  return u + v;
}

inline CT norm_identity(int kind) {
  return kind == 4 ? (CT)INFINITY : (kind == 6 ? -(CT)INFINITY : (CT)0);
}

inline CT norm_final(CT acc, int kind, CT ord) {
  if (kind == 0) return pow(acc, (CT)1 / ord);
  if (kind == 2) return sqrt(acc);
  return acc;
}

// Tree reduction of each work-item's value over the group; the result in red[0].
inline CT norm_group(__local CT *red, CT acc, int kind) {
  int lid = get_local_id(0);
  red[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int w = LS / 2; w > 0; w >>= 1) {
    if (lid < w) red[lid] = norm_combine(red[lid], red[lid + w], kind);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  return red[0];
}

#define NORM_SLOT(j) __global const T *a##j, int ao##j, int n##j,
#define NORM_PICK(j) \
  case j: a = a##j; ao = ao##j; n = n##j; break;

// Part 1: groups == 1 finishes directly into out[out_off + j]; otherwise
// group g of slot j leaves its partial in part[(part_slot + j) * groups + g].
__kernel void fe_norm_partial(FE_EACH(NORM_SLOT) int kind, CT ord, int groups, __global CT *part, int part_slot,
                              __global TO *out, int out_off) {
  __local CT red[LS];
  int j = get_global_id(1);
  __global const T *a;
  int ao, n;
  switch (j) {
    FE_EACH(NORM_PICK)
    default: return;
  }
  CT acc = norm_identity(kind);
  int g = get_group_id(0);
  for (int i = g * LS + get_local_id(0); i < n; i += groups * LS)
    acc = norm_combine(acc, norm_term(LD(a, ao + i), kind, ord), kind);
  acc = norm_group(red, acc, kind);
  if (get_local_id(0) == 0) {
    if (groups == 1) STO(out, out_off + j, norm_final(acc, kind, ord));
    else part[(part_slot + j) * groups + g] = acc;
  }
}

// Part 2: one work-group per tensor combines its `groups` partials.
__kernel void fe_norm_finish(__global const CT *part, int groups, int kind, CT ord,
                             __global TO *out, int out_off) {
  __local CT red[LS];
  int t = get_group_id(0);
  CT acc = norm_identity(kind);
  for (int i = get_local_id(0); i < groups; i += LS)
    acc = norm_combine(acc, part[t * groups + i], kind);
  acc = norm_group(red, acc, kind);
  if (get_local_id(0) == 0) STO(out, out_off + t, norm_final(acc, kind, ord));
}
