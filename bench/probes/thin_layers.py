"""Forward/backward time (steady state, bench/conv.py's time_layer) of RGB stems, a strided 3x3
layer and regnet_y_400mf's grouped layers under each applicable convolution algorithm; with the
argument `cuda`, the same layers on cuDNN (strict fp32) instead, in a process without oclcore.

    python bench/probes/thin_layers.py cuda; python bench/probes/thin_layers.py
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from conv import time_layer  # noqa: E402
layers = [(32, 3, 224, 224, 64, 3, 7, 7, (2, 2), (3, 3), (1, 1), 1),
          (32, 3, 224, 224, 32, 3, 3, 3, (2, 2), (1, 1), (1, 1), 1),
          (64, 3, 224, 224, 32, 3, 3, 3, (2, 2), (1, 1), (1, 1), 1),
          (64, 3, 224, 224, 16, 3, 3, 3, (2, 2), (1, 1), (1, 1), 1),
          (32, 128, 56, 56, 128, 128, 3, 3, (2, 2), (1, 1), (1, 1), 1),
          (64, 48, 112, 112, 48, 8, 3, 3, (2, 2), (1, 1), (1, 1), 6),
          (64, 104, 28, 28, 104, 8, 3, 3, (1, 1), (1, 1), (1, 1), 13),
          (64, 440, 7, 7, 440, 8, 3, 3, (1, 1), (1, 1), (1, 1), 55)]
if sys.argv[1:] == ["cuda"]:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for layer in layers:
        f, b = time_layer(layer, "cuda", torch.cuda.synchronize)
        print(layer, f"cudnn {f*1e3:.3f}/{b*1e3:.3f}", flush=True)
    sys.exit()
import oclcore  # noqa: E402
from oclcore import conv as oconv  # noqa: E402
dev = oclcore.runtime.device(0)
for layer in layers:
    line = [str(layer)]
    for alg in ("auto", "im2col", "implicit_gemm", "grouped"):
        try:
            if alg == "auto":
                f, b = time_layer(layer, "ocl", dev.synchronize)
            else:
                with oconv.force_algorithm(alg, strict=True):
                    f, b = time_layer(layer, "ocl", dev.synchronize)
            line.append(f"{alg} {f*1e3:.3f}/{b*1e3:.3f}")
        except RuntimeError:  # the algorithm does not support this layer
            line.append(f"{alg} n/a")
    print("  ".join(line), flush=True)
