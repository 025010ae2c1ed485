"""Effective bandwidth of elementwise, broadcast, reduction, batch-norm and layout kernels on
activations of efficientnet_b0's sizes (kernel times from oclcore.profile(); bytes are the minimum
a kernel must move).

    python bench/probes/bandwidth.py
"""
import torch
import torch.nn.functional as F

from kernel_time import kernel_us


def run(name, fn, nbytes, reps=10):
    """Prints the mean kernel time per call of fn and the bandwidth nbytes per call make."""
    us = sum(kernel_us(fn, reps=reps).values())
    print(f"{name:40s} {us:8.1f} us  {nbytes / us / 1e3:7.0f} GB/s", flush=True)


for shape in [(64, 96, 112, 112), (64, 144, 56, 56), (64, 672, 14, 14), (64, 1152, 7, 7)]:
    x = torch.randn(*shape, device="ocl"); y = torch.randn(*shape, device="ocl")
    s = torch.randn(shape[0], shape[1], 1, 1, device="ocl")
    nb = x.numel() * 4
    run(f"silu {shape}", lambda: F.silu(x), 2 * nb)
    run(f"add {shape}", lambda: x + y, 3 * nb)
    run(f"mul bcast {shape}", lambda: x * s, 2 * nb)
    run(f"relu_ {shape}", lambda: x.relu_(), 2 * nb)
    run(f"mean hw {shape}", lambda: x.mean((2, 3), keepdim=True), nb)
    run(f"sum c {shape}", lambda: x.sum((0, 2, 3)), nb)
    bn = torch.nn.BatchNorm2d(shape[1]).to("ocl").eval()
    run(f"bn eval {shape}", lambda: bn(x), 2 * nb)
    bn.train()
    run(f"bn train fwd {shape}", lambda: bn(x), 3 * nb)
    run(f"to channels_last {shape}", lambda: x.contiguous(memory_format=torch.channels_last), 2 * nb)
