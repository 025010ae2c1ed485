// Normalisation kernels (batch, layer, group, instance norm) and their backward.
//
// -D: T, LD, ST, TO=T   storage type of the input/output and its load/store macros
//     CT                compute type (float, or double for float64)
//     AT                accumulation type of the statistics and gradient sums: double where
//                       the device has it (as torch's CPU kernels accumulate), else CT
//     PT, LDP, STP      storage of weight, bias, running stats and their grads
//     WG                work-group size (a power of two)
//
// One work-group normalises one group of elements. A group is addressed by
// (g1, g2) = (group / G2, group % G2) and its elements by (p, q), p < P, q < Q,
// each with its own stride, so one kernel serves every norm:
//   batch norm  x (N, C, S): group = channel, elements (n, s)
//   group norm  x (N, C, S): group = (n, g),  elements (channel in g, s)
//   layer norm  x (M, K):    group = row,     elements (1, k)
// A geometry vector is (G2, P, Q, s_g1, s_g2, s_p, s_q, -); the parameter
// (weight/bias) index of an element is g1*c.s0 + g2*c.s1 + p*c.s2 + q*c.s3.
// Statistics (mean, 1/std) are indexed by the group and stored as CT.
// Reductions are work-group trees in a fixed order: results are deterministic.

#define STP_plain(p, i, v) ((p)[i] = (PT)(v))
#define STP_half(p, i, v) vstore_half_rte((float)(v), (i), (p))
#define STP_bf16(p, i, v) ((p)[i] = float_to_bf16((float)(v)))

#define F_WEIGHT 1
#define F_BIAS 2
#define F_RUNNING_STATS 4    // normalise with running_mean / running_var (eval)
#define F_UPDATE_RUNNING 8   // training: update running stats with momentum
#define F_SAVE_STATS 16      // write mean / 1/std per group
#define F_GRAD_INPUT 32
#define F_GROUP_PARAMS 64    // weight is constant over a group: write its grads here
#define F_GRAD_WEIGHT 128
#define F_GRAD_BIAS 256

// Sums a[] and b[] over the work-group (each item has written its own slot).
inline void wg_sum2(__local AT* a, __local AT* b, AT* ta, AT* tb) {
  int lid = get_local_id(0);
  for (int s = WG / 2; s > 0; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < s) {
      a[lid] += a[lid + s];
      b[lid] += b[lid + s];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *ta = a[0];
  *tb = b[0];
  barrier(CLK_LOCAL_MEM_FENCE);
}

#define ELEM_OFFSET(g, base, e) \
  ((base) + ((e) / Q) * (g).s5 + ((e) % Q) * (g).s6)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_forward(__global T* y, int y_off, __global const T* x, int x_off,
                  __global const PT* w, int w_off, __global const PT* b, int b_off,
                  __global CT* mean, int mean_off, __global CT* rstd, int rstd_off,
                  __global PT* rmean, int rmean_off, __global PT* rvar, int rvar_off,
                  int8 gx, int8 gy, int8 pc, int flags, CT eps, CT momentum) {
  __local AT la[WG], lb[WG];
  int group = get_group_id(0), lid = get_local_id(0);
  int G2 = gx.s0, P = gx.s1, Q = gx.s2, M = P * Q;
  int g1 = group / G2, g2 = group % G2;
  int xb = x_off + g1 * gx.s3 + g2 * gx.s4;
  int yb = y_off + g1 * gy.s3 + g2 * gy.s4;
  int pb = g1 * pc.s0 + g2 * pc.s1;
  CT mu, inv, var_unbiased = 0;
  if (flags & F_RUNNING_STATS) {
    mu = LDP(rmean, rmean_off + pb);
    inv = (CT)1 / sqrt(LDP(rvar, rvar_off + pb) + eps);
  } else {
    AT s = 0, unused;
    for (int e = lid; e < M; e += WG) s += (AT)LD(x, ELEM_OFFSET(gx, xb, e));
    la[lid] = s;
    lb[lid] = 0;
    wg_sum2(la, lb, &s, &unused);
    AT mu_acc = s / M;
    AT v = 0;
    for (int e = lid; e < M; e += WG) {
      AT d = (AT)LD(x, ELEM_OFFSET(gx, xb, e)) - mu_acc;
      v += d * d;
    }
    la[lid] = v;
    lb[lid] = 0;
    wg_sum2(la, lb, &v, &unused);
    mu = (CT)mu_acc;
    inv = (CT)((AT)1 / sqrt(v / M + (AT)eps));
    var_unbiased = (CT)(v / (M - 1));
  }
  for (int e = lid; e < M; e += WG) {
    int p = e / Q, q = e % Q, pi = pb + p * pc.s2 + q * pc.s3;
    CT v = (LD(x, ELEM_OFFSET(gx, xb, e)) - mu) * inv;
    if (flags & F_WEIGHT) v *= LDP(w, w_off + pi);
    if (flags & F_BIAS) v += LDP(b, b_off + pi);
    ST(y, ELEM_OFFSET(gy, yb, e), v);
  }
  // PoCL miscompiled single-item stores placed between barriers and a loop; they stay last.
  if (lid == 0 && (flags & F_SAVE_STATS)) {
    mean[mean_off + group] = mu;
    rstd[rstd_off + group] = inv;
  }
  if (lid == 0 && (flags & F_UPDATE_RUNNING)) {
    STP(rmean, rmean_off + pb, ((CT)1 - momentum) * LDP(rmean, rmean_off + pb) + momentum * mu);
    STP(rvar, rvar_off + pb, ((CT)1 - momentum) * LDP(rvar, rvar_off + pb) + momentum * var_unbiased);
  }
}

// grad_input of a group (and, for F_GROUP_PARAMS, the group's weight/bias grads).
// gx (geometry) describes x; gd and gi hold the strides of grad_out and grad_input.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_backward(__global T* gi, int gi_off, __global const T* dy, int dy_off,
                   __global const T* x, int x_off, __global const PT* w, int w_off,
                   __global const CT* mean, int mean_off, __global const CT* rstd, int rstd_off,
                   __global const PT* rmean, int rmean_off, __global const PT* rvar, int rvar_off,
                   __global PT* gw, int gw_off, __global PT* gb, int gb_off,
                   int8 gx, int8 gd, int8 gg, int8 pc, int flags, CT eps) {
  __local AT la[WG], lb[WG];
  int group = get_group_id(0), lid = get_local_id(0);
  int G2 = gx.s0, P = gx.s1, Q = gx.s2, M = P * Q;
  int g1 = group / G2, g2 = group % G2;
  int xb = x_off + g1 * gx.s3 + g2 * gx.s4;
  int db = dy_off + g1 * gd.s3 + g2 * gd.s4;
  int ib = gi_off + g1 * gg.s3 + g2 * gg.s4;
  int pb = g1 * pc.s0 + g2 * pc.s1;
  int group_w = (flags & F_GROUP_PARAMS) != 0;
  CT mu, inv;
  if (flags & F_RUNNING_STATS) {
    mu = LDP(rmean, rmean_off + pb);
    inv = (CT)1 / sqrt(LDP(rvar, rvar_off + pb) + eps);
  } else {
    mu = mean[mean_off + group];
    inv = rstd[rstd_off + group];
  }
  // t1 = sum(dy * w), t2 = sum(dy * w * xhat); w left out when constant over the group
  AT t1 = 0, t2 = 0;
  for (int e = lid; e < M; e += WG) {
    int p = e / Q, q = e % Q;
    AT d = LD(dy, ELEM_OFFSET(gd, db, e));
    if ((flags & F_WEIGHT) && !group_w) d *= LDP(w, w_off + pb + p * pc.s2 + q * pc.s3);
    t1 += d;
    t2 += d * ((AT)LD(x, ELEM_OFFSET(gx, xb, e)) - (AT)mu) * (AT)inv;
  }
  la[lid] = t1;
  lb[lid] = t2;
  wg_sum2(la, lb, &t1, &t2);
  AT m1 = t1 / M, m2 = t2 / M;
  if (group_w && (flags & F_WEIGHT)) {
    AT wg = LDP(w, w_off + pb);
    m1 *= wg;
    m2 *= wg;
  }
  // PoCL miscompiled single-item stores placed between barriers and a loop; they stay last.
  for (int e = lid; e < M && (flags & F_GRAD_INPUT); e += WG) {
    int p = e / Q, q = e % Q;
    AT d = LD(dy, ELEM_OFFSET(gd, db, e));
    if (flags & F_WEIGHT) d *= LDP(w, w_off + pb + p * pc.s2 + q * pc.s3);
    AT g;
    if (flags & F_RUNNING_STATS) {
      g = d * inv;
    } else {
      // d - m1 - xhat * m2 cancels when a channel has few elements: AT keeps it exact enough
      AT xhat = ((AT)LD(x, ELEM_OFFSET(gx, xb, e)) - (AT)mu) * (AT)inv;
      g = (AT)inv * (d - m1 - xhat * m2);
    }
    ST(gi, ELEM_OFFSET(gg, ib, e), g);
  }
  if (lid == 0 && group_w && (flags & F_GRAD_WEIGHT)) STP(gw, gw_off + pb, t2);
  if (lid == 0 && group_w && (flags & F_GRAD_BIAS)) STP(gb, gb_off + pb, t1);
}

// Weight and bias grads when the weight varies inside a group (layer and group
// norm): one work-group per parameter j sums over its U x V elements.
// geom = (U, V, jdiv, jcoef, u_stat, -, -, -): element (u, v) of parameter j
// uses statistics index (j / jdiv) * jcoef + u * u_stat.
// xs / ds = (s_j, s_u, s_v, ...) strides of x and grad_out.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_param_grad(__global PT* gw, int gw_off, __global PT* gb, int gb_off,
                     __global const T* dy, int dy_off, __global const T* x, int x_off,
                     __global const CT* mean, int mean_off, __global const CT* rstd, int rstd_off,
                     int8 geom, int8 xs, int8 ds, int flags) {
  __local AT la[WG], lb[WG];
  int j = get_group_id(0), lid = get_local_id(0);
  int U = geom.s0, V = geom.s1, n = U * V;
  int sbase = (j / geom.s2) * geom.s3;
  AT sw = 0, sb = 0;
  for (int e = lid; e < n; e += WG) {
    int u = e / V, v = e % V;
    int st = sbase + u * geom.s4;
    AT d = LD(dy, dy_off + j * ds.s0 + u * ds.s1 + v * ds.s2);
    AT xv = LD(x, x_off + j * xs.s0 + u * xs.s1 + v * xs.s2);
    sw += d * (xv - (AT)mean[mean_off + st]) * (AT)rstd[rstd_off + st];
    sb += d;
  }
  la[lid] = sw;
  lb[lid] = sb;
  wg_sum2(la, lb, &sw, &sb);
  if (lid == 0) {
    if (flags & F_GRAD_WEIGHT) STP(gw, gw_off + j, sw);
    if (flags & F_GRAD_BIAS) STP(gb, gb_off + j, sb);
  }
}
