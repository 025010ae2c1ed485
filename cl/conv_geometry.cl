// Convolution geometry shared by the convolution programs (put first by
// ConvContext.kernel).
//
// With -DKR, KS, KSH, KSW, KDH, KDW (kernel size, stride, dilation) the
// geometry is compile-time: R_, S_, SH_, SW_, DH_, DW_ are constants and
// UNROLL unrolls the loops over taps, so weights and repeated tile reads stay
// in registers. Without them the same names stand for the kernel arguments
// GEOM declares.

#ifdef KR
#define R_ KR
#define S_ KS
#define SH_ KSH
#define SW_ KSW
#define DH_ KDH
#define DW_ KDW
#define UNROLL _Pragma("unroll")
#else
#define R_ R
#define S_ S
#define SH_ sh
#define SW_ sw
#define DH_ dh
#define DW_ dw
#define UNROLL
#endif

#define GEOM int H, int W, int P, int Q, int R, int S, int sh, int sw, int ph, int pw, int dh, int dw

inline int floor_div(int a, int b)
{
    return (a >= 0 ? a : a - b + 1) / b;
}

// The output row (or column) p < P whose tap r reads input row h, for stride
// st, padding pad and dilation dil; -1 when no output does. The gathers of
// data gradients and col2im walk their taps with it.
inline int tap_output(int h, int pad, int r, int dil, int st, int P)
{
    const int a = h + pad - r * dil;
    if (a < 0 || a % st)
        return -1;
    const int p = a / st;
    return p < P ? p : -1;
}
