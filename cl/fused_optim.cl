// Fused optimizer steps (aten._fused_adam_ / _fused_adamw_ / _fused_sgd_):
// one launch updates every tensor of a list, up to 10 (Adam) / 16 (SGD)
// tensors. OpenCL 1.2 cannot pass an array of buffers, so each tensor slot
// has its own arguments: its buffers first, then their element offsets, its
// length and first work-group (grouping the pointers keeps alignment padding
// out), so that all arguments stay within the 1024 bytes every device accepts.
//
// Work is split by a chunk table: tensor slot j owns work-groups
// [gs_j, gs_{j+1}) of a 1-D launch (unused slots have gs = the group count),
// and group k of the slot updates elements [k*CHUNK, (k+1)*CHUNK), CHUNK =
// LS * ILP. So a list of one large and many small tensors keeps every
// work-group busy. The host only sends dense operands that share one layout:
// element i of a slot is at offset + i in each of them.
//
// Step counters, and a learning rate, grad_scale or found_inf given as
// tensors, are float32 device scalars read here, so a step issues no host
// work and can be captured (oclcore.graph). As torch's CUDA kernels: the whole launch does
// nothing where found_inf != 0; with grad_scale the unscaled gradient is
// stored back into grad.
//
// -D: T (parameter storage type), LD / STO (its load and store macros), TO
//     (= T), CT (compute type), FP64, LS (work-group size), ILP (elements per
//     work-item). The host puts types.cl first.

// flags shared by both kernels
#define F_MAXIMIZE 1
#define F_LR_DEV 2      // lr from lr_t[lr_off], else lr_in
#define F_SCALE 4       // divide grads by the scale (stored back)
#define F_SCALE_DEV 8   // the scale from scale_t[scale_off], else scale_in
#define F_FOUND_INF 16  // skip everything when found_inf[fi_off] != 0
// Adam
#define F_AMSGRAD 32
#define F_ADAMW 64
// SGD
#define F_MOMENTUM 32
#define F_NESTEROV 64
#define F_FIRST 128     // first step: the momentum buffer becomes the gradient

#define CHUNK (LS * ILP)
#define EACH10(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)
#define EACH16(X) EACH10(X) X(10) X(11) X(12) X(13) X(14) X(15)

#define SHARED_SCALARS                                                        \
  __global const float *lr_t, int lr_off, __global const float *scale_t,     \
      int scale_off, __global const float *found_inf, int fi_off, CT lr_in,  \
      CT scale_in

inline CT fo_lr(int flags, CT lr_in, __global const float *lr_t, int lr_off) {
  return (flags & F_LR_DEV) ? (CT)lr_t[lr_off] : lr_in;
}

inline CT fo_scale(int flags, CT scale_in, __global const float *scale_t, int scale_off) {
  return (flags & F_SCALE_DEV) ? (CT)scale_t[scale_off] : scale_in;
}

// The gradient of element i as the update uses it: unscaled (and stored back, as torch does)
// where a grad_scale is given, negated under maximize.
inline CT fo_grad(__global T *g, int i, int flags, CT scale) {
  CT grad = LD(g, i);
  if (flags & F_SCALE) {
    grad = grad / scale;
    STO(g, i, grad);
  }
  return (flags & F_MAXIMIZE) ? -grad : grad;
}

// ---- Adam / AdamW ----
// slot: param p, grad g, exp_avg m, exp_avg_sq v, max_exp_avg_sq w (amsgrad;
// else any buffer), step s; their element offsets; length n; first
// work-group gs.

#define ADAM_SLOT(j)                                                          \
  __global T *p##j, __global T *g##j, __global T *m##j, __global T *v##j,     \
      __global T *w##j, __global const float *s##j, int po##j, int go##j,     \
      int mo##j, int vo##j, int wo##j, int so##j, int n##j, int gs##j,

#define ADAM_PICK(j)                                                          \
  if (grp >= gs##j) {                                                         \
    p = p##j + po##j; g = g##j + go##j; m = m##j + mo##j; v = v##j + vo##j;   \
    w = w##j + wo##j; s = s##j + so##j; n = n##j; first = gs##j;              \
  }

// Per element, in the order of torch's single-tensor Adam:
//   grad = ±grad (+ wd * param, Adam) ; param *= 1 - lr * wd (AdamW)
//   m = lerp(m, grad, 1 - beta1) ; v = v * beta2 + (1 - beta2) * grad^2
//   w = max(w, v) (amsgrad) ; param -= lr / bc1 * m / (sqrt(v or w) / sqrt(bc2) + eps)
// with bias corrections bc = 1 - beta^step = -expm1(step * log(beta)), the
// logarithms taken on the host in double (accurate where beta^step is near 1).
__kernel void fused_adam(EACH10(ADAM_SLOT) int flags, CT omb1, CT beta2, CT omb2, CT log_b1,
                         CT log_b2, CT weight_decay, CT eps, SHARED_SCALARS) {
  int grp = get_group_id(0);
  __global T *p, *g, *m, *v, *w;
  __global const float *s;
  int n, first = -1;
  EACH10(ADAM_PICK)
  if (first < 0) return;
  if ((flags & F_FOUND_INF) && found_inf[fi_off] != 0) return;
  CT lr = fo_lr(flags, lr_in, lr_t, lr_off);
  CT scale = fo_scale(flags, scale_in, scale_t, scale_off);
  CT step = (CT)s[0];
  CT step_size = lr / -expm1(step * log_b1);
  CT bc2_sqrt = sqrt(-expm1(step * log_b2));
  CT decay = 1 - lr * weight_decay;
  int base = (grp - first) * CHUNK + get_local_id(0);
  for (int k = 0; k < ILP; k++) {
    int i = base + k * LS;
    if (i >= n) break;
    CT param = LD(p, i);
    CT grad = fo_grad(g, i, flags, scale);
    if (weight_decay != 0) {
      if (flags & F_ADAMW) param = param * decay;
      else grad = grad + weight_decay * param;
    }
    CT ea = LD(m, i);
    ea = omb1 < (CT)0.5 ? ea + omb1 * (grad - ea) : grad - (grad - ea) * (1 - omb1);  // torch's lerp
    CT es = LD(v, i) * beta2 + omb2 * grad * grad;
    CT den = es;
    if (flags & F_AMSGRAD) {
      CT mx = LD(w, i);
      den = (mx > es || isnan(mx)) ? mx : es;  // NaN propagates, as torch.maximum
      STO(w, i, den);
    }
    den = sqrt(den) / bc2_sqrt + eps;
    STO(p, i, param + (-step_size) * (ea / den));
    STO(m, i, ea);
    STO(v, i, es);
  }
}

// ---- SGD ----
// slot: param p, grad g, momentum buffer b (momentum != 0; else any
// buffer); their element offsets; length n; first work-group gs.

#define SGD_SLOT(j)                                                           \
  __global T *p##j, __global T *g##j, __global T *b##j, int po##j, int go##j, \
      int bo##j, int n##j, int gs##j,

#define SGD_PICK(j)                                                           \
  if (grp >= gs##j) {                                                         \
    p = p##j + po##j; g = g##j + go##j; b = b##j + bo##j; n = n##j;           \
    first = gs##j;                                                            \
  }

// Per element, in the order of torch's single-tensor SGD:
//   grad = ±grad + wd * param ; buf = first ? grad : buf * momentum + (1 - dampening) * grad
//   grad = nesterov ? grad + momentum * buf : buf ; param -= lr * grad
__kernel void fused_sgd(EACH16(SGD_SLOT) int flags, CT weight_decay, CT momentum, CT omd,
                        SHARED_SCALARS) {
  int grp = get_group_id(0);
  __global T *p, *g, *b;
  int n, first = -1;
  EACH16(SGD_PICK)
  if (first < 0) return;
  if ((flags & F_FOUND_INF) && found_inf[fi_off] != 0) return;
  CT lr = fo_lr(flags, lr_in, lr_t, lr_off);
  CT scale = fo_scale(flags, scale_in, scale_t, scale_off);
  int base = (grp - first) * CHUNK + get_local_id(0);
  for (int k = 0; k < ILP; k++) {
    int i = base + k * LS;
    if (i >= n) break;
    CT param = LD(p, i);
    CT grad = fo_grad(g, i, flags, scale);
    if (weight_decay != 0) grad = grad + weight_decay * param;
    if (flags & F_MOMENTUM) {
      CT buf = (flags & F_FIRST) ? grad : LD(b, i) * momentum + omd * grad;
      STO(b, i, buf);
      grad = (flags & F_NESTEROV) ? grad + momentum * buf : buf;
    }
    STO(p, i, param + (-lr) * grad);
  }
}
