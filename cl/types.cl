// Loading and storing every torch dtype as the compute type CT.
// -D: CT (compute type), TO (output storage type), FP64 when doubles appear.
// A load macro per input (LD_*) and a store macro for the output (ST_*) are
// chosen by the host per dtype: half through vload/vstore_half (no
// cl_khr_fp16 needed), bfloat16 as the high half of a float, bool as uchar.

#ifdef FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif

#define LD_plain(p, i) ((CT)(p)[i])
#define LD_half(p, i) ((CT)vload_half((i), (p)))
#define LD_bf16(p, i) ((CT)as_float(((uint)(p)[i]) << 16))
#define LD_bool(p, i) ((CT)((p)[i] != 0))

#define ST_plain(p, i, v) ((p)[i] = (TO)(v))
#define ST_half(p, i, v) vstore_half_rte((float)(v), (i), (p))
#define ST_bf16(p, i, v) ((p)[i] = float_to_bf16((float)(v)))
#define ST_bool(p, i, v) ((p)[i] = (uchar)((v) != 0))

// Component d of an int8 geometry vector (sizes or strides of collapsed
// dims). Kernels walk dims in fully unrolled loops, where d is a constant and
// this folds to one register; copying the vectors into private arrays instead
// spilled them to memory on NVIDIA GPUs (a broadcast multiply ran 10x slower).
#define INT8_AT(v, d)                                                             \
  ((d) == 0 ? (v).s0 : (d) == 1 ? (v).s1 : (d) == 2 ? (v).s2 : (d) == 3 ? (v).s3 \
   : (d) == 4 ? (v).s4 : (d) == 5 ? (v).s5 : (d) == 6 ? (v).s6 : (v).s7)

inline ushort float_to_bf16(float f) {
  uint u = as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return (ushort)(u >> 16);
}

