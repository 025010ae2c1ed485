// The activations of the convolution epilogues (put before the convolution
// programs by ConvContext.kernel), by the GEMM epilogue's codes
// (cl/gemm_common.cl ACT, oclcore.gemm.planner.ACTIVATIONS):
//   0 none, 1 relu, 2 relu6, 3 gelu (tanh approximation), 4 silu,
//   5 sigmoid, 6 gelu (erf), 7 tanh.
// Kernels take the code at run time; a compile-time code folds the switch.

inline float activation(float v, int act)
{
    switch (act) {
    case 1:
        return fmax(v, 0.0f);
    case 2:
        return fmin(fmax(v, 0.0f), 6.0f);
    case 3:
        return 0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case 4:
        return v / (1.0f + exp(-v));
    case 5:
        return 1.0f / (1.0f + exp(-v));
    case 6:
        return 0.5f * v * (1.0f + erf(v * 0.7071067811865476f));
    case 7:
        return tanh(v);
    default:
        return v;
    }
}
