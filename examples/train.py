"""Train a torchvision network the conventional PyTorch way: a Dataset and
DataLoader, an optimizer, an LR scheduler, and checkpoints that save and resume
model, optimizer and scheduler state.

Nothing here is specific to OpenCL except `import oclcore` (which registers the
"ocl" device) and `--device ocl`: the same script trains on CUDA or the CPU.

    python examples/train.py --device ocl --model resnet18 --epochs 2 --checkpoint /tmp/ckpt.pt
    python examples/train.py --device ocl --resume /tmp/ckpt.pt --epochs 4
"""

import argparse
import time

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

import oclcore  # noqa: F401  (registers the "ocl" device)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "ocl")
    p.add_argument("--model", default="resnet18", help="any torchvision classification model name")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--train-samples", type=int, default=512)
    p.add_argument("--val-samples", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--epochs", type=int, default=2, help="train until this many epochs are done")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--lr-step-size", type=int, default=1, help="epochs between learning-rate decays")
    p.add_argument("--lr-gamma", type=float, default=0.8)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--clip-grad-norm", type=float, default=5.0)
    p.add_argument("--checkpoint", help="save model, optimizer and scheduler state here after every epoch")
    p.add_argument("--resume", help="continue from this checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def make_data(args):
    """FakeData images (random, but the same for a given seed) as train and validation loaders."""
    tf = torchvision.transforms.Compose([
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    ])
    shape = (3, args.image_size, args.image_size)
    train = torchvision.datasets.FakeData(args.train_samples, shape, args.num_classes, tf, random_offset=args.seed)
    val = torchvision.datasets.FakeData(args.val_samples, shape, args.num_classes, tf,
                                        random_offset=args.seed + args.train_samples)
    shuffle = torch.Generator()
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, generator=shuffle,
                              num_workers=args.workers, drop_last=True)
    val_loader = DataLoader(val, batch_size=args.batch_size, num_workers=args.workers)
    return train_loader, val_loader, shuffle


def train_one_epoch(model, loader, loss_fn, optimizer, device, args):
    """One pass over ``loader``; returns the mean training loss."""
    model.train()
    total, batches = 0.0, 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        output = model(images)
        loss = loss_fn(output, targets)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad_norm)
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / max(batches, 1)


@torch.no_grad()
def evaluate(model, loader, loss_fn, device):
    """Returns (mean loss, top-1 accuracy) on ``loader``."""
    model.eval()
    loss, correct, seen = 0.0, 0, 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        output = model(images)
        loss += loss_fn(output, targets).item() * len(targets)
        correct += (output.argmax(1) == targets).sum().item()
        seen += len(targets)
    return loss / max(seen, 1), correct / max(seen, 1)


def main(argv=None):
    """Trains (or resumes) and returns the model, optimizer, scheduler and a per-epoch history."""
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)

    model = torchvision.models.get_model(args.model, weights=None, num_classes=args.num_classes).to(device)
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                    weight_decay=args.weight_decay, nesterov=True)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step_size, gamma=args.lr_gamma)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    train_loader, val_loader, shuffle = make_data(args)

    start_epoch = 0
    if args.resume:
        checkpoint = torch.load(args.resume, map_location=device)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start_epoch = checkpoint["epoch"] + 1
        if not args.quiet:
            print(f"resumed from {args.resume} at epoch {start_epoch}")

    history = []
    for epoch in range(start_epoch, args.epochs):
        shuffle.manual_seed(args.seed + epoch)  # the same batches whether resumed or not
        start = time.perf_counter()
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, device, args)
        scheduler.step()
        val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc,
                        "seconds": seconds})
        if not args.quiet:
            print(f"epoch {epoch + 1}/{args.epochs}  train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
                  f"val acc {val_acc:.3f}  lr {scheduler.get_last_lr()[0]:.4g}  {seconds:.1f} s on {device}")
        if args.checkpoint:
            torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "args": vars(args)}, args.checkpoint)
    return model, optimizer, scheduler, history


if __name__ == "__main__":
    main()
