// LSTM and GRU cells: what torch's nn.LSTM / nn.GRU / LSTMCell / GRUCell call on an accelerator
// (aten._thnn_fused_lstm_cell, _thnn_fused_gru_cell and their backward ops), after the input and
// hidden projections ran as GEMMs. One work-item per hidden unit j of one batch row b.
// Gates are rows of G*H elements in torch's order: LSTM input, forget, cell, output (G = 4); GRU
// reset, update, new (G = 3). Inputs are row-major from their offsets; outputs are fresh and
// contiguous. The workspace keeps what backward needs: the LSTM's activated gates (4H per row),
// the GRU's reset, update and new gates, the previous hidden state and the hidden projection of
// the new gate with its bias (5H per row).
// -D: T, LD, TO, STO, CT, FP64 (cl/types.cl)

inline CT sigmoid_ct(CT x) { return (CT)1 / ((CT)1 + exp(-x)); }

// gate k of unit j: input projection + hidden projection (+ both biases)
#define GATES(k) (LD(ig, ig_off + row + (k) * H + j) + LD(hg, hg_off + row + (k) * H + j) + \
                  (has_bias ? LD(ib, ib_off + (k) * H + j) + LD(hb, hb_off + (k) * H + j) : (CT)0))

__kernel void lstm_cell_forward(__global TO *hy, __global TO *cy, __global TO *ws,
                                __global const T *ig, int ig_off, __global const T *hg, int hg_off,
                                __global const T *cx, int cx_off, __global const T *ib, int ib_off,
                                __global const T *hb, int hb_off, int B, int H, int has_bias) {
  int g = get_global_id(0);
  if (g >= B * H) return;
  int b = g / H, j = g - b * H, row = b * 4 * H;
  CT i = sigmoid_ct(GATES(0)), f = sigmoid_ct(GATES(1)), c = tanh(GATES(2)), o = sigmoid_ct(GATES(3));
  CT c_new = f * LD(cx, cx_off + g) + i * c;
  STO(cy, g, c_new);
  STO(hy, g, o * tanh(c_new));
  STO(ws, row + j, i);
  STO(ws, row + H + j, f);
  STO(ws, row + 2 * H + j, c);
  STO(ws, row + 3 * H + j, o);
}

// grad_hy / grad_cy may be absent (has_* = 0: zeros).
__kernel void lstm_cell_backward(__global TO *grad_gates, __global TO *grad_cx,
                                 __global const T *ghy, int ghy_off, int has_ghy,
                                 __global const T *gcy, int gcy_off, int has_gcy,
                                 __global const T *cx, int cx_off, __global const T *cy, int cy_off,
                                 __global const T *ws, int ws_off, int B, int H) {
  int g = get_global_id(0);
  if (g >= B * H) return;
  int b = g / H, j = g - b * H, row = b * 4 * H;
  CT i = LD(ws, ws_off + row + j), f = LD(ws, ws_off + row + H + j);
  CT c = LD(ws, ws_off + row + 2 * H + j), o = LD(ws, ws_off + row + 3 * H + j);
  CT go = has_ghy ? LD(ghy, ghy_off + g) : (CT)0;
  CT t = tanh(LD(cy, cy_off + g));
  CT gc = go * o * ((CT)1 - t * t) + (has_gcy ? LD(gcy, gcy_off + g) : (CT)0);
  STO(grad_gates, row + j, gc * c * ((CT)1 - i) * i);
  STO(grad_gates, row + H + j, gc * LD(cx, cx_off + g) * ((CT)1 - f) * f);
  STO(grad_gates, row + 2 * H + j, gc * i * ((CT)1 - c * c));
  STO(grad_gates, row + 3 * H + j, go * t * ((CT)1 - o) * o);
  STO(grad_cx, g, gc * f);
}

__kernel void gru_cell_forward(__global TO *hy, __global TO *ws,
                               __global const T *ig, int ig_off, __global const T *hg, int hg_off,
                               __global const T *hx, int hx_off, __global const T *ib, int ib_off,
                               __global const T *hb, int hb_off, int B, int H, int has_bias) {
  int g = get_global_id(0);
  if (g >= B * H) return;
  int b = g / H, j = g - b * H, row = b * 3 * H, ws_row = b * 5 * H;
  CT r = sigmoid_ct(GATES(0)), z = sigmoid_ct(GATES(1));
  CT hn = LD(hg, hg_off + row + 2 * H + j) + (has_bias ? LD(hb, hb_off + 2 * H + j) : (CT)0);
  CT in = LD(ig, ig_off + row + 2 * H + j) + (has_bias ? LD(ib, ib_off + 2 * H + j) : (CT)0);
  CT n = tanh(in + r * hn);
  CT h = LD(hx, hx_off + g);
  STO(hy, g, n + z * (h - n));
  STO(ws, ws_row + j, r);
  STO(ws, ws_row + H + j, z);
  STO(ws, ws_row + 2 * H + j, n);
  STO(ws, ws_row + 3 * H + j, h);
  STO(ws, ws_row + 4 * H + j, hn);
}

__kernel void gru_cell_backward(__global TO *grad_ig, __global TO *grad_hg, __global TO *grad_hx,
                                __global const T *ghy, int ghy_off, __global const T *ws, int ws_off,
                                int B, int H) {
  int g = get_global_id(0);
  if (g >= B * H) return;
  int b = g / H, j = g - b * H, row = b * 3 * H, ws_row = ws_off + b * 5 * H;
  CT r = LD(ws, ws_row + j), z = LD(ws, ws_row + H + j), n = LD(ws, ws_row + 2 * H + j);
  CT h = LD(ws, ws_row + 3 * H + j), hn = LD(ws, ws_row + 4 * H + j);
  CT go = LD(ghy, ghy_off + g);
  CT gz = go * (h - n) * ((CT)1 - z) * z;
  CT gn = go * ((CT)1 - z) * ((CT)1 - n * n);
  CT gr = gn * hn * ((CT)1 - r) * r;
  STO(grad_ig, row + j, gr);
  STO(grad_ig, row + H + j, gz);
  STO(grad_ig, row + 2 * H + j, gn);
  STO(grad_hg, row + j, gr);
  STO(grad_hg, row + H + j, gz);
  STO(grad_hg, row + 2 * H + j, gn * r);
  STO(grad_hx, g, go * z);
}
