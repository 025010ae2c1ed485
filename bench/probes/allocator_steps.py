"""Caching-allocator traffic of eager training steps: per step, the cl_mem blocks created and
released, reserved bytes and the peak of allocated bytes (torch.ocl.memory_stats()). In a steady
training loop every step after the first should create and release none.

    python bench/probes/allocator_steps.py --model resnet18 --batch 64 --size 224 --steps 4
"""

import argparse

import torch
import torchvision

import oclcore  # noqa: F401  (registers the ocl device)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=4)
    a = p.parse_args()
    torch.manual_seed(0)
    model = getattr(torchvision.models, a.model)().to("ocl")
    x = torch.randn(a.batch, 3, a.size, a.size).to("ocl")
    y = torch.randint(0, 1000, (a.batch,)).to("ocl")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    print("step  created  released  reserved MiB  peak MiB")
    before = torch.ocl.memory_stats()
    for step in range(a.steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        torch.ocl.synchronize()
        s = torch.ocl.memory_stats()
        print(f"{step:4d}  {s['segments_created'] - before['segments_created']:7d}  "
              f"{s['segments_freed'] - before['segments_freed']:8d}  {s['reserved_bytes'] >> 20:12d}  "
              f"{s['max_allocated_bytes'] >> 20:8d}")
        before = s


if __name__ == "__main__":
    main()
