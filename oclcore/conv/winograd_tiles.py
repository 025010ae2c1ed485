"""Winograd convolution with any output tile and filter size: F(4x4,3x3), which
needs 2.25 multiplies per output where F(2x2,3x3) needs 4, and F(2x2,5x5), 9
where direct 5x5 needs 25. The transform matrices come from
winograd_transforms.py; the kernels are cl/conv_winograd_tiles.cl.

These run the forward and data-gradient passes (stride 1, dilation 1). They
are not in the heuristic's choices until they are measured on a GPU: they run
when forced (``force_algorithm``) or when benchmark mode times them fastest."""

from .algorithms import FORWARD, GRAD_INPUT, Algorithm, winograd_pass
from .winograd_transforms import c_initializer, transforms


class WinogradTiles(Algorithm):
    """Winograd F(m x m, r x r) for r x r, stride-1, dilation-1 convolutions through
    algorithms.winograd_pass (the data gradient needs padding p <= r - 1)."""

    def __init__(self, m, r):
        self.m, self.r = m, r
        self.name = f"winograd_f{m}x{m}_{r}x{r}"
        at, g, bt = transforms(m, r)
        defines = dict(MT=m, RT=r, NT=m + r - 1, AT_INIT=c_initializer(at), G_INIT=c_initializer(g),
                       BT_INIT=c_initializer(bt))
        self.kernels = ("conv_winograd_tiles.cl", "wt_filter", "wt_input", "wt_output", defines)

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


TILED = (WinogradTiles(4, 3), WinogradTiles(2, 5))
