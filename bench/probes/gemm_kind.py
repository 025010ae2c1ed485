"""Direct against tiled GEMM (kernel times from OpenCL events) on the 1x1 convolutions of
efficientnet_b0, mobilenet_v2 and regnet_y_400mf at batch 64, forward and data gradient, as the
planner would launch them, with the planner's own choice alongside: the data behind the
`batched_tiled_fill` database key.

    python bench/probes/gemm_kind.py
"""
import collections
import statistics

import torch
import torchvision

import oclcore  # noqa: F401  (registers the ocl device)
from oclcore import runtime
from oclcore.gemm import planner
from oclcore.ops import linalg

ctx = linalg.device_context(0)
info = ctx.info
dev = runtime.device(0)
print("device:", info.get("name"), info.get("driver_version"))
get = lambda f, d, n, s: runtime.get_kernel(f, d, n, s, dev)
shapes = collections.OrderedDict()
for name in ("efficientnet_b0", "mobilenet_v2", "regnet_y_400mf"):
    m = torchvision.models.get_model(name)
    def hook(mod, inp, out, name=name):
        if mod.kernel_size == (1, 1) and mod.groups == 1 and out.shape[-1] > 1:
            shapes[(mod.out_channels, out.shape[-1] * out.shape[-2], mod.in_channels)] = name
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        m.eval()(torch.randn(1, 3, 224, 224))
B = 64
tot = collections.defaultdict(float)
for (Co, HW, Ci), net in shapes.items():
    for pass_, (M, N, K) in (("fwd", (Co, HW, Ci)), ("dgrad", (Ci, HW, Co))):
        a = torch.randn(M, K, device="ocl")
        b = torch.randn(B, K, N, device="ocl")
        c = torch.empty(B, M, N, device="ocl")
        sa, sb_, sc = (K, 1, 0), (N, 1, K * N), (N, 1, M * N)
        line = [f"{net:16s} {pass_:5s} M={M:5d} N={N:6d} K={K:5d}"]
        for kind in ("direct", "tiled", None):
            try:
                plan = planner.plan_gemm(info, M, N, K, B, "float32", sa, sb_, sc, 0, 0, kind=kind)
                ts = []
                for it in range(6):
                    ev = planner.run_gemm(plan, get, a._buf, 0, b._buf, 0, c._buf, 0, alloc=dev.alloc, timing=True)
                    torch.ocl.synchronize()
                    ts.append(sum(e.end_ns - e.start_ns for e in ev) * 1e-9)
                t = statistics.median(ts[2:])
                tot[(pass_, kind)] += t
                line.append(f"{kind or 'auto'}:{plan.kind[0]} {t*1e6:7.1f}us")
            except Exception as e:
                line.append(f"{kind}: ERR {str(e)[:40]}")
        print("  ".join(line), flush=True)
print({f"{k[0]} {k[1] or 'auto'}": round(v * 1e3, 3) for k, v in tot.items()}, "ms total")
