// Inclusive scans (cumsum, cumprod, logcumsumexp, cummax, cummin) along one dim of a strided tensor.
// Built in the same program as cl/reduce.cl (same -D set; uses its locate()).
//
// Row q (of nrows) is a point of the kept dims (krank, ksz, strides kin and
// kout); its D elements are din / dout apart. One work-item scans one row in
// order, accumulating in CT. op: 0 cumsum, 1 cumprod, 2 logcumsumexp, 3 cummax, 4 cummin; the
// last two also write each element's source position to pos (laid out like out, from p_off).

#ifdef CT_IS_INT
#define SCAN_NAN(v) 0
#else
#define SCAN_NAN(v) isnan(v)
// log(exp(a) + exp(b)) as torch's logcumsumexp forms it (NaN in, NaN out; equal infinities kept).
inline CT log_add_exp(CT a, CT b) {
  if (isnan(a) || isnan(b)) return (CT)NAN;
  CT lo = fmin(a, b), hi = fmax(a, b);
  return (lo != hi || isfinite(lo)) ? hi + log1p(exp(lo - hi)) : a;
}
#endif

__kernel void scan(__global TO* out, IDX o_off, __global const TI* in, IDX i_off, IDX nrows,
                   IDX D, int krank, int8 ksz, int8 kin, int8 kout, IDX din, IDX dout, int op,
                   __global long* pos, IDX p_off) {
  const IDX q = get_global_id(0);
  if (q >= nrows) return;
  const IDX ib = i_off + locate(q, krank, ksz, kin);
  const IDX ob = locate(q, krank, ksz, kout);
  CT v = op == 1 ? (CT)1 : (CT)0;
  long at = 0;
#ifndef CT_IS_INT
  if (op == 2) v = -(CT)INFINITY;
#endif
  if (op >= 3 && D) v = LDI(in, ib);
  for (IDX d = 0; d < D; d++) {
    CT x = LDI(in, ib + d * din);
    if (op == 0) v += x;
    else if (op == 1) v *= x;
#ifndef CT_IS_INT
    else if (op == 2) v = log_add_exp(v, x);
#endif
    else if (SCAN_NAN(x) || (!SCAN_NAN(v) && (op == 3 ? x >= v : x <= v))) {  // (ties: the later position)
      v = x;
      at = d;
    }
    STO(out, o_off + ob + d * dout, v);
    if (op >= 3) pos[p_off + ob + d * dout] = at;
  }
}
