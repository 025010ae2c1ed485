// Split-K reduction: the tiled kernel wrote S partial products of each batch
// entry over consecutive K chunks into the workspace
//   W[((b*S + s)*N + n)*M + m]
// and this kernel sums them in the fixed order s = 0..S-1 (deterministic),
// then applies alpha, beta*C and the epilogue through gemm_store.
// Needs gemm_common.cl.
// Launch: global (ceil(M, lx), ceil(N, ly), batch), any local size.

__kernel void gemm_splitk_reduce(const int M, const int N, const int S, const ACC alpha,
                                 const ACC beta, const __global REAL* restrict W,
                                 __global REAL* C, const int c_off, const int c_rs,
                                 const int c_cs, const int c_bs,
                                 const __global REAL* restrict bias, const int bias_off) {
  const int m = get_global_id(0), n = get_global_id(1);
  const long b = get_global_id(2);
  if (m >= M || n >= N) return;
  const long slice = (long)M * N;
  const __global REAL* w = W + b * S * slice + (long)n * M + m;
  ACC acc = (ACC)0;
  for (int s = 0; s < S; s++) acc += (ACC)w[s * slice];
  gemm_store(C + c_off + b * c_bs, (long)m * c_rs + (long)n * c_cs, acc, alpha, beta, m, n,
             bias, bias_off);
}
