"""Kernel time of the depthwise layers of efficientnet_b0 and mobilenet_v2 (batch 64) for each
work-group tile (LX columns x LY rows of work-items, VP output rows per work-item; "None": the
planner's tile for that VP) next to the planner's choice: forward (dw_forward) and data gradient (dw_grad_input), in us per layer and as
a fraction of the bytes the layer must move at the device's measured copy bandwidth.

    python bench/probes/depthwise_tiles.py [--vp 2 4 8] [--models efficientnet_b0 mobilenet_v2]
"""
import argparse
import collections
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from conv import conv_layers  # noqa: E402
from kernel_time import kernel_us  # noqa: E402

from oclcore.conv import algorithms  # noqa: E402
from oclcore.ops import conv as conv_ops  # noqa: E402

CANDIDATES = [(lx, ly) for lx in (8, 16, 32, 64) for ly in (1, 2, 4, 8)]


def fixed(lx, ly):
    """A stand-in for algorithms._dw_tile that always picks the (lx, ly) tile."""
    def tile(rows, cols, nt, nb, span_h, span_w, RS):
        th, tw = span_h(ly * nt), span_w(lx * nb)
        lz = min(max(1, 64 // (lx * ly)), algorithms._DW_LOCAL // ((RS + th * tw) * 4))
        return (lx, ly, lz, th, tw) if lz and lx * ly * lz <= 256 else None
    return tile


def reset():
    algorithms.Depthwise._plans.clear()
    conv_ops._memo.clear()
    conv_ops._backward_memo.clear()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vp", type=int, nargs="*", default=[4])
    p.add_argument("--models", nargs="*", default=["efficientnet_b0", "mobilenet_v2"])
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args()
    big = torch.empty(256 << 20, dtype=torch.uint8, device="ocl")
    copy = kernel_us(lambda: big.clone(), reps=3)
    bandwidth = 2 * big.numel() / (sum(copy.values()) * 1e-6) if copy else 3.5e12
    print(f"device copy bandwidth {bandwidth / 1e12:.2f} TB/s")
    layers = collections.Counter()
    for m in a.models:
        layers.update({k: v for k, v in conv_layers(m, a.batch).items() if k[-1] > 1})
    original = algorithms._dw_tile
    totals = collections.defaultdict(float)
    for layer, count in layers.items():
        n, c, h, w, co, cg, r, s, stride, padding, dilation, groups = layer
        x = torch.randn(n, c, h, w, device="ocl", requires_grad=True)
        wt = torch.randn(co, cg, r, s, device="ocl")
        y = F.conv2d(x, wt, None, stride, padding, dilation, groups)
        g = torch.randn_like(y)
        need = 4 * (x.numel() + y.numel())
        defaults = algorithms._DW_VP, algorithms._DW_VP_FORWARD_S1
        reset()
        t = kernel_us(lambda: torch.autograd.grad(F.conv2d(x, wt, None, stride, padding, dilation, groups), x, g),
                      {"dw_forward", "dw_grad_input"}, reps=5)
        planner = ("planner", None, t["dw_forward"], t["dw_grad_input"])
        rows = [planner]
        for vp in a.vp:
            algorithms._DW_VP = algorithms._DW_VP_FORWARD_S1 = vp
            for cand in [None] + CANDIDATES:
                algorithms._dw_tile = original if cand is None else fixed(*cand)
                reset()
                try:
                    t = kernel_us(lambda: torch.autograd.grad(
                        F.conv2d(x, wt, None, stride, padding, dilation, groups), x, g),
                        {"dw_forward", "dw_grad_input"}, reps=5)
                except Exception as e:  # a tile the device cannot run
                    print("  skipped", vp, cand, type(e).__name__, str(e)[:80])
                    continue
                if len(t) == 2:
                    rows.append((vp, cand, t["dw_forward"], t["dw_grad_input"]))
        algorithms._dw_tile = original
        algorithms._DW_VP, algorithms._DW_VP_FORWARD_S1 = defaults
        reset()
        ideal = need / bandwidth * 1e6
        best_f = min(rows, key=lambda r: r[2])
        best_b = min(rows, key=lambda r: r[3])
        print(f"{str(layer[:9]):44s} x{count}  ideal {ideal:7.1f} us | planner fwd {planner[2]:7.1f} "
              f"bwd-x {planner[3]:7.1f} | best fwd {best_f[2]:7.1f} (vp {best_f[0]}, {best_f[1]}) "
              f"best bwd-x {best_b[3]:7.1f} (vp {best_b[0]}, {best_b[1]})", flush=True)
        totals["ideal"] += ideal * count
        totals["planner fwd"] += planner[2] * count
        totals["planner bwd-x"] += planner[3] * count
        totals["best fwd"] += best_f[2] * count
        totals["best bwd-x"] += best_b[3] * count
        for vp, cand, f, b in rows[1:]:
            if cand is not None:
                totals[("fwd", vp, cand)] += f * count
                totals[("bwd", vp, cand)] += b * count
    print("totals (us, layers x count):", {k: round(v, 1) for k, v in totals.items() if isinstance(k, str)})
    for kind in ("fwd", "bwd"):
        ranked = sorted((v, k[1:]) for k, v in totals.items() if isinstance(k, tuple) and k[0] == kind)
        print(f"best single {kind} tiles:", [(round(v, 1), k) for v, k in ranked[:5]])


if __name__ == "__main__":
    main()
