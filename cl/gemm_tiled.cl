// Tiled GEMM (CLBlast "xgemm" style, GEMMK=0):
//   C[b] = alpha * A[b] * B[b] + beta * C[b]   (+ optional epilogue)
// Each operand is read either from a pre-packed (gemm_pack.cl) padded
// K-major buffer or in place from the caller's tensor:
//   A_KCONT=0: a[k*a_ld + m] (packed, or the caller's M-contiguous matrix)
//   A_KCONT=1: a[m*a_ld + k] (the caller's K-contiguous matrix; needs SA)
// and likewise B (B_KCONT=1: b[n*b_ld + k]; needs SB).  K-contiguous
// operands are transposed while they are staged into local memory, so the
// row-major layouts of linear layers need no packing pass.  For A_KCONT=0,
// a_off, a_ld and a_bs must be multiples of VWM (B: VWN) so that the vector
// loads are aligned.  GUARD=1 bounds-checks the staged loads against M, N, K
// (zero fill), for in-place operands whose sizes are not multiples of the
// tile; without it every operand must cover the padded tile grid.  C is
// written with arbitrary strides and edge checks against M, N.  Needs
// gemm_common.cl.
// The loop runs over KC (a multiple of KWG) of depth.  Split-K (-DSPLIT_K,
// ksplit > 1): group z along the third launch dimension multiplies the KC-deep
// chunk z % ksplit of batch entry z / ksplit into C slice z (a workspace that
// gemm_splitk.cl reduces).
//
// Parameters (-D): MWG NWG KWG (work-group tile), MDIMC NDIMC (threads),
// MDIMA NDIMB (threads along M/N when staging A/B into local memory), KWI
// (inner unroll), VWM VWN (vector widths), STRM STRN (0: each thread owns
// consecutive vectors, 1: vectors strided by MDIMC/NDIMC), SA SB (stage A/B
// in local memory).
// Launch: global (ceil(M/MWG)*MDIMC, ceil(N/NWG)*NDIMC, batch*ksplit), local (MDIMC, NDIMC, 1).

#ifndef MWG
#define MWG 64
#endif
#ifndef NWG
#define NWG 64
#endif
#ifndef KWG
#define KWG 16
#endif
#ifndef MDIMC
#define MDIMC 8
#endif
#ifndef NDIMC
#define NDIMC 8
#endif
#ifndef MDIMA
#define MDIMA MDIMC
#endif
#ifndef NDIMB
#define NDIMB NDIMC
#endif
#ifndef KWI
#define KWI 2
#endif
#ifndef VWM
#define VWM 4
#endif
#ifndef VWN
#define VWN 4
#endif
#ifndef STRM
#define STRM 0
#endif
#ifndef STRN
#define STRN 0
#endif
#ifndef SA
#define SA 1
#endif
#ifndef SB
#define SB 1
#endif

#ifndef A_KCONT
#define A_KCONT 0
#endif
#ifndef B_KCONT
#define B_KCONT 0
#endif
#ifndef GUARD
#define GUARD 0
#endif

#if (A_KCONT && !SA) || (B_KCONT && !SB)
#error "K-contiguous operands are read through local memory (SA/SB)"
#endif

#define MWI (MWG / MDIMC)
#define NWI (NWG / NDIMC)
#define KDIMA ((MDIMC * NDIMC) / MDIMA)
#define KDIMB ((MDIMC * NDIMC) / NDIMB)
#define MWA (MWG / MDIMA)
#define KWA (KWG / KDIMA)
#define NWB (NWG / NDIMB)
#define KWB (KWG / KDIMB)
#define THREADS (MDIMC * NDIMC)
// K-contiguous staging: 8 threads along k read 32 consecutive bytes of a row,
// the rest spread over rows.  The local rows are padded so that a warp's
// transposed stores (8 k x 4 rows) fall into distinct banks.
#define KLANES 8
#define PADV(VW) ((VW) >= 4 ? 1 : 4 / (VW))
#define ALDV (MWG / VWM + A_KCONT * PADV(VWM))   // local A row length in vectors
#define BLDV (NWG / VWN + B_KCONT * PADV(VWN))

#if VWM == 1
typedef REAL realM;
#define UNPACK_M(v, dst, i) GEMM_UNPACK1(v, dst, i)
#else
typedef GEMM_CAT(REAL, VWM) realM;
#define UNPACK_M(v, dst, i) GEMM_UNPACKN(VWM, v, dst, i)
#endif
#if VWN == 1
typedef REAL realN;
#define UNPACK_N(v, dst, i) GEMM_UNPACK1(v, dst, i)
#else
typedef GEMM_CAT(REAL, VWN) realN;
#define UNPACK_N(v, dst, i) GEMM_UNPACKN(VWN, v, dst, i)
#endif

// Index (in vectors) inside the MWG tile of this thread's mi-th A vector.
inline int tiled_vec_m(const int mi) {
#if STRM == 0
  return mi + get_local_id(0) * (MWI / VWM);
#else
  return get_local_id(0) + mi * MDIMC;
#endif
}

inline int tiled_vec_n(const int ni) {
#if STRN == 0
  return ni + get_local_id(1) * (NWI / VWN);
#else
  return get_local_id(1) + ni * NDIMC;
#endif
}

__kernel __attribute__((reqd_work_group_size(MDIMC, NDIMC, 1)))
void gemm_tiled(const int M, const int N, const int K, const int KC, const ACC alpha, const ACC beta,
                const __global REAL* restrict A, const int a_off, const int a_ld, const int a_bs,
                const __global REAL* restrict B, const int b_off, const int b_ld, const int b_bs,
                __global REAL* C, const int c_off, const int c_rs, const int c_cs, const int c_bs,
                const __global REAL* restrict bias, const int bias_off, const int ksplit) {
  // Split-K: group z computes K chunk s (KC deep) of batch entry z / ksplit
  // and writes C slice z; with ksplit == 1 it is the whole product of batch z.
  const long z = get_group_id(2);
#ifdef SPLIT_K
  const long batch = z / ksplit, chunk = (long)(z - batch * ksplit) * KC;
#else
  // Without split-K the chunk arithmetic is left out entirely: on an H200 it cost 16% of the
  // tiled kernel's speed at 4096^3 (ksplit is then 1 and unused).
  const long batch = z, chunk = 0;
#endif
#if A_KCONT
  const __global REAL* restrict ag = A + a_off + batch * a_bs + chunk;
#else
  const __global realM* restrict agm =
      (const __global realM*)(A + a_off + batch * a_bs + chunk * a_ld);
#endif
#if B_KCONT
  const __global REAL* restrict bg = B + b_off + batch * b_bs + chunk;
#else
  const __global realN* restrict bgm =
      (const __global realN*)(B + b_off + batch * b_bs + chunk * b_ld);
#endif
  const int a_ldv = a_ld / VWM, b_ldv = b_ld / VWN;
#if GUARD
  // Depth left in this chunk's operands.  (Checking every staged load costs
  // about 20% on an H200; the planner packs large problems instead.  Checking
  // only edge tiles, through inlined staging functions, made even unchecked
  // plans 15% slower there, for reasons not found.)
  const int krest = K - (int)chunk;
#endif
  const int gm = get_group_id(0) * (MWG / VWM);  // first A vector of this tile
  const int gn = get_group_id(1) * (NWG / VWN);
  const int tid = get_local_id(0) + MDIMC * get_local_id(1);
#if SA
  __local realM alm[KWG * ALDV];
#endif
#if SB
  __local realN blm[KWG * BLDV];
#endif

  ACC acc[NWI * MWI];
#pragma unroll
  for (int i = 0; i < NWI * MWI; i++) acc[i] = (ACC)0;
  ACC apm[MWI];
  ACC bpm[NWI];

  for (int kwg = 0; kwg < KC; kwg += KWG) {
#if SA && A_KCONT
    {
      __local REAL* als = (__local REAL*)alm;
      const int lk = tid % KLANES, lr = tid / KLANES;
#pragma unroll
      for (int jr = 0; jr < MWG / (THREADS / KLANES); jr++) {
#pragma unroll
        for (int jk = 0; jk < KWG / KLANES; jk++) {
          const int r = lr + jr * (THREADS / KLANES), k = lk + jk * KLANES;
          const int m = gm * VWM + r;
#if GUARD
          const REAL v = (m < M && kwg + k < krest) ? ag[m * a_ld + kwg + k] : (REAL)0;
#else
          const REAL v = ag[m * a_ld + kwg + k];
#endif
          als[k * (ALDV * VWM) + r] = v;
        }
      }
    }
#elif SA
    {
      const int la0 = tid % MDIMA, la1 = tid / MDIMA;
#pragma unroll
      for (int mia = 0; mia < MWA / VWM; mia++) {
#pragma unroll
        for (int kia = 0; kia < KWA; kia++) {
#if STRM == 0
          const int mg = mia + la0 * (MWA / VWM);
#else
          const int mg = la0 + mia * MDIMA;
#endif
          const int kg = kia + la1 * KWA;
#if GUARD
          const realM v = ((gm + mg) * VWM < M && kwg + kg < krest)
                              ? agm[(kwg + kg) * a_ldv + gm + mg] : (realM)0;
#else
          const realM v = agm[(kwg + kg) * a_ldv + gm + mg];
#endif
          alm[kg * ALDV + mg] = v;
        }
      }
    }
#endif
#if SB && B_KCONT
    {
      __local REAL* bls = (__local REAL*)blm;
      const int lk = tid % KLANES, lr = tid / KLANES;
#pragma unroll
      for (int jr = 0; jr < NWG / (THREADS / KLANES); jr++) {
#pragma unroll
        for (int jk = 0; jk < KWG / KLANES; jk++) {
          const int r = lr + jr * (THREADS / KLANES), k = lk + jk * KLANES;
          const int n = gn * VWN + r;
#if GUARD
          const REAL v = (n < N && kwg + k < krest) ? bg[n * b_ld + kwg + k] : (REAL)0;
#else
          const REAL v = bg[n * b_ld + kwg + k];
#endif
          bls[k * (BLDV * VWN) + r] = v;
        }
      }
    }
#elif SB
    {
      const int lb0 = tid % NDIMB, lb1 = tid / NDIMB;
#pragma unroll
      for (int nib = 0; nib < NWB / VWN; nib++) {
#pragma unroll
        for (int kib = 0; kib < KWB; kib++) {
#if STRN == 0
          const int ng = nib + lb0 * (NWB / VWN);
#else
          const int ng = lb0 + nib * NDIMB;
#endif
          const int kg = kib + lb1 * KWB;
#if GUARD
          const realN v = ((gn + ng) * VWN < N && kwg + kg < krest)
                              ? bgm[(kwg + kg) * b_ldv + gn + ng] : (realN)0;
#else
          const realN v = bgm[(kwg + kg) * b_ldv + gn + ng];
#endif
          blm[kg * BLDV + ng] = v;
        }
      }
    }
#endif
#if SA || SB
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    for (int pwi = 0; pwi < KWG; pwi += KWI) {
#pragma unroll
      for (int pit = 0; pit < KWI; pit++) {
        const int k = pwi + pit;
#pragma unroll
        for (int mi = 0; mi < MWI / VWM; mi++) {
#if SA
          const realM v = alm[k * ALDV + tiled_vec_m(mi)];
#else
          const realM v = agm[(kwg + k) * a_ldv + gm + tiled_vec_m(mi)];
#endif
          UNPACK_M(v, apm, mi);
        }
#pragma unroll
        for (int ni = 0; ni < NWI / VWN; ni++) {
#if SB
          const realN v = blm[k * BLDV + tiled_vec_n(ni)];
#else
          const realN v = bgm[(kwg + k) * b_ldv + gn + tiled_vec_n(ni)];
#endif
          UNPACK_N(v, bpm, ni);
        }
#pragma unroll
        for (int ni = 0; ni < NWI; ni++) {
#pragma unroll
          for (int mi = 0; mi < MWI; mi++) {
            acc[ni * MWI + mi] = MULADD(apm[mi], bpm[ni], acc[ni * MWI + mi]);
          }
        }
      }
    }
#if SA || SB
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
  }

  __global REAL* cg = C + c_off + z * c_bs;
  const int m0 = get_group_id(0) * MWG, n0 = get_group_id(1) * NWG;
#pragma unroll
  for (int ni = 0; ni < NWI; ni++) {
    const int n = n0 + tiled_vec_n(ni / VWN) * VWN + ni % VWN;
#pragma unroll
    for (int mi = 0; mi < MWI; mi++) {
      const int m = m0 + tiled_vec_m(mi / VWM) * VWM + mi % VWM;
      if (m < M && n < N) {
        gemm_store(cg, (long)m * c_rs + (long)n * c_cs, acc[ni * MWI + mi],
                   alpha, beta, m, n, bias, bias_off);
      }
    }
  }
}
