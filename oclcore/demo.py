"""``oclcore demo``: train a small CNN on scikit-learn's handwritten digits on an
OpenCL device, then the same training on torch's CPU for comparison."""

import time

import torch
from torch import nn


def load_digits(seed=0):
    """scikit-learn's 8x8 digits (shipped inside the package), upsampled to 16x16 and
    split 80/20 into (x_train, y_train, x_test, y_test) CPU tensors."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    split = int(0.8 * len(y))
    return x[:split], y[:split], x[split:], y[split:]


def make_model():
    """A small CNN: two conv blocks with batch norm, pooling, and a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(32 * 4 * 4, 10))


def train(device, data, epochs, batch_size, seed=0, progress=True):
    """Trains a fresh model on ``device``; returns (test accuracy, seconds per epoch)."""
    from tqdm import tqdm

    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = make_model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    xd, yd = x_train.to(device), y_train.to(device)
    n = len(y_train)
    epoch_times = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        batches = range(0, n, batch_size)
        bar = tqdm(batches, desc=f"{str(device):>6} epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not progress, unit="batch")
        start = time.perf_counter()
        for i in bar:
            idx = order[i:i + batch_size].to(device)
            loss = loss_fn(model(xd[idx]), yd[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress and (i // batch_size) % 5 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        loss.item()  # waits for the device
        epoch_times.append(time.perf_counter() - start)
        sched.step()
    model.eval()
    with torch.no_grad():
        pred = model(x_test.to(device)).argmax(1).cpu()
    accuracy = (pred == y_test).float().mean().item()
    return accuracy, sum(epoch_times) / len(epoch_times)


def main(args):
    """Runs the demo with parsed command-line ``args`` (device, epochs, batch_size)."""
    import oclcore

    device = torch.device(args.device)
    if device.type == "ocl":
        name = torch.ocl.get_device_name(device)
        where = f"{device} ({name})"
    else:
        where = str(device)
    data = load_digits()
    print(f"oclcore demo: a small CNN on scikit-learn's digits ({len(data[1])} train / {len(data[3])} test images)")
    print(f"device: {where}")
    oclcore.reset_fallbacks()
    acc, per_epoch = train(device, data, args.epochs, args.batch_size)
    print(f"{where}: test accuracy {acc * 100:.1f}%, {per_epoch:.2f} s per epoch")
    fallbacks = oclcore.fallbacks()
    if fallbacks:
        print(f"ops that ran on the CPU fallback: {fallbacks}")
    if not args.no_cpu_reference and device.type != "cpu":
        cpu_acc, cpu_epoch = train(torch.device("cpu"), data, args.epochs, args.batch_size)
        print(f"torch CPU: test accuracy {cpu_acc * 100:.1f}%, {cpu_epoch:.2f} s per epoch "
              f"(ocl/cpu time ratio {per_epoch / cpu_epoch:.2f})")
    return 0 if acc >= 0.95 else 1
