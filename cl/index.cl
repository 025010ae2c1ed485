// Indexing kernels: gathers through strides and index tensors, destination
// offsets for scatters, triangles, nonzero.
//
// One program per tensor dtype, specialised by -D (types.cl comes first):
//   TO, CT, LDX, STX  storage type, compute type, load and store macros of the dtype
//   TM                an unsigned type of the dtype's size: data is moved as bits
//   CT_IS_INT, FP64   as in pointwise.cl
// Geometry: up to 8 dims (collapsed by the host), sizes `sz` and one stride
// vector per operand, all in elements; offsets and counts are long.
// Index values are int64. A bad index is recorded in `err` (err[0] = 1,
// err[1] = the value, err[2] = the dim size) and replaced by 0 so that no
// kernel ever reads or writes outside its buffers; the host raises later.

// Adds element i's offset along the collapsed dims to o0, o1, o2.
inline void locate3(long i, int rank, int8 sz, int8 s0, int8 s1, int8 s2, long* o0, long* o1, long* o2) {
  long r = i;
#pragma unroll
  for (int d = 7; d >= 0; d--) {
    if (d < rank) {
      const long s = INT8_AT(sz, d), q = r % s;
      r /= s;
      *o0 += q * INT8_AT(s0, d);
      *o1 += q * INT8_AT(s1, d);
      *o2 += q * INT8_AT(s2, d);
    }
  }
}

// Index value v checked against a dim of `size` (size < 0: not checked);
// negative values count from the end when `wrap` is set.
inline long checked_index(long v, long size, int wrap, __global long* err) {
  if (size < 0) return v;
  long w = (wrap && v < 0) ? v + size : v;
  if (w < 0 || w >= size) {
    err[1] = v;
    err[2] = size;
    err[0] = 1;
    return 0;
  }
  return w;
}

// out[i] = src[strided offset of i + index value * dim_stride]; without an
// index (use_idx == 0) a plain strided copy (flip: negative strides).
__kernel void gather(__global TM* out, long o_off, __global const TM* src, long s_off,
                     __global const long* idx, long i_off, int use_idx, long dim_size,
                     long dim_stride, int wrap, __global long* err, long n, int rank,
                     int8 sz, int8 so, int8 ss, int8 si) {
  long i = get_global_id(0);
  if (i >= n) return;
  long oo = o_off, sof = s_off, io = i_off;
  locate3(i, rank, sz, so, ss, si, &oo, &sof, &io);
  if (use_idx) sof += checked_index(idx[io], dim_size, wrap, err) * dim_stride;
  out[oo] = src[sof];
}

// The offsets gather would read, written contiguously: the destinations of a
// scatter (offsets into the destination, relative to its storage offset).
__kernel void scatter_offsets(__global long* out, long o_off, __global const long* idx, long i_off,
                              int use_idx, long dim_size, long dim_stride, int wrap,
                              __global long* err, long n, int rank, int8 sz, int8 sd, int8 si) {
  long i = get_global_id(0);
  if (i >= n) return;
  long dof = 0, io = i_off, unused = 0;
  locate3(i, rank, sz, sd, si, (int8)0, &dof, &io, &unused);
  if (use_idx) dof += checked_index(idx[io], dim_size, wrap, err) * dim_stride;
  out[o_off + i] = dof;
}

// acc[i] (+)= checked index value * dim_stride: combines several advanced
// indices (broadcast to acc's shape) into one offset per element.
__kernel void index_offsets(__global long* acc, long a_off, __global const long* idx, long i_off,
                            int first, long dim_size, long dim_stride, __global long* err,
                            long n, int rank, int8 sz, int8 si) {
  long i = get_global_id(0);
  if (i >= n) return;
  long io = i_off, u0 = 0, u1 = 0;
  locate3(i, rank, sz, si, (int8)0, (int8)0, &io, &u0, &u1);
  long v = checked_index(idx[io], dim_size, 1, err) * dim_stride;
  acc[a_off + i] = first ? v : acc[a_off + i] + v;
}

// tril (lower != 0) / triu of the last two dims: cols and rows of the matrix.
__kernel void triangle(__global TM* out, long o_off, __global const TM* src, long s_off,
                       long rows, long cols, long k, int lower, long n, int rank,
                       int8 sz, int8 so, int8 ss) {
  long i = get_global_id(0);
  if (i >= n) return;
  long oo = o_off, sof = s_off, u = 0;
  locate3(i, rank, sz, so, ss, (int8)0, &oo, &sof, &u);
  long c = i % cols, r = (i / cols) % rows;
  int keep = lower ? (c - r <= k) : (c - r >= k);
  out[oo] = keep ? src[sof] : (TM)0;
}

// nonzero, pass 1: the count of nonzero elements in each chunk of `chunk`
// consecutive (row-major) elements; logical sizes and strides, up to 8 dims.
__kernel void nonzero_count(__global const TO* x, long x_off, long n, long chunk, int rank,
                            int8 sz, int8 sx, __global long* counts, long c_off) {
  long g = get_global_id(0);
  long start = g * chunk;
  if (start >= n) return;
  long end = min(n, start + chunk), c = 0;
  for (long i = start; i < end; i++) {
    long off = x_off, u0 = 0, u1 = 0;
    locate3(i, rank, sz, sx, (int8)0, (int8)0, &off, &u0, &u1);
    c += LDX(x, off) != (CT)0;
  }
  counts[c_off + g] = c;
}

// nonzero, pass 2: each chunk writes the coordinates of its nonzero
// elements from row starts[g] of out (rows x rank, row-major); elements
// past the out's last row are dropped (nonzero_static).
__kernel void nonzero_write(__global const TO* x, long x_off, long n, long chunk, int rank,
                            int8 sz, int8 sx, __global const long* starts, long st_off,
                            __global long* out, long o_off, long rows) {
  long g = get_global_id(0);
  long start = g * chunk;
  if (start >= n) return;
  long end = min(n, start + chunk), row = starts[st_off + g];
  int s[8];
  vstore8(sz, 0, s);
  for (long i = start; i < end; i++) {
    long off = x_off, u0 = 0, u1 = 0;
    locate3(i, rank, sz, sx, (int8)0, (int8)0, &off, &u0, &u1);
    if (LDX(x, off) != (CT)0) {
      if (row >= rows) return;
      long r = i;
      for (int d = rank - 1; d >= 0; d--) {
        out[o_off + row * rank + d] = r % s[d];
        r /= s[d];
      }
      row++;
    }
  }
}
