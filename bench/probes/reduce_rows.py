"""Kernel time of means over the positions of efficientnet_b0-sized activations (squeeze-excitation
pooling) with reductions of up to ITEM_MAX_NRED elements folded one work-item per output, for the
limits given (each in its own process: the limit is read when a reduction is first planned).

    python bench/probes/reduce_rows.py 32 256 1024
"""
import subprocess
import sys

import torch

SHAPES = [(64, 96, 112, 112), (64, 144, 56, 56), (64, 240, 28, 28), (64, 672, 14, 14), (64, 1152, 7, 7)]


def measure(limit):
    import oclcore
    from oclcore.ops import reduce

    reduce.ITEM_MAX_NRED = limit
    for shape in SHAPES:
        x = torch.randn(*shape, device="ocl")
        x.mean((2, 3), keepdim=True)
        torch.ocl.synchronize()
        with oclcore.profile() as prof:
            for _ in range(10):
                x.mean((2, 3), keepdim=True)
            torch.ocl.synchronize()
        total = [ln for ln in prof.table(top=1).splitlines() if ln.startswith("all kernels")][0].split()
        ms = float(total[3]) / 10
        print(f"limit {limit:5d} {str(shape):22s} {ms * 1e3:8.1f} us {x.numel() * 4 / ms / 1e6:6.0f} GB/s",
              flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        measure(int(sys.argv[2]))
    else:
        for limit in sys.argv[1:]:
            subprocess.run([sys.executable, __file__, "--one", limit], check=True)
