// Loss kernels: elementwise losses (forward with reduction none / sum /
// mean, and backward) generated from one template, and the negative log
// likelihood loss (nll_loss, nll_loss2d).
//
// -D: T (storage type of every float operand), LD (its load macro), TO/STO
//     (= T, the output's storage type and store macro), CT (compute type),
//     LS (work-group size, a power of two), FP64.
// The host puts types.cl first and appends one line per elementwise loss,
// LOSS(name, forward expression, derivative expression), over x (input),
// y (target), w (weight, 1 when absent), q (pos_weight, 1 when absent) and
// p0 (beta / delta). Operands are contiguous with n elements.
//
// Reductions are deterministic: `groups` work-groups of LS items, group g
// summing elements g*LS + lid + k*groups*LS, then a tree in local memory.
// With one group the result is stored at once; otherwise each group leaves
// (value, weight) partials and loss_finish combines them. mode 0 stores
// value * scale (sum: scale 1, mean: 1/n); mode 1 stores value / weight
// (nll's weighted mean) and can store the weight sum (total_weight).

#define CLAMP_LOG(v) ((v) < (CT)-100 ? (CT)-100 : (v))  // torch clamps logs at -100; NaN stays
#define LOG_SIGMOID(v) (fmin((v), (CT)0) - log1p(exp(-fabs(v))))

inline void loss_store(CT v, CT w, int mode, CT scale, __global TO *out, int o_off,
                       __global TO *tw, int tw_off, int write_tw) {
  STO(out, o_off, mode ? v / w : v * scale);
  if (write_tw) STO(tw, tw_off, w);
}

// Sums (v, w) over the work-group; the group's first item stores the result
// (one group) or its partials.
// rv, rw: LS-element local arrays of the calling kernel.
inline void loss_reduce(__local CT *rv, __local CT *rw, CT v, CT w, int groups, __global CT *part,
                        int mode, CT scale, __global TO *out, int o_off, __global TO *tw,
                        int tw_off, int write_tw) {
  int lid = get_local_id(0);
  rv[lid] = v;
  rw[lid] = w;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = LS / 2; s > 0; s >>= 1) {
    if (lid < s) {
      rv[lid] += rv[lid + s];
      rw[lid] += rw[lid + s];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) {
    if (groups == 1) {
      loss_store(rv[0], rw[0], mode, scale, out, o_off, tw, tw_off, write_tw);
    } else {
      part[2 * get_group_id(0)] = rv[0];
      part[2 * get_group_id(0) + 1] = rw[0];
    }
  }
}

__kernel void loss_finish(__global const CT *part, int groups, int mode, CT scale,
                          __global TO *out, int o_off, __global TO *tw, int tw_off, int write_tw) {
  __local CT rv[LS], rw[LS];
  CT v = 0, w = 0;
  for (int g = get_local_id(0); g < groups; g += LS) {
    v += part[2 * g];
    w += part[2 * g + 1];
  }
  loss_reduce(rv, rw, v, w, 1, 0, mode, scale, out, o_off, tw, tw_off, write_tw);
}

#define LOSS_OPERANDS                                                         \
  __global const T *xp, int x_off, __global const T *yp, int y_off,          \
      __global const T *wp, int w_off, __global const T *qp, int q_off,      \
      int n, int flags, CT p0

#define LOSS_LOAD(i)                                                          \
  CT x = LD(xp, x_off + (i));                                                \
  CT y = LD(yp, y_off + (i));                                                \
  CT w = (flags & 1) ? LD(wp, w_off + (i)) : (CT)1;                          \
  CT q = (flags & 2) ? LD(qp, q_off + (i)) : (CT)1;

#define LOSS(NAME, FWD, BWD)                                                  \
  __kernel void NAME##_none(__global TO *out, int o_off, LOSS_OPERANDS) {    \
    int i = get_global_id(0);                                                \
    if (i >= n) return;                                                      \
    LOSS_LOAD(i)                                                             \
    STO(out, o_off + i, (FWD));                                              \
  }                                                                          \
  __kernel void NAME##_reduce(__global CT *part, int groups, CT scale,       \
                              __global TO *out, int o_off, LOSS_OPERANDS) {  \
    __local CT rv[LS], rw[LS];                                               \
    CT acc = 0;                                                              \
    for (int i = get_group_id(0) * LS + get_local_id(0); i < n;              \
         i += groups * LS) {                                                 \
      LOSS_LOAD(i)                                                           \
      acc += (FWD);                                                          \
    }                                                                        \
    loss_reduce(rv, rw, acc, 0, groups, part, 0, scale, out, o_off, out, 0, 0);      \
  }                                                                          \
  __kernel void NAME##_backward(__global TO *gi, int gi_off,                 \
                                __global const T *gp, int g_off, int g_step, \
                                CT scale, LOSS_OPERANDS) {                   \
    int i = get_global_id(0);                                                \
    if (i >= n) return;                                                      \
    LOSS_LOAD(i)                                                             \
    CT g = LD(gp, g_off + i * g_step);                                       \
    STO(gi, gi_off + i, scale * g * (BWD));                                  \
  }

// ---- nll_loss / nll_loss2d ----
// input (N, C, S) contiguous (S: spatial size, 1 for nll_loss), target (N, S)
// int64, weight (C) when flags & 1. Item i = n * S + s of the target.
// An out-of-range target (not ignore_index) gives NaN: the device cannot
// raise, and a NaN loss is never silently wrong.

inline CT nll_term(__global const T *xp, int x_off, __global const long *tp, int t_off,
                   __global const T *wp, int w_off, int i, int C, int S, int flags,
                   long ignore, CT *weight) {
  long t = tp[t_off + i];
  if (t == ignore) {
    *weight = 0;
    return 0;
  }
  if (t < 0 || t >= C) {
    *weight = NAN;
    return NAN;
  }
  CT w = (flags & 1) ? LD(wp, w_off + (int)t) : (CT)1;
  *weight = w;
  int nb = i / S, s = i - nb * S;
  return -w * LD(xp, x_off + (nb * C + (int)t) * S + s);
}

#define NLL_OPERANDS                                                          \
  __global const T *xp, int x_off, __global const long *tp, int t_off,       \
      __global const T *wp, int w_off, int n, int C, int S, int flags, long ignore

__kernel void nll_none(__global TO *out, int o_off, NLL_OPERANDS) {
  int i = get_global_id(0);
  if (i >= n) return;
  CT w;
  STO(out, o_off + i, nll_term(xp, x_off, tp, t_off, wp, w_off, i, C, S, flags, ignore, &w));
}

__kernel void nll_reduce(__global CT *part, int groups, int mode, CT scale, __global TO *out,
                         int o_off, __global TO *tw, int tw_off, NLL_OPERANDS) {
  __local CT rv[LS], rw[LS];
  CT v = 0, wsum = 0;
  for (int i = get_group_id(0) * LS + get_local_id(0); i < n; i += groups * LS) {
    CT w;
    v += nll_term(xp, x_off, tp, t_off, wp, w_off, i, C, S, flags, ignore, &w);
    wsum += w;
  }
  loss_reduce(rv, rw, v, wsum, groups, part, mode, scale, out, o_off, tw, tw_off, 1);
}

// grad_input (N, C, S): -weight[t] * grad (/ total_weight for mean) where c
// is the target, 0 elsewhere. grad_output is one value (g_step 0) or one per
// target item (g_step 1).
__kernel void nll_backward(__global TO *gi, int gi_off, __global const T *gp, int g_off,
                           int g_step, __global const T *twp, int tw_off, int mean,
                           __global const long *tp, int t_off, __global const T *wp, int w_off,
                           int total, int C, int S, int flags, long ignore) {
  int j = get_global_id(0);
  if (j >= total) return;
  int s = j % S, c = (j / S) % C, nb = j / (S * C);
  int i = nb * S + s;
  long t = tp[t_off + i];
  CT v = 0;
  if (t == c && t != ignore) {
    CT w = (flags & 1) ? LD(wp, w_off + c) : (CT)1;
    v = -w * LD(gp, g_off + i * g_step);
    if (mean) v /= LD(twp, tw_off);
  }
  STO(gi, gi_off + j, v);
}
