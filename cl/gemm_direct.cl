// Direct GEMM (CLBlast "xgemm_direct" idea) for small and skinny problems:
//   C[b] = alpha * A[b] * B[b] + beta * C[b]   (+ optional epilogue)
// No packing: A (M x K), B (K x N) and C (M x N) are read and written through
// arbitrary (row, col, batch) strides plus element offsets, so transposes and
// non-contiguous views need no copy; every edge is checked.
// Four kernels differ only in how work-items walk the A and B tiles when
// staging them into local memory (along the source's contiguous dimension,
// for coalescing):  gemm_direct_<A along k|m>_<B along n|k>, e.g.
// gemm_direct_ak_bn for row-major A and B.  Needs gemm_common.cl.
//
// Parameters (-D): WGD (square work-group tile and K step), MDIMCD NDIMCD
// (threads), KWID (inner unroll), VWMD VWND (each thread owns runs of VWMD x
// VWND consecutive outputs; local reads are vectorised by these), PADA PADB
// (local-memory row padding against bank conflicts), GEMM_IDX (index type
// for operand addressing: int, or long for views beyond 2^31 elements).
// Split-K (-DSPLIT_K): group z along the third launch dimension multiplies
// the KC-deep chunk z % ksplit (the last one shorter) of batch entry
// z / ksplit into C slice z (a workspace that gemm_splitk.cl reduces; the
// host passes alpha 1, beta 0 and no epilogue).  Without it KC and ksplit
// are unused.
// Launch: global (ceil(M/WGD)*MDIMCD, ceil(N/WGD)*NDIMCD, batch*ksplit),
//         local (MDIMCD, NDIMCD, 1).

#ifndef WGD
#define WGD 32
#endif
#ifndef MDIMCD
#define MDIMCD 8
#endif
#ifndef NDIMCD
#define NDIMCD 8
#endif
#ifndef KWID
#define KWID 2
#endif
#ifndef VWMD
#define VWMD 1
#endif
#ifndef VWND
#define VWND 1
#endif
#ifndef PADA
#define PADA 1
#endif
#ifndef PADB
#define PADB 1
#endif
#ifndef GEMM_IDX
#define GEMM_IDX int
#endif

#define MWID (WGD / MDIMCD)
#define NWID (WGD / NDIMCD)
#define NTHREADSD (MDIMCD * NDIMCD)
#define ALDD (WGD + PADA)
#define BLDD (WGD + PADB)

#if VWMD == 1
#define DIRECT_UNPACK_M(p, dst, i) GEMM_UNPACK1(*(p), dst, i)
#else
#define DIRECT_UNPACK_M(p, dst, i) GEMM_UNPACKN(VWMD, GEMM_CAT(vload, VWMD)(0, p), dst, i)
#endif
#if VWND == 1
#define DIRECT_UNPACK_N(p, dst, i) GEMM_UNPACK1(*(p), dst, i)
#else
#define DIRECT_UNPACK_N(p, dst, i) GEMM_UNPACKN(VWND, GEMM_CAT(vload, VWND)(0, p), dst, i)
#endif

// Tile-local row of this thread's i-th output along M (runs of VWMD).
inline int direct_tile_m(const int i) {
  return (i / VWMD) * (MDIMCD * VWMD) + get_local_id(0) * VWMD + i % VWMD;
}

inline int direct_tile_n(const int i) {
  return (i / VWND) * (NDIMCD * VWND) + get_local_id(1) * VWND + i % VWND;
}

// Stages the WGD x WGD tile (rows r0.., cols c0.. of a rows x cols matrix
// with strides rs, cs) into lm[c*ld + r], zero-filling outside the matrix.
// Work-items walk along c when c_fast (source contiguous along c).
inline void direct_load_tile(__local REAL* lm, const int ld, const __global REAL* g,
                             const int rows, const int cols, const int r0, const int c0,
                             const int rs, const int cs, const int c_fast) {
  const int tid = get_local_id(0) + MDIMCD * get_local_id(1);
#pragma unroll
  for (int e = 0; e < (WGD * WGD) / NTHREADSD; e++) {
    const int idx = tid + e * NTHREADSD;
    const int r = c_fast ? idx / WGD : idx % WGD;
    const int c = c_fast ? idx % WGD : idx / WGD;
    REAL v = (REAL)0;
    if (r0 + r < rows && c0 + c < cols)
      v = g[(GEMM_IDX)(r0 + r) * rs + (GEMM_IDX)(c0 + c) * cs];
    lm[c * ld + r] = v;
  }
}

inline void gemm_direct_body(const int M, const int N, const int K, const ACC alpha, const ACC beta,
                             const __global REAL* A, const int a_rs, const int a_cs,
                             const __global REAL* B, const int b_rs, const int b_cs,
                             __global REAL* C, const int c_rs, const int c_cs,
                             const __global REAL* bias, const int bias_off,
                             __local REAL* alm, __local REAL* blm,
                             const int a_kfast, const int b_nfast) {
  const int m0 = get_group_id(0) * WGD, n0 = get_group_id(1) * WGD;
  ACC acc[NWID * MWID];
#pragma unroll
  for (int i = 0; i < NWID * MWID; i++) acc[i] = (ACC)0;
  ACC apm[MWID];
  ACC bpm[NWID];

  for (int k0 = 0; k0 < K; k0 += WGD) {
    // A is M x K: rows m, cols k -> alm[k*ALDD + m]
    direct_load_tile(alm, ALDD, A, M, K, m0, k0, a_rs, a_cs, a_kfast);
    // B is K x N seen as its transpose: rows n, cols k -> blm[k*BLDD + n]
    direct_load_tile(blm, BLDD, B, N, K, n0, k0, b_cs, b_rs, !b_nfast);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kw = 0; kw < WGD; kw += KWID) {
#pragma unroll
      for (int ki = 0; ki < KWID; ki++) {
        const int k = kw + ki;
#pragma unroll
        for (int i = 0; i < MWID / VWMD; i++)
          DIRECT_UNPACK_M(alm + k * ALDD + direct_tile_m(i * VWMD), apm, i);
#pragma unroll
        for (int j = 0; j < NWID / VWND; j++)
          DIRECT_UNPACK_N(blm + k * BLDD + direct_tile_n(j * VWND), bpm, j);
#pragma unroll
        for (int j = 0; j < NWID; j++) {
#pragma unroll
          for (int i = 0; i < MWID; i++)
            acc[j * MWID + i] = MULADD(apm[i], bpm[j], acc[j * MWID + i]);
        }
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

#pragma unroll
  for (int j = 0; j < NWID; j++) {
    const int n = n0 + direct_tile_n(j);
#pragma unroll
    for (int i = 0; i < MWID; i++) {
      const int m = m0 + direct_tile_m(i);
      if (m < M && n < N)
        gemm_store(C, (long)m * c_rs + (long)n * c_cs, acc[j * MWID + i], alpha, beta, m, n,
                   bias, bias_off);
    }
  }
}

#ifdef SPLIT_K
#define DIRECT_CHUNK(z)                                                                     \
  const long batch = (z) / ksplit, chunk = ((z) - batch * ksplit) * (long)KC;              \
  const int depth = min(KC, K - (int)chunk);
#else
// Without split-K the chunk arithmetic is left out (as in gemm_tiled.cl).
#define DIRECT_CHUNK(z) const long batch = (z), chunk = 0; const int depth = K;
#endif

#define GEMM_DIRECT_KERNEL(NAME, A_KFAST, B_NFAST)                                          \
  __kernel __attribute__((reqd_work_group_size(MDIMCD, NDIMCD, 1))) void NAME(              \
      const int M, const int N, const int K, const int KC, const ACC alpha, const ACC beta, \
      const __global REAL* A, const int a_off, const int a_rs, const int a_cs, const int a_bs, \
      const __global REAL* B, const int b_off, const int b_rs, const int b_cs, const int b_bs, \
      __global REAL* C, const int c_off, const int c_rs, const int c_cs, const int c_bs,    \
      const __global REAL* bias, const int bias_off, const int ksplit) {                    \
    __local REAL alm[WGD * ALDD];                                                           \
    __local REAL blm[WGD * BLDD];                                                           \
    const long z = get_group_id(2);                                                         \
    DIRECT_CHUNK(z)                                                                         \
    gemm_direct_body(M, N, depth, alpha, beta, A + a_off + batch * a_bs + chunk * a_cs,     \
                     a_rs, a_cs, B + b_off + batch * b_bs + chunk * b_rs, b_rs, b_cs,       \
                     C + c_off + z * c_bs, c_rs, c_cs, bias, bias_off, alm, blm, A_KFAST,   \
                     B_NFAST);                                                              \
  }

GEMM_DIRECT_KERNEL(gemm_direct_ak_bn, 1, 1)
GEMM_DIRECT_KERNEL(gemm_direct_ak_bk, 1, 0)
GEMM_DIRECT_KERNEL(gemm_direct_am_bn, 0, 1)
GEMM_DIRECT_KERNEL(gemm_direct_am_bk, 0, 0)
