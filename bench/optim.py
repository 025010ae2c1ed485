"""Host milliseconds per optimizer step on ocl for resnet18's parameter shapes (62 tensors, 11.7 M
elements): Adam (default, i.e. foreach), Adam fused, SGD with momentum (foreach), and
clip_grad_norm_ (foreach, _foreach_norm). Random parameters and gradients live on the device;
warm-up steps create the optimizer state and build the kernels; then every step is timed with
the device synchronised before and after it.

Columns: host = the calling thread's CPU time inside step() (time.thread_time, so device work
competing for the same cores, as on PoCL, does not count); call = wall time of step() until it
returns (enqueue only); step = wall time from before step() until the device is done; launches
= kernels per step (oclcore.profile()). Medians over the timed steps.

    python bench/optim.py [--device N] [--steps 20] [--warmup 3] [--tiny]
"""

import argparse
import statistics
import time
import warnings

import torch

import oclcore
from oclcore import runtime


def resnet18_shapes():
    """The parameter shapes of torchvision's resnet18."""
    import torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.resnet18(weights=None)
    return [tuple(p.shape) for p in model.parameters()]


def make_params(shapes, device):
    """Parameters with random values and gradients on ``device``."""
    torch.manual_seed(0)
    params = [torch.randn(s).to(device).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape).to(device)
    return params


def measure(step, sync, steps, warmup):
    """(host ms, call ms, step ms, launches) of ``step``, medians over ``steps`` timed calls."""
    for _ in range(warmup):
        step()
    sync()
    with oclcore.profile() as prof:
        step()
        sync()
    launches = len(prof.times())
    host, call, wall = [], [], []
    for _ in range(steps):
        sync()
        w0, h0 = time.perf_counter(), time.thread_time()
        step()
        h1, w1 = time.thread_time(), time.perf_counter()
        sync()
        w2 = time.perf_counter()
        host.append(h1 - h0)
        call.append(w1 - w0)
        wall.append(w2 - w0)
    return tuple(statistics.median(v) * 1e3 for v in (host, call, wall)) + (launches,)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--tiny", action="store_true",
                   help="one element per parameter (same count): on a CPU OpenCL device the kernels then barely "
                        "compete with the host thread for the cores")
    a = p.parse_args()
    dev = runtime.device(a.device)
    device = f"ocl:{a.device}"
    shapes = resnet18_shapes()
    if a.tiny:
        shapes = [(1,)] * len(shapes)
    cases = {
        "Adam foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3).step,
        "Adam fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True).step,
        "SGD momentum foreach": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9).step,
        "clip_grad_norm_ foreach": lambda ps: lambda: torch.nn.utils.clip_grad_norm_(ps, 1e9),
    }
    print(f"device: {device} {dev.name} ({dev.platform}); resnet18 parameters: {len(shapes)} tensors, "
          f"{sum(torch.Size(s).numel() for s in shapes) / 1e6:.1f} M elements{' (--tiny)' if a.tiny else ''}; "
          f"median of {a.steps} steps")
    print(f"{'case':<25}{'host ms':>9}{'call ms':>9}{'step ms':>9}{'launches':>10}")
    oclcore.reset_fallbacks()
    for name, make in cases.items():
        step = make(make_params(shapes, device))
        host, call, wall, launches = measure(step, dev.synchronize, a.steps, a.warmup)
        print(f"{name:<25}{host:>9.2f}{call:>9.2f}{wall:>9.2f}{launches:>10}")
    if oclcore.fallbacks():
        print("CPU fallbacks during the run:", oclcore.fallbacks())


if __name__ == "__main__":
    main()
