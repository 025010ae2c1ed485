"""Kernels (oclcore.profile()) of five forward+backward steps of single convolution layers: the
resnet50 layers whose backward trailed cuDNN most in round 3.

    python bench/probes/conv_kernels.py
"""
import torch
import torch.nn.functional as F

import oclcore

layers = [(32, 256, 14, 1024, 1, 1, 1), (32, 1024, 14, 256, 1, 1, 1), (32, 512, 7, 2048, 1, 1, 1),
          (32, 3, 224, 64, 7, 2, 1), (32, 128, 56, 128, 3, 2, 1), (32, 1024, 14, 2048, 1, 2, 1)]
for (N, C, H, Co, R, s, g) in layers:
    x = torch.randn(N, C, H, H, device="ocl", requires_grad=True)
    w = torch.randn(Co, C // g, R, R, device="ocl", requires_grad=True)
    for _ in range(3):
        y = F.conv2d(x, w, None, s, R // 2, 1, g)
        gx, gw = torch.autograd.grad(y, (x, w), torch.ones_like(y))
    torch.ocl.synchronize()
    with oclcore.profile() as prof:
        for _ in range(5):
            y = F.conv2d(x, w, None, s, R // 2, 1, g)
            gx, gw = torch.autograd.grad(y, (x, w), torch.ones_like(y))
        torch.ocl.synchronize()
    print(f"--- {(N, C, H, Co, R, s, g)} x5 fwd+bwd")
    print(prof.table(top=10))
