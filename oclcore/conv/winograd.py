"""Winograd convolutions (stride 1, dilation 1) on one kernel template,
cl/conv_winograd.cl, whose transform matrices come from winograd_transforms.py:
F(2x2,3x3) ("winograd"), F(4x4,3x3), which needs 2.25 multiplies per output
where F(2x2,3x3) needs 4, and F(2x2,5x5), 9 where direct 5x5 needs 25. Each
runs the forward and data-gradient passes; F(2x2,3x3) also runs the filter
gradient (cl/conv_winograd_grad_weight.cl)."""

from .algorithms import (_F32, ACTIVATIONS, FORWARD, GRAD_INPUT, GRAD_WEIGHT, Algorithm, _bias_args,
                         _chunks, _d4, launch_ew)
from .winograd_transforms import c_initializer, transforms

_INPUT_SIG = "Biiiii" "Bi" + "i" * 10


def winograd_pass(ctx, g, kernels, m, r, src, w, flip, out, bias, act):
    """The forward (flip 0: src = x) or data-gradient (flip 1: src = dy, the filter flipped and its
    channels swapped, padding r - 1 - p) pass of Winograd F(m x m, r x r): the filter transform,
    then per chunk of images (sized by the workspace budget) the input transform, one batch of
    (m + r - 1)^2 * groups GEMMs and the output transform with bias and activation. ``kernels``:
    (file, filter, input and output kernel names, defines) of cl/conv_winograd.cl."""
    file, k_filter, k_input, k_output, defines = kernels
    G, N, planes = g.groups, g.N, (m + r - 1) ** 2
    if flip:
        Ko, Ci, Hi, Wi, Po, Qo, ph, pw = g.Cg, g.Kg, g.P, g.Q, g.H, g.W, r - 1 - g.pt, r - 1 - g.pl
    else:
        Ko, Ci, Hi, Wi, Po, Qo, ph, pw = g.Kg, g.Cg, g.H, g.W, g.P, g.Q, g.pt, g.pl
    U = ctx.temp(planes * G * Ko * Ci)
    launch_ew(ctx, file, k_filter, "Biiiii" "Bi" "iiii", (Ci, Ko, G), _d4(w) + (U, 0, Ko, Ci, G, flip), defines)
    TH, TW = -(-Po // m), -(-Qo // m)
    per_image = planes * G * (Ci + Ko) * TH * TW * _F32
    b = _bias_args(bias, out) + (ACTIVATIONS[act],)
    for n0, nb in _chunks(N, per_image, ctx.workspace_bytes):
        T = nb * TH * TW
        V, M = ctx.temp(planes * G * Ci * T), ctx.temp(planes * G * Ko * T)
        launch_ew(ctx, file, k_input, _INPUT_SIG, (T, Ci, G),
                  _d4(src) + (V, 0, Ci, G, Hi, Wi, TH, TW, T, ph, pw, n0), defines)
        # [xi][g] planes are evenly spaced in U, V and M: one batch of planes*G GEMMs
        ctx.gemm(U, 0, Ci, 1, V, 0, T, 1, M, 0, T, 1,
                 Ko, T, Ci, 1.0, 0.0, planes * G, Ko * Ci, Ci * T, Ko * T)
        launch_ew(ctx, file, k_output, "Bi" "Biiiii" "Biii" + "i" * 8, (T, Ko, G),
                  (M, 0) + _d4(out) + b + (Ko, G, Po, Qo, TH, TW, T, n0), defines)
        ctx.release(V, M)
    ctx.release(U)


class WinogradTiles(Algorithm):
    """Winograd F(m x m, r x r) for r x r, stride-1, dilation-1 convolutions through
    winograd_pass (the data gradient needs padding p <= r - 1)."""

    def __init__(self, m, r, name=None):
        self.m, self.r = m, r
        self.name = name or f"winograd_f{m}x{m}_{r}x{r}"
        at, g, bt = transforms(m, r)
        defines = dict(MT=m, RT=r, NT=m + r - 1, AT_INIT=c_initializer(at), G_INIT=c_initializer(g),
                       BT_INIT=c_initializer(bt))
        self.kernels = ("conv_winograd.cl", "wt_filter", "wt_input", "wt_output", defines)

    def supports(self, g, pass_=FORWARD):
        base = g.R == g.S == self.r and g.sh == g.sw == 1 and g.dh == g.dw == 1
        if pass_ == FORWARD:
            return base
        if pass_ == GRAD_INPUT:
            return base and g.pt <= self.r - 1 and g.pl <= self.r - 1
        return False

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        winograd_pass(ctx, g, self.kernels, self.m, self.r, x, w, 0, y, bias, act)

    def grad_input(self, ctx, g, dy, w, dx):
        winograd_pass(ctx, g, self.kernels, self.m, self.r, dy, w, 1, dx, None, "none")


class Winograd(WinogradTiles):
    """Winograd F(2x2,3x3). grad_weight transforms dy tiles (A dY A^T) and input
    tiles (B^T d B), sums their products over the batch and tiles as 16 batched
    GEMMs per group (Kg x T times T x Cg) and maps the 4x4 result back to 3x3
    (G^T dU G). Every pass sizes its batch chunks (at least one image) by the
    workspace budget."""

    def __init__(self):
        super().__init__(2, 3, "winograd")

    def supports(self, g, pass_=FORWARD):
        return super().supports(g, FORWARD if pass_ == GRAD_WEIGHT else pass_)

    def grad_weight(self, ctx, g, dy, x, dw):
        file = "conv_winograd_grad_weight.cl"
        G, Ko, Ci = g.groups, g.Kg, g.Cg
        TH, TW = (g.P + 1) // 2, (g.Q + 1) // 2
        dU = ctx.temp(16 * G * Ko * Ci)
        per_image = 16 * G * (Ci + Ko) * TH * TW * _F32
        for n0, nb in _chunks(g.N, per_image, ctx.workspace_bytes):
            T = nb * TH * TW
            V, Z = ctx.temp(16 * G * Ci * T), ctx.temp(16 * G * Ko * T)
            launch_ew(ctx, file, "wino_input", _INPUT_SIG, (T, Ci, G),
                      _d4(x) + (V, 0, Ci, G, g.H, g.W, TH, TW, T, g.pt, g.pl, n0))
            launch_ew(ctx, file, "wino_grad_output", "Biiiii" "Bi" + "i" * 8,
                      (T, Ko, G), _d4(dy) + (Z, 0, Ko, G, g.P, g.Q, TH, TW, T, n0))
            ctx.gemm(Z, 0, T, 1, V, 0, 1, T, dU, 0, Ci, 1,
                     Ko, Ci, T, 1.0, 0.0 if n0 == 0 else 1.0, 16 * G, Ko * T, Ci * T, Ko * Ci)
            ctx.release(V, Z)
        launch_ew(ctx, file, "wino_filter_grad", "Bi" "Biiiii" "iii", (Ci, Ko, G),
                  (dU, 0) + _d4(dw) + (Ko, Ci, G))
        ctx.release(dU)
