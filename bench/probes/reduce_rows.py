"""Kernel time of means over the positions of efficientnet_b0-sized activations (squeeze-excitation
pooling) in reduce_rows with about N elements per work-item, for each N given (each in its own
process: the value is read when a reduction is first planned); 0 runs the generic reduction
kernel instead (one work-item per output up to 256 elements, else a work-group per output).

    python bench/probes/reduce_rows.py 0 4 8 16 32
"""
import subprocess
import sys

import torch

SHAPES = [(64, 96, 112, 112), (64, 144, 56, 56), (64, 240, 28, 28), (64, 672, 14, 14), (64, 1152, 7, 7)]


def measure(limit):
    from kernel_time import kernel_us
    from oclcore.ops import reduce

    reduce.ROW_ELEMENTS_PER_ITEM = limit
    for shape in SHAPES:
        x = torch.randn(*shape, device="ocl")
        us = sum(kernel_us(lambda: x.mean((2, 3), keepdim=True)).values())
        print(f"limit {limit:5d} {str(shape):22s} {us:8.1f} us {x.numel() * 4 / us / 1e3:6.0f} GB/s", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        measure(int(sys.argv[2]))
    else:
        for limit in sys.argv[1:]:
            subprocess.run([sys.executable, __file__, "--one", limit], check=True)
