// Normalisation kernels (batch, layer, group, instance norm) and their backward.
//
// -D: T, LD, ST, TO=T   storage type of the input/output and its load/store macros
//     CT                compute type (float, or double for float64)
//     AT                accumulation type of the statistics and gradient sums: double where
//                       the device has it (as torch's CPU kernels accumulate), else CT
//     PT, LDP, STP      storage of weight, bias, running stats and their grads
//     WG                work-group size (a power of two)
//     EPI               most elements of a row a work-item of ln_rows holds
//
// A norm is a set of groups of elements. A group is addressed by
// (g1, g2) = (group / G2, group % G2) and its elements by (p, q), p < P, q < Q,
// each with its own stride, so one kernel serves every norm:
//   batch norm  x (N, C, S): group = channel, elements (n, s)
//   group norm  x (N, C, S): group = (n, g),  elements (channel in g, s)
//   layer norm  x (M, K):    group = row,     elements (1, k)
// A geometry vector is (G2, P, Q, s_g1, s_g2, s_p, s_q, -); the parameter
// (weight/bias) index of an element is g1*c.s0 + g2*c.s1 + p*c.s2 + q*c.s3.
// Statistics (mean, 1/std) are indexed by the group and stored as CT.
//
// Work split, ck = (GT, chunks, L, groups, -, -, -, -): a work-group holds GT groups x
// WG/GT lanes (item lid = lane * GT + gi, so neighbouring items read neighbouring groups
// when groups interleave in memory) and handles chunk get_group_id(1) of its groups, the
// elements e in [chunk * L, min(M, chunk * L + L)) in the order e = p * Q + q.
// With one chunk a launch does the whole norm (statistics, then normalisation). With
// several, a first launch (norm_stats / norm_grad_sums) writes per-(group, chunk)
// partials and every work-group of the second launch combines its groups' partials
// itself, in chunk order, before its elementwise pass.
// Every reduction is sequential per item and then a work-group tree in a fixed order:
// results are deterministic.

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
#define F_PARTIALS 512       // statistics / gradient sums from the first launch's partials
#define F_KEEP_Y 1024        // with an activation: write the normalised y too, not only act(y)
#define F_ACT_SHIFT 11       // bits 11-12: activation after a batch norm (forward: applied to the
#define ACT_RELU 1           // output, written to a; backward: its gradient applied to grad_out,
#define ACT_RELU6 2          // read beside it from s, the activation's input or relu's output)
#define ACT_SILU 3
#define ACT_OF(flags) (((flags) >> F_ACT_SHIFT) & 3)

inline CT act_forward(int act, CT v) {
  if (act == ACT_RELU) return v < 0 ? (CT)0 : v;
  if (act == ACT_RELU6) return v < 0 ? (CT)0 : (v > 6 ? (CT)6 : v);
  return v * ((CT)1 / ((CT)1 + exp(-v)));
}

// grad_out at element i, times the activation's derivative at s[i + sdel] (as torch's
// threshold_backward, hardtanh_backward and silu_backward: NaN passes the gradient).
inline AT grad_at(__global const T* dy, __global const T* s, int i, int sdel, int act) {
  AT d = LD(dy, i);
  if (act == 0) return d;
  CT v = LD(s, i + sdel);
  if (act == ACT_RELU) return v <= 0 ? (AT)0 : d;
  if (act == ACT_RELU6) return (v <= 0 || v >= 6) ? (AT)0 : d;
  CT sg = (CT)1 / ((CT)1 + exp(-v));
  return d * (AT)(sg * ((CT)1 + v * ((CT)1 - sg)));
}

// This item's place: its group, its lane, and the elements of its chunk it walks.
typedef struct {
  int gt, gi, lane, lanes, group, live, g1, g2, chunk, chunks, len, M, Q, start, end, dp, dq;
} span;

inline span span_of(int8 g, int8 ck) {
  span t;
  int lid = get_local_id(0);
  t.gt = ck.s0;
  t.gi = lid % t.gt;
  t.lane = lid / t.gt;
  t.lanes = WG / t.gt;
  t.group = get_group_id(0) * t.gt + t.gi;
  t.live = t.group < ck.s3;
  t.g1 = t.group / g.s0;
  t.g2 = t.group % g.s0;
  t.chunk = get_group_id(1);
  t.chunks = ck.s1;
  t.len = ck.s2;
  t.M = g.s1 * g.s2;
  t.Q = g.s2;
  t.start = t.chunk * t.len;
  t.end = t.live ? min(t.M, t.start + t.len) : t.start;
  t.dp = t.lanes / t.Q;
  t.dq = t.lanes % t.Q;
  return t;
}

// Walks this item's elements e = start + lane, + lanes, ... as (p, q) with no division per element.
#define WALK(t, p, q)                                                                  \
  for (int e_ = (t).start + (t).lane, p = e_ / (t).Q, q = e_ % (t).Q; e_ < (t).end;   \
       e_ += (t).lanes, q += (t).dq, p += (t).dp + (q >= (t).Q), q -= (q >= (t).Q) ? (t).Q : 0)

#define GROUP_BASE(g, t, off) ((off) + (t).g1 * (g).s3 + (t).g2 * (g).s4)
#define ELEM(g, base, p, q) ((base) + (p) * (g).s5 + (q) * (g).s6)

// Number of elements in chunk c of a group.
inline int chunk_count(span t, int c) { return min(t.len, t.M - c * t.len); }

// Sums a[] and b[] over the lanes of each group (every item has written its own slot);
// each item gets its group's totals.
inline void lane_sum2(__local AT* a, __local AT* b, int gt, AT* ta, AT* tb) {
  int lid = get_local_id(0);
  for (int s = WG / 2; s >= gt; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < s) {
      a[lid] += a[lid + s];
      b[lid] += b[lid + s];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *ta = a[lid % gt];
  *tb = b[lid % gt];
  barrier(CLK_LOCAL_MEM_FENCE);
}

// Merges the moments (count, mean, sum of squared deviations) of b into a (Chan et al.).
inline void merge_moments(int* n, AT* m, AT* m2, int nb, AT mb, AT m2b) {
  if (nb == 0) return;
  int nn = *n + nb;
  AT d = mb - *m, f = (AT)nb / (AT)nn;
  *m += d * f;
  *m2 += m2b + d * d * (AT)(*n) * f;
  *n = nn;
}

// Merges the moments in ln/lm/lq over the lanes of each group; each item gets its group's.
inline void lane_moments(__local int* ln, __local AT* lm, __local AT* lq, int gt, int* n, AT* m, AT* m2) {
  int lid = get_local_id(0);
  for (int s = WG / 2; s >= gt; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < s) {
      int na = ln[lid];
      AT ma = lm[lid], qa = lq[lid];
      merge_moments(&na, &ma, &qa, ln[lid + s], lm[lid + s], lq[lid + s]);
      ln[lid] = na;
      lm[lid] = ma;
      lq[lid] = qa;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *n = ln[lid % gt];
  *m = lm[lid % gt];
  *m2 = lq[lid % gt];
  barrier(CLK_LOCAL_MEM_FENCE);
}

// Mean and sum of squared deviations of the chunk's elements (a whole group): two passes over
// the chunk (the second from cache), exact where sums of squares would cancel.
inline void chunk_moments(__global const T* x, int xb, int8 gx, span t, __local AT* la, __local AT* lb,
                          AT* mean, AT* m2) {
  AT s = 0, unused;
  WALK(t, p, q) s += (AT)LD(x, ELEM(gx, xb, p, q));
  la[get_local_id(0)] = s;
  lb[get_local_id(0)] = 0;
  lane_sum2(la, lb, t.gt, &s, &unused);
  AT mu = s / (t.end - t.start), v = 0;
  WALK(t, p, q) {
    AT d = (AT)LD(x, ELEM(gx, xb, p, q)) - mu;
    v += d * d;
  }
  la[get_local_id(0)] = v;
  lb[get_local_id(0)] = 0;
  lane_sum2(la, lb, t.gt, &v, &unused);
  *mean = mu;
  *m2 = v;
}

// First launch of a split forward: moments of each (group, chunk) into part. One pass, from sums
// relative to the chunk's first element (accumulated in AT: double for float input where the
// device has it), so that the chunk is read once.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_stats(__global AT* part, int part_off, __global const T* x, int x_off, int8 gx, int8 ck) {
  __local AT la[WG], lb[WG];
  span t = span_of(gx, ck);
  int xb = GROUP_BASE(gx, t, x_off);
  AT shift = t.live ? (AT)LD(x, ELEM(gx, xb, t.start / t.Q, t.start % t.Q)) : 0, s1 = 0, s2 = 0;
  WALK(t, p, q) {
    AT d = (AT)LD(x, ELEM(gx, xb, p, q)) - shift;
    s1 += d;
    s2 += d * d;
  }
  la[get_local_id(0)] = s1;
  lb[get_local_id(0)] = s2;
  lane_sum2(la, lb, t.gt, &s1, &s2);
  if (t.live && t.lane == 0) {
    AT n = t.end - t.start;
    int i = part_off + 2 * (t.group * t.chunks + t.chunk);
    part[i] = shift + s1 / n;
    part[i + 1] = max(s2 - s1 * (s1 / n), (AT)0);
  }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_forward(__global T* y, int y_off, __global T* a, int a_off, __global const T* x, int x_off,
                  __global const PT* w, int w_off, __global const PT* b, int b_off,
                  __global CT* mean, int mean_off, __global CT* rstd, int rstd_off,
                  __global PT* rmean, int rmean_off, __global PT* rvar, int rvar_off,
                  __global const AT* part, int part_off,
                  int8 gx, int8 gy, int8 pc, int8 ck, int flags, CT eps, CT momentum) {
  __local AT la[WG], lb[WG];
  __local int ln[WG];
  span t = span_of(gx, ck);
  int xb = GROUP_BASE(gx, t, x_off), yb = GROUP_BASE(gy, t, y_off);
  int pb = t.g1 * pc.s0 + t.g2 * pc.s1;
  CT mu = 0, inv = 0, var_unbiased = 0;
  if (flags & F_RUNNING_STATS) {
    if (t.live) {
      mu = LDP(rmean, rmean_off + pb);
      inv = (CT)1 / sqrt(LDP(rvar, rvar_off + pb) + eps);
    }
  } else {
    int n = 0;
    AT m = 0, m2 = 0;
    if (flags & F_PARTIALS) {
      for (int c = t.lane; c < t.chunks && t.live; c += t.lanes) {
        int i = part_off + 2 * (t.group * t.chunks + c);
        merge_moments(&n, &m, &m2, chunk_count(t, c), part[i], part[i + 1]);
      }
      ln[get_local_id(0)] = n;
      la[get_local_id(0)] = m;
      lb[get_local_id(0)] = m2;
      lane_moments(ln, la, lb, t.gt, &n, &m, &m2);
    } else {
      chunk_moments(x, xb, gx, t, la, lb, &m, &m2);
      n = t.end - t.start;
    }
    mu = (CT)m;
    inv = (CT)((AT)1 / sqrt(m2 / n + (AT)eps));
    var_unbiased = (CT)(m2 / (n - 1));
  }
  int act = ACT_OF(flags), ab = GROUP_BASE(gy, t, a_off);
  WALK(t, p, q) {
    int pi = pb + p * pc.s2 + q * pc.s3;
    CT v = (LD(x, ELEM(gx, xb, p, q)) - mu) * inv;
    if (flags & F_WEIGHT) v *= LDP(w, w_off + pi);
    if (flags & F_BIAS) v += LDP(b, b_off + pi);
    if (!act || (flags & F_KEEP_Y)) ST(y, ELEM(gy, yb, p, q), v);
    if (act) ST(a, ELEM(gy, ab, p, q), act_forward(act, v));
  }
  // PoCL miscompiled single-item stores placed between barriers and a loop; they stay last.
  int first = t.live && t.lane == 0 && t.chunk == 0;
  if (first && (flags & F_SAVE_STATS)) {
    mean[mean_off + t.group] = mu;
    rstd[rstd_off + t.group] = inv;
  }
  if (first && (flags & F_UPDATE_RUNNING)) {
    STP(rmean, rmean_off + pb, ((CT)1 - momentum) * LDP(rmean, rmean_off + pb) + momentum * mu);
    STP(rvar, rvar_off + pb, ((CT)1 - momentum) * LDP(rvar, rvar_off + pb) + momentum * var_unbiased);
  }
}

// mean and 1/std of the item's group: saved statistics or running ones.
inline void group_stats(span t, int pb, __global const CT* mean, int mean_off, __global const CT* rstd,
                        int rstd_off, __global const PT* rmean, int rmean_off, __global const PT* rvar,
                        int rvar_off, int flags, CT eps, CT* mu, CT* inv) {
  *mu = 0;
  *inv = 0;
  if (!t.live) return;
  if (flags & F_RUNNING_STATS) {
    *mu = LDP(rmean, rmean_off + pb);
    *inv = (CT)1 / sqrt(LDP(rvar, rvar_off + pb) + eps);
  } else {
    *mu = mean[mean_off + t.group];
    *inv = rstd[rstd_off + t.group];
  }
}

// t1 = sum(dy * w), t2 = sum(dy * w * xhat) over the chunk's elements, totals per group;
// w is left out when it is constant over the group (F_GROUP_PARAMS).
inline void chunk_grad_sums(__global const T* dy, int db, int8 gd, __global const T* src, int sdel,
                            __global const T* x, int xb, int8 gx,
                            __global const PT* w, int w_off, int pb, int8 pc, int flags, CT mu, CT inv,
                            span t, __local AT* la, __local AT* lb, AT* t1, AT* t2) {
  AT s1 = 0, s2 = 0;
  int elem_w = (flags & F_WEIGHT) && !(flags & F_GROUP_PARAMS), act = ACT_OF(flags);
  WALK(t, p, q) {
    AT d = grad_at(dy, src, ELEM(gd, db, p, q), sdel, act);
    if (elem_w) d *= LDP(w, w_off + pb + p * pc.s2 + q * pc.s3);
    s1 += d;
    s2 += d * ((AT)LD(x, ELEM(gx, xb, p, q)) - (AT)mu) * (AT)inv;
  }
  la[get_local_id(0)] = s1;
  lb[get_local_id(0)] = s2;
  lane_sum2(la, lb, t.gt, t1, t2);
}

// First launch of a split backward: t1, t2 of each (group, chunk) into part.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_grad_sums(__global AT* part, int part_off, __global const T* dy, int dy_off,
                    __global const T* src, int src_off, __global const T* x, int x_off, __global const PT* w, int w_off,
                    __global const CT* mean, int mean_off, __global const CT* rstd, int rstd_off,
                    __global const PT* rmean, int rmean_off, __global const PT* rvar, int rvar_off,
                    int8 gx, int8 gd, int8 pc, int8 ck, int flags, CT eps) {
  __local AT la[WG], lb[WG];
  span t = span_of(gx, ck);
  int pb = t.g1 * pc.s0 + t.g2 * pc.s1;
  CT mu, inv;
  group_stats(t, pb, mean, mean_off, rstd, rstd_off, rmean, rmean_off, rvar, rvar_off, flags, eps, &mu, &inv);
  AT t1, t2;
  chunk_grad_sums(dy, GROUP_BASE(gd, t, dy_off), gd, src, src_off - dy_off, x, GROUP_BASE(gx, t, x_off), gx, w,
                  w_off, pb, pc, flags, mu, inv, t, la, lb, &t1, &t2);
  if (t.live && t.lane == 0) {
    int i = part_off + 2 * (t.group * t.chunks + t.chunk);
    part[i] = t1;
    part[i + 1] = t2;
  }
}

// grad_input of the chunk (and, for F_GROUP_PARAMS, the group's weight/bias grads).
// gx (geometry) describes x; gd and gg hold the strides of grad_out and grad_input.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void norm_backward(__global T* gi, int gi_off, __global const T* dy, int dy_off,
                   __global const T* src, int src_off, __global const T* x, int x_off, __global const PT* w, int w_off,
                   __global const CT* mean, int mean_off, __global const CT* rstd, int rstd_off,
                   __global const PT* rmean, int rmean_off, __global const PT* rvar, int rvar_off,
                   __global PT* gw, int gw_off, __global PT* gb, int gb_off,
                   __global const AT* part, int part_off,
                   int8 gx, int8 gd, int8 gg, int8 pc, int8 ck, int flags, CT eps) {
  __local AT la[WG], lb[WG];
  span t = span_of(gx, ck);
  int xb = GROUP_BASE(gx, t, x_off), db = GROUP_BASE(gd, t, dy_off), ib = GROUP_BASE(gg, t, gi_off);
  int pb = t.g1 * pc.s0 + t.g2 * pc.s1;
  int group_w = (flags & F_GROUP_PARAMS) != 0;
  CT mu, inv;
  group_stats(t, pb, mean, mean_off, rstd, rstd_off, rmean, rmean_off, rvar, rvar_off, flags, eps, &mu, &inv);
  // eval grad_input needs no sums; the group's weight/bias grads do
  int sums = !(flags & F_RUNNING_STATS) || (group_w && (flags & (F_GRAD_WEIGHT | F_GRAD_BIAS)));
  AT t1 = 0, t2 = 0, m1 = 0, m2 = 0;
  if (sums) {
    if (flags & F_PARTIALS) {
      for (int c = t.lane; c < t.chunks && t.live; c += t.lanes) {
        int i = part_off + 2 * (t.group * t.chunks + c);
        t1 += part[i];
        t2 += part[i + 1];
      }
      la[get_local_id(0)] = t1;
      lb[get_local_id(0)] = t2;
      lane_sum2(la, lb, t.gt, &t1, &t2);
    } else {
      chunk_grad_sums(dy, db, gd, src, src_off - dy_off, x, xb, gx, w, w_off, pb, pc, flags, mu, inv, t, la, lb,
                      &t1, &t2);
    }
    m1 = t1 / t.M;
    m2 = t2 / t.M;
  }
  if (group_w && (flags & F_WEIGHT) && t.live) {
    AT wg = LDP(w, w_off + pb);
    m1 *= wg;
    m2 *= wg;
  }
  // PoCL miscompiled single-item stores placed between barriers and a loop; they stay last.
  if (flags & F_GRAD_INPUT) {
    int act = ACT_OF(flags);
    WALK(t, p, q) {
      AT d = grad_at(dy, src, ELEM(gd, db, p, q), src_off - dy_off, act);
      if (flags & F_WEIGHT) d *= LDP(w, w_off + pb + p * pc.s2 + q * pc.s3);
      AT g;
      if (flags & F_RUNNING_STATS) {
        g = d * inv;
      } else {
        // d - m1 - xhat * m2 cancels when a channel has few elements: AT keeps it exact enough
        AT xhat = ((AT)LD(x, ELEM(gx, xb, p, q)) - (AT)mu) * (AT)inv;
        g = (AT)inv * (d - m1 - xhat * m2);
      }
      ST(gi, ELEM(gg, ib, p, q), g);
    }
  }
  int first = t.live && t.lane == 0 && t.chunk == 0;
  if (first && group_w && (flags & F_GRAD_WEIGHT)) STP(gw, gw_off + pb, t2);
  if (first && group_w && (flags & F_GRAD_BIAS)) STP(gb, gb_off + pb, t1);
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
  lane_sum2(la, lb, 1, &sw, &sb);
  if (lid == 0) {
    if (flags & F_GRAD_WEIGHT) STP(gw, gw_off + j, sw);
    if (flags & F_GRAD_BIAS) STP(gb, gb_off + j, sb);
  }
}

// Sum of s over the L lanes of each row of the work-group (rows of L consecutive items; L a power
// of two); every item gets its row's total.
inline AT row_sum(__local AT* red, int L, AT s) {
  const int lid = get_local_id(0), lane = lid & (L - 1);
  red[lid] = s;
  for (int st = L / 2; st > 0; st >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane < st) red[lid] += red[lid + st];
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  const AT total = red[lid - lane];
  barrier(CLK_LOCAL_MEM_FENCE);
  return total;
}

// Layer norm over contiguous rows of K <= EPI * L elements (a transformer's or ConvNeXt's
// channels): a work-group holds WG / L rows of L consecutive items; an item keeps its elements
// k = lane, lane + L, ... in registers, so x is read once and a row's items read consecutive
// addresses. norm_forward's general walk (x read three times, each statistic reduced over the
// whole work-group) ran at about a quarter of the memory bandwidth on ConvNeXt's rows of 96.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ln_rows(__global T* y, int y_off, __global const T* x, int x_off,
             __global const PT* w, int w_off, __global const PT* b, int b_off,
             __global CT* mean, int mean_off, __global CT* rstd, int rstd_off,
             int rows, int K, int L, int flags, CT eps) {
  __local AT red[WG];
  const int lane = get_local_id(0) & (L - 1);
  const int r = get_group_id(0) * (WG / L) + get_local_id(0) / L;
  const int live = r < rows, base = r * K;
  CT v[EPI];
  AT s = 0;
  for (int j = 0; j < EPI; j++) {
    const int k = lane + j * L;
    v[j] = (live && k < K) ? (CT)LD(x, x_off + base + k) : (CT)0;
    s += v[j];
  }
  const AT mu = row_sum(red, L, s) / K;
  AT q = 0;
  for (int j = 0; j < EPI; j++) {
    const AT d = (lane + j * L < K) ? (AT)v[j] - mu : (AT)0;
    q += d * d;
  }
  const CT m = (CT)mu, inv = (CT)((AT)1 / sqrt(row_sum(red, L, q) / K + (AT)eps));
  for (int j = 0; j < EPI; j++) {
    const int k = lane + j * L;
    if (live && k < K) {
      CT o = (v[j] - m) * inv;
      if (flags & F_WEIGHT) o *= LDP(w, w_off + k);
      if (flags & F_BIAS) o += LDP(b, b_off + k);
      ST(y, y_off + base + k, o);
    }
  }
  if (live && lane == 0 && (flags & F_SAVE_STATS)) {  // (last: see norm_forward)
    mean[mean_off + r] = m;
    rstd[rstd_off + r] = inv;
  }
}

// Input gradient of ln_rows' layer norm, rows laid out alike: with g = dy * w and
// xhat = (x - mean) * rstd, dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) over the row.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1)))
void ln_rows_backward(__global T* dx, int dx_off, __global const T* dy, int dy_off,
                      __global const T* x, int x_off, __global const PT* w, int w_off,
                      __global const CT* mean, int mean_off, __global const CT* rstd, int rstd_off,
                      int rows, int K, int L, int flags) {
  __local AT red[WG];
  const int lane = get_local_id(0) & (L - 1);
  const int r = get_group_id(0) * (WG / L) + get_local_id(0) / L;
  const int live = r < rows, base = r * K;
  const CT mu = live ? mean[mean_off + r] : (CT)0, inv = live ? rstd[rstd_off + r] : (CT)0;
  CT g[EPI], h[EPI];
  AT s1 = 0, s2 = 0;
  for (int j = 0; j < EPI; j++) {
    const int k = lane + j * L, in = live && k < K;
    g[j] = in ? (CT)LD(dy, dy_off + base + k) : (CT)0;
    if (in && (flags & F_WEIGHT)) g[j] *= LDP(w, w_off + k);
    h[j] = in ? ((CT)LD(x, x_off + base + k) - mu) * inv : (CT)0;
    s1 += g[j];
    s2 += (AT)g[j] * h[j];
  }
  const CT a = (CT)(row_sum(red, L, s1) / K), c = (CT)(row_sum(red, L, s2) / K);
  for (int j = 0; j < EPI; j++) {
    const int k = lane + j * L;
    if (live && k < K) ST(dx, dx_off + base + k, inv * (g[j] - a - h[j] * c));
  }
}

// Batch norm with running statistics on an input and output that share a dense NCHW-like layout:
// planes of len elements, plane p holding channel p % C. A work-item normalises ILP elements of
// one plane (dim 1 of the grid), loaded before any is stored as in cl/pointwise.cl, with the
// plane's scale computed once: per-element channel arithmetic and square roots made a flat
// version compute-bound, and the per-channel work-groups of norm_forward ran at about half the
// memory bandwidth.
#define ILP 4   // as cl/pointwise.cl: the host sizes the grid with pointwise.plane_launch
__kernel void bn_eval(__global T* y, int y_off, __global const T* x, int x_off,
                      __global const PT* w, int w_off, __global const PT* b, int b_off,
                      __global const PT* rmean, int rmean_off, __global const PT* rvar, int rvar_off,
                      int planes, int len, int C, int flags, CT eps) {
  const int p = get_global_id(1), item = get_global_id(0), G = get_global_size(0);
  if (p >= planes) return;
  const int c = p % C, base = p * len;
  CT s = (CT)1 / sqrt(LDP(rvar, rvar_off + c) + eps);
  if (flags & F_WEIGHT) s *= LDP(w, w_off + c);
  const CT m = LDP(rmean, rmean_off + c), t = (flags & F_BIAS) ? (CT)LDP(b, b_off + c) : (CT)0;
  CT xs[ILP];
  for (int k = 0; k < ILP; k++) {
    const int e = item + k * G;
    xs[k] = e < len ? LD(x, x_off + base + e) : (CT)0;
  }
  for (int k = 0; k < ILP; k++) {
    const int e = item + k * G;
    if (e < len) ST(y, y_off + base + e, (xs[k] - m) * s + t);
  }
}

// Folds batch norm with running statistics into the convolution before it (compiled inference):
// w2[k, j] = w[k, j] * s[k] and b2[k] = (b[k] - mean[k]) * s[k] + beta[k], with
// s[k] = gamma[k] / sqrt(var[k] + eps), for dense filters of K rows of len elements (each of the
// conv bias b, gamma and beta optional: flags). One launch for both, over K * max(len, 1) items,
// so that a folded layer costs one small kernel per call.
#define FOLD_CONV_BIAS 1
#define FOLD_GAMMA 2
#define FOLD_BETA 4
__kernel void bn_fold(__global PT* w2, __global PT* b2, __global const PT* w,
                      __global const PT* b, int b_off, __global const PT* gamma, int g_off,
                      __global const PT* beta, int beta_off, __global const PT* rmean, int rmean_off,
                      __global const PT* rvar, int rvar_off, int K, int len, int flags, CT eps) {
  const int L = max(len, 1), i = get_global_id(0), k = i / L;
  if (k >= K) return;
  CT s = (CT)1 / sqrt((CT)LDP(rvar, rvar_off + k) + eps);
  if (flags & FOLD_GAMMA) s *= LDP(gamma, g_off + k);
  if (len > 0) STP(w2, i, LDP(w, i) * s);
  if (i == k * L) {
    const CT t = ((flags & FOLD_CONV_BIAS) ? (CT)LDP(b, b_off + k) : (CT)0) - LDP(rmean, rmean_off + k);
    STP(b2, k, t * s + ((flags & FOLD_BETA) ? (CT)LDP(beta, beta_off + k) : (CT)0));
  }
}
