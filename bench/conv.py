"""Convolution layers of real networks: per-layer forward and backward time and
effective TFLOP/s for each oclcore algorithm and the planner's choice, next to
torch on a reference device (cuDNN with TF32 off when CUDA is present, else the
CPU), in one run. Layer shapes are read from torchvision models on the meta
device; identical layers are timed once and weighted by their count.

    python bench/conv.py [--models resnet50 vgg16 ...] [--batch N] [--out DIR]
"""

import argparse
import collections
import json
import os

import torch
import torch.nn.functional as F

from timing import median_seconds

# oclcore is imported only in the process that times ocl: once the ocl backend is registered,
# torch's autograd engine cannot run CUDA backward passes in that process (torch 2.11-2.14).

BATCH = {"resnet50": 32, "vgg16": 16, "mobilenet_v2": 32, "efficientnet_b0": 32, "convnext_small": 16}


def conv_layers(model_name, batch, image=224):
    """{(N, C, H, W, Co, Cg, R, S, stride, padding, dilation, groups): count} for the model's Conv2d layers."""
    import torchvision

    model = getattr(torchvision.models, model_name)().to("meta").eval()
    found = collections.Counter()

    def hook(mod, inp, out):
        x = inp[0]
        found[(batch, *x.shape[1:], mod.out_channels, mod.in_channels // mod.groups, *mod.kernel_size,
               mod.stride, mod.padding, mod.dilation, mod.groups)] += 1

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.empty(1, 3, image, image, device="meta"))
    return found


def flops(layer):
    n, c, h, w, co, cg, r, s, stride, padding, dilation, groups = layer
    ho = (h + 2 * padding[0] - dilation[0] * (r - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (s - 1) - 1) // stride[1] + 1
    return 2.0 * n * co * ho * wo * cg * r * s


def time_layer(layer, device, sync):
    """(forward s, backward s) of the layer on ``device`` (backward = input and weight gradients)."""
    n, c, h, w, co, cg, r, s, stride, padding, dilation, groups = layer
    x = torch.randn(n, c, h, w, device=device, requires_grad=True)
    wt = torch.randn(co, cg, r, s, device=device, requires_grad=True)
    y = F.conv2d(x, wt, None, stride, padding, dilation, groups)
    g = torch.randn_like(y)
    fwd = median_seconds(lambda: F.conv2d(x, wt, None, stride, padding, dilation, groups), sync, 0.1, 50)
    bwd = median_seconds(lambda: torch.autograd.grad(F.conv2d(x, wt, None, stride, padding, dilation, groups),
                                                  (x, wt), g), sync, 0.1, 50) - fwd
    return fwd, max(bwd, 1e-9)


def supports_forward(oconv, name, layer, device):
    """Whether algorithm ``name`` runs the layer's forward pass."""
    n, c, h, w, co, cg, r, s, stride, padding, dilation, groups = layer
    x = torch.empty(1, c, h, w, device=device)
    wt = torch.empty(co, cg, r, s, device=device)
    try:
        with oconv.force_algorithm(name, strict=True):
            F.conv2d(x, wt, None, stride, padding, dilation, groups)
        return True
    except RuntimeError:  # "... does not support forward"
        return False


def register_tile(oconv, name):
    """Builds a Winograd tile size that is not shipped (e.g. winograd_f3x3_3x3)."""
    import re

    from oclcore.conv.winograd import WinogradTiles

    m = re.fullmatch(r"winograd_f(\d+)x\1_(\d+)x\2", name)
    if name not in oconv.ALGORITHMS and m:
        oconv.ALGORITHMS[name] = WinogradTiles(int(m.group(1)), int(m.group(2)))


def reference_times(args, layers_by_model):
    """Times every layer on the reference device in a child process: torch's autograd engine
    cannot run backward on ocl in a process that has also run CUDA work."""
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        cmd = [sys.executable, __file__, "--reference-only", f.name, "--image", str(args.image),
               "--models", *args.models] + (["--batch", str(args.batch)] if args.batch else [])
        subprocess.run(cmd, check=True)
        data = json.load(open(f.name))
    return data["name"], {tuple(_untuple(v) for v in k): tuple(t) for k, t in data["times"]}


def _untuple(v):
    return tuple(v) if isinstance(v, list) else v


def reference():
    if torch.cuda.is_available():
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        return torch.device("cuda"), torch.cuda.synchronize, f"cuDNN ({torch.cuda.get_device_name()}, TF32 off)"
    return torch.device("cpu"), lambda: None, f"torch cpu ({torch.get_num_threads()} threads)"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(BATCH))
    p.add_argument("--batch", type=int, help="override the per-model batch size")
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--algorithms", nargs="*", default=None, help="algorithms to time one by one (default: all)")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--reference-only", metavar="JSON", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.reference_only:
        ref, ref_sync, ref_name = reference()
        times = [(layer, time_layer(layer, ref, ref_sync)) for model in a.models
                 for layer in conv_layers(model, a.batch or BATCH[model], a.image)]
        json.dump({"name": ref_name, "times": times}, open(a.reference_only, "w"))
        return
    ref_name, ref_times = reference_times(a, None)
    import oclcore
    from oclcore import conv as oconv

    dev = oclcore.runtime.device(a.device)
    ocl = torch.device("ocl", a.device)
    algorithms = a.algorithms if a.algorithms is not None else list(oconv.ALGORITHMS)
    for alg in algorithms:
        register_tile(oconv, alg)
    results = []
    totals = {}
    for model in a.models:
        layers = conv_layers(model, a.batch or BATCH[model], a.image)
        tot = collections.defaultdict(float)
        for layer, count in layers.items():
            row = {"model": model, "layer": layer, "count": count, "gflop": flops(layer) / 1e9}
            rf, rb = ref_times[layer]
            of, ob = time_layer(layer, ocl, dev.synchronize)
            row.update(ref_fwd=rf, ref_bwd=rb, ocl_fwd=of, ocl_bwd=ob)
            for alg in algorithms:
                if not supports_forward(oconv, alg, layer, ocl):
                    continue
                # Backward passes the algorithm lacks (the larger Winograd tiles have no
                # filter gradient) run the heuristic's choice.
                with oconv.force_algorithm(alg):
                    row[f"{alg}_fwd"], row[f"{alg}_bwd"] = time_layer(layer, ocl, dev.synchronize)
            for k in ("ref_fwd", "ref_bwd", "ocl_fwd", "ocl_bwd"):
                tot[k] += row[k] * count
            results.append(row)
        totals[model] = dict(tot)
    head = (f"device: ocl:{a.device} {dev.name} ({dev.platform}, driver {dev.driver_version}); reference: "
            f"{ref_name}; fp32; times in ms per layer (x count = per network)")
    lines = [head, ""]
    for model in a.models:
        t = totals[model]
        lines.append(f"## {model} (batch {a.batch or BATCH[model]}): forward {1e3 * t['ocl_fwd']:.2f} ms vs "
                     f"{1e3 * t['ref_fwd']:.2f} ms ({100 * t['ref_fwd'] / t['ocl_fwd']:.1f}% of reference speed), "
                     f"backward {1e3 * t['ocl_bwd']:.2f} ms vs {1e3 * t['ref_bwd']:.2f} ms "
                     f"({100 * t['ref_bwd'] / t['ocl_bwd']:.1f}%)")
        lines.append("")
        cols = "".join(f" {alg} fwd/bwd |" for alg in algorithms)
        lines.append(f"| layer (N,C,H,W,Co,Cg,R,S,stride,pad,dil,groups) | x | GFLOP | ref fwd | ref bwd | "
                     f"planner fwd | planner bwd | planner TFLOP/s fwd |{cols}")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|" + "---|" * len(algorithms))
        for r in (r for r in results if r["model"] == model):
            algs = "".join(
                f" {1e3 * r[f'{alg}_fwd']:.2f}/{1e3 * r[f'{alg}_bwd']:.2f} |" if f"{alg}_fwd" in r else " - |"
                for alg in algorithms)
            lines.append(f"| {r['layer']} | {r['count']} | {r['gflop']:.2f} | {1e3 * r['ref_fwd']:.2f} | "
                         f"{1e3 * r['ref_bwd']:.2f} | {1e3 * r['ocl_fwd']:.2f} | {1e3 * r['ocl_bwd']:.2f} | "
                         f"{r['gflop'] / r['ocl_fwd'] / 1e3:.1f} |{algs}")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "conv.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(a.out, "conv.json"), "w") as f:
            json.dump({"header": head, "totals": totals,
                       "rows": [{**r, "layer": list(map(str, r["layer"]))} for r in results]}, f, indent=1)
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(8, 4))
            names = list(totals)
            xs = range(len(names))
            ax.bar([x - 0.2 for x in xs], [100 * totals[m]["ref_fwd"] / totals[m]["ocl_fwd"] for m in names], 0.4,
                   label="forward")
            ax.bar([x + 0.2 for x in xs], [100 * totals[m]["ref_bwd"] / totals[m]["ocl_bwd"] for m in names], 0.4,
                   label="backward")
            ax.set_xticks(list(xs), names)
            ax.set_ylabel("% of reference speed")
            ax.axhline(100, color="gray", lw=0.5)
            ax.legend()
            ax.set_title(head, fontsize=7)
            fig.tight_layout()
            fig.savefig(os.path.join(a.out, "conv.png"), dpi=100)
        except ImportError:
            pass


if __name__ == "__main__":
    main()
