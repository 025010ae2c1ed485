"""Winograd convolution with any output tile and filter size: F(4x4,3x3), which
needs 2.25 multiplies per output where F(2x2,3x3) needs 4, and F(2x2,5x5), 9
where direct 5x5 needs 25. The transform matrices come from
winograd_transforms.py; the kernels are cl/conv_winograd_tiles.cl.

These run the forward and data-gradient passes (stride 1, dilation 1). They
are not in the heuristic's choices until they are measured on a GPU: they run
when forced (``force_algorithm``) or when benchmark mode times them fastest."""

from ..gemm.planner import ACTIVATIONS
from .algorithms import _F32, FORWARD, GRAD_INPUT, Algorithm, _bias_args, _chunks, _d4, launch_ew
from .winograd_transforms import c_initializer, transforms

_FILE = "conv_winograd_tiles.cl"


class WinogradTiles(Algorithm):
    """Winograd F(m x m, r x r) for r x r, stride-1, dilation-1 convolutions: filter, input and
    output transforms and (m + r - 1)^2 batched GEMMs per group. grad_input runs the same
    pipeline on dy with the flipped, channel-swapped filter and padding r - 1 - p (hence
    p <= r - 1). Every pass sizes its batch chunks (at least one image) by the workspace
    budget."""

    def __init__(self, m, r):
        self.m, self.r, self.n = m, r, m + r - 1
        self.name = f"winograd_f{m}x{m}_{r}x{r}"
        at, g, bt = transforms(m, r)
        self.defines = dict(MT=m, RT=r, NT=self.n, AT_INIT=c_initializer(at), G_INIT=c_initializer(g),
                            BT_INIT=c_initializer(bt))

    def supports(self, g, pass_=FORWARD):
        base = g.R == g.S == self.r and g.sh == g.sw == 1 and g.dh == g.dw == 1
        if pass_ == FORWARD:
            return base
        if pass_ == GRAD_INPUT:
            return base and g.pt <= self.r - 1 and g.pl <= self.r - 1
        return False

    def forward(self, ctx, g, x, w, bias, y, act="none"):
        self._run(ctx, g, x, w, 0, g.Kg, g.Cg, g.H, g.W, g.P, g.Q, g.pt, g.pl, y, bias, act)

    def grad_input(self, ctx, g, dy, w, dx):
        r = self.r
        self._run(ctx, g, dy, w, 1, g.Cg, g.Kg, g.P, g.Q, g.H, g.W, r - 1 - g.pt, r - 1 - g.pl, dx, None, "none")

    def _launch(self, ctx, name, sig, gsize, args):
        launch_ew(ctx, _FILE, name, sig, gsize, args, self.defines)

    def _run(self, ctx, g, src, w, flip, Ko, Ci, Hi, Wi, Po, Qo, ph, pw, out, bias, act):
        G, N, m, planes = g.groups, g.N, self.m, self.n * self.n
        U = ctx.temp(planes * G * Ko * Ci)
        self._launch(ctx, "wt_filter", "Biiiii" "Bi" "iiii", (Ci, Ko, G), _d4(w) + (U, 0, Ko, Ci, G, flip))
        TH, TW = -(-Po // m), -(-Qo // m)
        per_image = planes * G * (Ci + Ko) * TH * TW * _F32
        b = _bias_args(bias, out) + (ACTIVATIONS[act],)
        for n0, nb in _chunks(N, per_image, ctx.workspace_bytes):
            T = nb * TH * TW
            V, M = ctx.temp(planes * G * Ci * T), ctx.temp(planes * G * Ko * T)
            self._launch(ctx, "wt_input", "Biiiii" "Bi" + "i" * 10, (T, Ci, G),
                         _d4(src) + (V, 0, Ci, G, Hi, Wi, TH, TW, T, ph, pw, n0))
            # [xi][g] planes are evenly spaced in U, V and M: one batch of planes*G GEMMs
            ctx.gemm(U, 0, Ci, 1, V, 0, T, 1, M, 0, T, 1,
                     Ko, T, Ci, 1.0, 0.0, planes * G, Ko * Ci, Ci * T, Ko * T)
            self._launch(ctx, "wt_output", "Bi" "Biiiii" "Biii" + "i" * 8, (T, Ko, G),
                         (M, 0) + _d4(out) + b + (Ko, G, Po, Qo, TH, TW, T, n0))
            ctx.release(V, M)
        ctx.release(U)


TILED = (WinogradTiles(4, 3), WinogradTiles(2, 5))
