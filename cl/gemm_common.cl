// Shared definitions for the GEMM kernel family (gemm_pack.cl, gemm_tiled.cl,
// gemm_direct.cl). Specialised by -D defines:
//   REAL     storage type (float, double, half)            default float
//   ACC      accumulation/arithmetic type (float for half)  default REAL
//   EPILOGUE apply bias (BIAS_COL: bias[n], BIAS_ROW: bias[m]) then ACT
//   ACT      0 none, 1 relu, 2 relu6, 3 gelu(tanh), 4 silu, 5 sigmoid,
//            6 gelu(erf), 7 tanh
//   USE_FMA / USE_MAD  multiply-add through fma() / mad() instead of a*b+c

#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#ifdef cl_khr_fp16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif

#ifndef REAL
#define REAL float
#endif
#ifndef ACC
#define ACC REAL
#endif
#ifndef ACT
#define ACT 0
#endif

#define GEMM_CAT2(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT2(a, b)

// Plain a*b+c by default: OpenCL C contracts it to an fma where the hardware
// has one, and PoCL vectorises it across work-items (it does not vectorise
// the fma() builtin, which made kernels ~3x slower there).
#if defined(USE_FMA)
#define MULADD(a, b, c) fma(a, b, c)
#elif defined(USE_MAD)
#define MULADD(a, b, c) mad(a, b, c)
#else
#define MULADD(a, b, c) ((a) * (b) + (c))
#endif

// Converts a REAL vector of width W to ACC and stores its lanes into the
// private ACC array dst at dst[i*W .. i*W+W-1]; for W == 1 a plain copy.
#define GEMM_UNPACK1(v, dst, i) (dst)[i] = (ACC)(v)
#define GEMM_UNPACKN(W, v, dst, i) \
  GEMM_CAT(vstore, W)(GEMM_CAT(GEMM_CAT(convert_, ACC), W)(v), (i), (dst))

inline ACC gemm_epilogue(ACC r, const int m, const int n,
                         const __global REAL* bias, const int bias_off) {
#ifdef EPILOGUE
#if defined(BIAS_COL)
  r += (ACC)bias[bias_off + n];
#elif defined(BIAS_ROW)
  r += (ACC)bias[bias_off + m];
#endif
#if ACT == 1
  r = fmax(r, (ACC)0);
#elif ACT == 2
  r = fmin(fmax(r, (ACC)0), (ACC)6);
#elif ACT == 3
  r = (ACC)0.5 * r * ((ACC)1 + tanh((ACC)0.7978845608028654 * (r + (ACC)0.044715 * r * r * r)));
#elif ACT == 4
  r = r / ((ACC)1 + exp(-r));
#elif ACT == 5
  r = (ACC)1 / ((ACC)1 + exp(-r));
#elif ACT == 6
  r = (ACC)0.5 * r * ((ACC)1 + erf(r * (ACC)0.7071067811865476));
#elif ACT == 7
  r = tanh(r);
#endif
#endif
  return r;
}

// Final write of one C element: alpha*acc + beta*C (C is not read when
// beta == 0, so it may hold garbage/NaN), then the optional epilogue.
inline void gemm_store(__global REAL* cg, const long idx, const ACC acc,
                       const ACC alpha, const ACC beta, const int m, const int n,
                       const __global REAL* bias, const int bias_off) {
  ACC r = alpha * acc;
  if (beta != (ACC)0) r = MULADD(beta, (ACC)cg[idx], r);
  cg[idx] = (REAL)gemm_epilogue(r, m, n, bias, bias_off);
}
