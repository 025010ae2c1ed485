// Matrix factorizations and solves: LU with partial pivoting, Cholesky,
// triangular solves, row interchanges, unpacking and determinants.
// -D (from dtypes.kernel_defines): CT (float or double, the element type),
// FP64 for double. Built together with types.cl (INT8_AT).
//
// Matrices are addressed as base + row * rs + col * cs, so any transposed or
// strided view works. A kernel's "own" matrix (one it writes) has one batch
// stride; read-only operands that may be broadcast views carry their batch
// geometry as int8 vectors (sizes of the output's batch dims, the operand's
// strides in them, 0 where it is broadcast).

// Products and sums rounded separately, as LAPACK's reference loops do: with
// contraction into fma, exactly singular inputs (e.g. 4 - (2/3) * 6) leave a
// tiny nonzero pivot instead of torch's zero, and info would differ.
#pragma OPENCL FP_CONTRACT OFF

#define LOCAL_AND_GLOBAL (CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)

#ifdef FP64
#define SAFE_MIN DBL_MIN
#else
#define SAFE_MIN FLT_MIN
#endif

// Element offset of batch element b of an operand: b is split over the
// batch sizes (last dim fastest) and each index weighted by the stride.
inline long batch_offset(long b, int nd, int8 sizes, int8 strides) {
  long off = 0;
#pragma unroll
  for (int d = 7; d >= 0; --d) {
    if (d < nd) {
      long s = INT8_AT(sizes, d);
      off += (b % s) * INT8_AT(strides, d);
      b /= s;
    }
  }
  return off;
}

// LAPACK's pivot choice (idamax): the first element of largest magnitude;
// a NaN wins only in the first position (nothing compares greater to it).
inline CT pivot_key(CT v, int first) {
  return isnan(v) ? (first ? (CT)INFINITY : (CT)(-1)) : fabs(v);
}

// Unblocked right-looking LU with partial pivoting of the panel of columns
// [k0, k1) of each m x n matrix (one work-group per matrix): rows are chosen
// among [k, m), swapped within columns [k0, c1), and the elimination
// updates columns up to c1 (n for a whole-matrix factorization, k1 when a
// blocked caller updates the rest with GEMM). pivots (1-based, batch
// contiguous with stride piv_bs) and info (first zero pivot, 1-based; kept
// when already set by an earlier panel) as LAPACK's getrf.
// Local memory: a key and a row per work-item; the work-group size is a
// power of 2.
__kernel void lu_panel(__global CT* a, long off, long bs, long rs, long cs, int m, int k0, int k1, int c1,
                       __global int* pivots, long piv_bs, __global int* info, __local CT* keys,
                       __local int* rows) {
  long b = get_group_id(0);
  __global CT* A = a + off + b * bs;
  int lid = get_local_id(0), lsz = get_local_size(0);
  int first_zero = info[b];
  for (int k = k0; k < k1; ++k) {
    CT best = (CT)(-2);
    int best_row = m;
    for (int i = k + lid; i < m; i += lsz) {
      CT key = pivot_key(A[i * rs + k * cs], i == k);
      if (key > best) {
        best = key;
        best_row = i;
      }
    }
    keys[lid] = best;
    rows[lid] = best_row;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = lsz >> 1; s > 0; s >>= 1) {
      if (lid < s) {
        CT other = keys[lid + s];
        int other_row = rows[lid + s];
        if (other > keys[lid] || (other == keys[lid] && other_row < rows[lid])) {
          keys[lid] = other;
          rows[lid] = other_row;
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    int p = rows[0];
    CT pivot = A[p * rs + k * cs];
    barrier(LOCAL_AND_GLOBAL);  // everyone has the pivot before the rows swap
    if (lid == 0) {
      pivots[b * piv_bs + k] = p + 1;
      if (pivot == (CT)0 && first_zero == 0) first_zero = k + 1;
    }
    if (p != k) {
      for (int j = k0 + lid; j < c1; j += lsz) {
        CT t = A[k * rs + j * cs];
        A[k * rs + j * cs] = A[p * rs + j * cs];
        A[p * rs + j * cs] = t;
      }
    }
    barrier(LOCAL_AND_GLOBAL);
    if (pivot != (CT)0) {
      // as getrf2: multiply by the reciprocal unless it would overflow
      CT inv = (CT)1 / pivot;
      bool tiny = fabs(pivot) < SAFE_MIN;
      for (int i = k + 1 + lid; i < m; i += lsz) {
        CT v = A[i * rs + k * cs];
        A[i * rs + k * cs] = tiny ? v / pivot : v * inv;
      }
    }
    barrier(LOCAL_AND_GLOBAL);
    // rank-1 update of the trailing rows and columns, one row per work-item
    // (neighbouring rows are neighbours in memory in torch's column-major LU),
    // or one column per work-item when the block is wider than tall
    if (m - k >= c1 - k) {
      for (int i = k + 1 + lid; i < m; i += lsz) {
        CT l = A[i * rs + k * cs];
        for (int j = k + 1; j < c1; ++j) A[i * rs + j * cs] -= l * A[k * rs + j * cs];
      }
    } else {
      for (int j = k + 1 + lid; j < c1; j += lsz) {
        CT u = A[k * rs + j * cs];
        for (int i = k + 1; i < m; ++i) A[i * rs + j * cs] -= A[i * rs + k * cs] * u;
      }
    }
    barrier(LOCAL_AND_GLOBAL);
  }
  if (lid == 0) info[b] = first_zero;
}

// Row interchanges (LAPACK laswp) on columns [c0, c0 + ncols) of each
// matrix: for i in [k0, k1) (in reverse order when `reverse`), rows i and
// pivots[i] - 1 swap. One work-item per (matrix, column). Pivots out of
// range (not from a factorization) are ignored rather than read past.
__kernel void lu_swap_rows(__global CT* a, long off, long bs, long rs, long cs, int c0, int ncols, int m,
                           __global const int* pivots, long piv_off, int nd, int8 sizes, int8 piv_bs, long piv_s,
                           int k0, int k1, int reverse, long total) {
  long g = get_global_id(0);
  if (g >= total) return;
  long b = g / ncols;
  int c = c0 + (int)(g % ncols);
  __global CT* col = a + off + b * bs + c * cs;
  __global const int* piv = pivots + piv_off + batch_offset(b, nd, sizes, piv_bs);
  for (int step = 0; step < k1 - k0; ++step) {
    int i = reverse ? k1 - 1 - step : k0 + step;
    int p = piv[i * piv_s] - 1;
    if (p != i && p >= 0 && p < m) {
      CT t = col[i * rs];
      col[i * rs] = col[p * rs];
      col[p * rs] = t;
    }
  }
}

// Triangular solve in place, one work-item per (matrix, right-hand column):
// x <- A^-1 x for an n x n lower or upper triangular A (unit: its diagonal
// taken as ones). A may be a broadcast view (batch geometry nd/sizes/a_bs).
__kernel void trsm_columns(__global const CT* a, long a_off, int nd, int8 sizes, int8 a_bs, long a_rs, long a_cs,
                           __global CT* x, long x_off, long x_bs, long x_rs, long x_cs, int n, int ncols,
                           int lower, int unit, long total) {
  long g = get_global_id(0);
  if (g >= total) return;
  long b = g / ncols;
  int c = (int)(g % ncols);
  __global const CT* A = a + a_off + batch_offset(b, nd, sizes, a_bs);
  __global CT* X = x + x_off + b * x_bs + c * x_cs;
  for (int step = 0; step < n; ++step) {
    int i = lower ? step : n - 1 - step;
    CT s = X[i * x_rs];
    if (lower) {
      for (int j = 0; j < i; ++j) s -= A[i * a_rs + j * a_cs] * X[j * x_rs];
    } else {
      for (int j = i + 1; j < n; ++j) s -= A[i * a_rs + j * a_cs] * X[j * x_rs];
    }
    X[i * x_rs] = unit ? s : s / A[i * a_rs + i * a_cs];
  }
}

// Left-looking Cholesky (LAPACK potf2's order, so a failure leaves the same
// values) of columns [k0, k1) of each n x n matrix's lower triangle, one
// work-group per matrix; contributions of columns before k0 are already
// subtracted (by a blocked caller's GEMM), so dot products start at k0.
// On the first non-positive (or NaN) pivot d of column j: d is stored at
// (j, j), info = j + 1, and nothing more is done for that matrix (nor by
// later panels).
__kernel void cholesky_panel(__global CT* a, long off, long bs, long rs, long cs, int n, int k0, int k1,
                             __global int* info) {
  long b = get_group_id(0);
  if (info[b] != 0) return;
  __global CT* A = a + off + b * bs;
  int lid = get_local_id(0), lsz = get_local_size(0);
  for (int j = k0; j < k1; ++j) {
    CT d = A[j * rs + j * cs];
    for (int k = k0; k < j; ++k) d -= A[j * rs + k * cs] * A[j * rs + k * cs];
    barrier(LOCAL_AND_GLOBAL);  // everyone has read (j, j) before it is written
    if (!(d > (CT)0)) {
      if (lid == 0) {
        A[j * rs + j * cs] = d;
        info[b] = j + 1;
      }
      return;
    }
    CT diag = sqrt(d);
    for (int i = j + 1 + lid; i < n; i += lsz) {
      CT s = A[i * rs + j * cs];
      for (int k = k0; k < j; ++k) s -= A[i * rs + k * cs] * A[j * rs + k * cs];
      A[i * rs + j * cs] = s / diag;
    }
    if (lid == 0) A[j * rs + j * cs] = diag;
    barrier(LOCAL_AND_GLOBAL);
  }
}

// Zeroes the strict upper triangle of each n x n matrix (one work-item per
// element of it, flattened over the matrices).
__kernel void zero_upper(__global CT* a, long off, long bs, long rs, long cs, int n, long total) {
  long g = get_global_id(0);
  if (g >= total) return;
  long per = (long)n * n;
  long b = g / per;
  int r = (int)((g % per) / n), c = (int)(g % n);
  if (c > r) a[off + b * bs + r * rs + c * cs] = (CT)0;
}

// The permutation matrix of each set of LU pivots, one work-item per matrix
// element: P[r, c] = 1 where row c of L U is row r of A, else 0. The
// permutation is rebuilt per element from the k pivots (m small enough for
// a factorization makes this cheap compared with the factorization).
__kernel void lu_permutation(__global const int* pivots, long piv_off, int nd, int8 sizes, int8 piv_bs, long piv_s,
                             int m, int k, __global CT* p, long p_off, long p_bs, long p_rs, long p_cs, long total) {
  long g = get_global_id(0);
  if (g >= total) return;
  long per = (long)m * m;
  long b = g / per;
  int r = (int)((g % per) / m), c = (int)(g % m);
  __global const int* piv = pivots + piv_off + batch_offset(b, nd, sizes, piv_bs);
  // follow position c through the swaps: the row of A that ends at position c
  int row = c;
  for (int i = k - 1; i >= 0; --i) {
    int q = piv[i * piv_s] - 1;
    if (q < 0 || q >= m) continue;
    if (row == i) row = q;
    else if (row == q) row = i;
  }
  p[p_off + b * p_bs + r * p_rs + c * p_cs] = row == r ? (CT)1 : (CT)0;
}

// L (rows x cols, unit lower: the strict lower part of LU, ones on the
// diagonal) or U (upper: the upper part) out of a packed LU, one work-item
// per output element. The LU operand may be a broadcast view.
__kernel void lu_triangle(__global const CT* lu, long lu_off, int nd, int8 sizes, int8 lu_bs, long lu_rs, long lu_cs,
                          __global CT* out, long o_off, long o_bs, long o_rs, long o_cs, int rows, int cols,
                          int upper, long total) {
  long g = get_global_id(0);
  if (g >= total) return;
  long per = (long)rows * cols;
  long b = g / per;
  int r = (int)((g % per) / cols), c = (int)(g % cols);
  CT v = lu[lu_off + batch_offset(b, nd, sizes, lu_bs) + r * lu_rs + c * lu_cs];
  CT value = upper ? (c >= r ? v : (CT)0) : (c < r ? v : (c == r ? (CT)1 : (CT)0));
  out[o_off + b * o_bs + r * o_rs + c * o_cs] = value;
}

// Determinant from LU, one work-item per matrix: the diagonal's product
// times the permutation's sign (-1 per pivot that swapped). With `log_form`
// it writes sign (the permutation's sign times the diagonal signs, 0 when
// one is 0 or NaN) and log|det| (the sum of log|u_ii|) instead.
__kernel void lu_determinant(__global const CT* lu, long lu_off, long lu_bs, long lu_rs, long lu_cs,
                             __global const int* pivots, long piv_off, long piv_bs, int n, int log_form,
                             __global CT* det, long det_off, __global CT* logabs, long log_off, long count) {
  long b = get_global_id(0);
  if (b >= count) return;
  __global const CT* A = lu + lu_off + b * lu_bs;
  __global const int* piv = pivots + piv_off + b * piv_bs;
  CT perm_sign = (CT)1;
  for (int i = 0; i < n; ++i)
    if (piv[i] != i + 1) perm_sign = -perm_sign;
  if (!log_form) {
    CT prod = (CT)1;
    for (int i = 0; i < n; ++i) prod *= A[i * lu_rs + i * lu_cs];
    det[det_off + b] = perm_sign * prod;
    return;
  }
  CT sign = perm_sign, sum = (CT)0;
  for (int i = 0; i < n; ++i) {
    CT u = A[i * lu_rs + i * lu_cs];
    sign *= (CT)((u > (CT)0) - (u < (CT)0));
    sum += log(fabs(u));
  }
  det[det_off + b] = sign;
  logabs[log_off + b] = sum;
}

// info = 1-based index of the first zero on the diagonal of each n x n
// matrix (0 when none), one work-item per matrix: the check LAPACK's potri
// and trtri make before inverting.
__kernel void diagonal_zero_info(__global const CT* a, long off, long bs, long rs, long cs, int n,
                                 __global int* info, long count) {
  long b = get_global_id(0);
  if (b >= count) return;
  int first = 0;
  for (int i = n - 1; i >= 0; --i)
    if (a[off + b * bs + i * rs + i * cs] == (CT)0) first = i + 1;
  info[b] = first;
}
