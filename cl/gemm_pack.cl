// Packing of a strided (batched) matrix into the padded "K-major" layout the
// tiled GEMM reads:  dst[b*dst_bs + j*dst_ld + i] = src[b*sb + i*si + j*sj]
// for i < I, j < J, and 0 in the padding up to Ip x Jp.  For A (M x K) i is m
// and j is k; for B (K x N) i is n and j is k.
// Needs gemm_common.cl.  PACK_TILE: work-group edge (launch PACK_TILE^2).

#ifndef PACK_TILE
#define PACK_TILE 16
#endif

// Source contiguous (or strided) along i: read and write along i directly.
__kernel __attribute__((reqd_work_group_size(PACK_TILE, PACK_TILE, 1)))
void gemm_pack_copy(const int I, const int J, const int Ip, const int Jp,
                    const __global REAL* restrict src, const int src_off,
                    const int si, const int sj, const int sb,
                    __global REAL* restrict dst, const int dst_off,
                    const int dst_ld, const int dst_bs) {
  const int i = get_global_id(0), j = get_global_id(1);
  const long b = get_group_id(2);
  if (i < Ip && j < Jp) {
    REAL v = (REAL)0;
    if (i < I && j < J) v = src[src_off + b * sb + (long)i * si + (long)j * sj];
    dst[dst_off + b * dst_bs + (long)j * dst_ld + i] = v;
  }
}

// Source contiguous along j: transpose through local memory so that both the
// reads (along j) and the writes (along i) are coalesced.
__kernel __attribute__((reqd_work_group_size(PACK_TILE, PACK_TILE, 1)))
void gemm_pack_transpose(const int I, const int J, const int Ip, const int Jp,
                         const __global REAL* restrict src, const int src_off,
                         const int si, const int sj, const int sb,
                         __global REAL* restrict dst, const int dst_off,
                         const int dst_ld, const int dst_bs) {
  __local REAL tile[PACK_TILE][PACK_TILE + 1];
  const int lx = get_local_id(0), ly = get_local_id(1);
  const int i0 = get_group_id(0) * PACK_TILE, j0 = get_group_id(1) * PACK_TILE;
  const long b = get_group_id(2);
  {
    const int i = i0 + ly, j = j0 + lx;
    REAL v = (REAL)0;
    if (i < I && j < J) v = src[src_off + b * sb + (long)i * si + (long)j * sj];
    tile[ly][lx] = v;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const int i = i0 + lx, j = j0 + ly;
  if (i < Ip && j < Jp) dst[dst_off + b * dst_bs + (long)j * dst_ld + i] = tile[lx][ly];
}
