// Inclusive scans (cumsum, cumprod) along one dim of a strided tensor.
// Built in the same program as cl/reduce.cl (same -D set; uses its locate()).
//
// Row q (of nrows) is a point of the kept dims (krank, ksz, strides kin and
// kout); its D elements are din / dout apart. One work-item scans one row in
// order, accumulating in CT. op: 0 cumsum, 1 cumprod.

__kernel void scan(__global TO* out, IDX o_off, __global const TI* in, IDX i_off, IDX nrows,
                   IDX D, int krank, int8 ksz, int8 kin, int8 kout, IDX din, IDX dout, int op) {
  const IDX q = get_global_id(0);
  if (q >= nrows) return;
  const IDX ib = i_off + locate(q, krank, ksz, kin);
  const IDX ob = o_off + locate(q, krank, ksz, kout);
  CT v = op ? (CT)1 : (CT)0;
  for (IDX d = 0; d < D; d++) {
    CT x = LDI(in, ib + d * din);
    v = op ? v * x : v + x;
    STO(out, ob + d * dout, v);
  }
}
