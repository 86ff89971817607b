"""Seconds per epoch: the library's Trainer against the tutorial's own loop, and the floor.

All train the tutorial's model (the same architecture, loss, optimizer and batch size) on
the same MNIST training images for the same number of epochs, one after the other in this
process, and print the average training loss each reaches:

- the tutorial's loop (a DataLoader over torchvision's MNIST, float32);
- the Trainer with its defaults (`mixed_precision="auto"`: bfloat16 where the device
  computes in it natively);
- the Trainer in float32 (`mixed_precision=False`), the curve the default must follow
  (within 0.5 nats an image at every epoch);
- the floor: the FLOPs of an epoch (counted) at the float32 matrix-product speed
  measured here.

Usage:

    python benchmarks/train_speed.py [--epochs 3] [--device cpu] [--compile]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from common import count_flops, data_root, floor_line, machine, matmul_speed
from torchvision import datasets, transforms
from tutorial import TutorialCVAE, tutorial_loss

import cvae


def tutorial(epochs, device):
    """The tutorial's loop: a DataLoader over torchvision MNIST with ToTensor, batch 128."""
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        datasets.MNIST(data_root(), train=True, download=True, transform=transforms.ToTensor()),
        batch_size=128, shuffle=True)
    model = TutorialCVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    results = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        train_loss = 0
        for data, label in loader:
            data = data.to(device)
            c = F.one_hot(label, 10).float().to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data, c)
            loss = tutorial_loss(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        results.append((time.perf_counter() - start, train_loss / len(loader.dataset)))
    return results


def library(epochs, device, **options):
    """The same recipe through cvae: load_dataset + Trainer (with Trainer `options`)."""
    torch.manual_seed(0)
    start = time.perf_counter()
    train = cvae.load_dataset("mnist", data_root())
    load_seconds = time.perf_counter() - start
    trainer = cvae.Trainer(cvae.ConditionalVAE(), train, epochs=epochs, device=device, seed=0,
                           verbose=False, progress=False, **options)
    history = trainer.train()
    return load_seconds, [(h["seconds"], h["loss"]) for h in history]


def epoch_flops(device):
    """FLOPs of one epoch of the recipe: one step of 128 images, counted, times the steps."""
    model = cvae.ConditionalVAE().to(device)
    x, y = torch.rand(128, 1, 28, 28, device=device), torch.randint(0, 10, (128,), device=device)
    return count_flops(lambda: model.loss(x, y)[0].backward()) * 60000 / 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time Trainer(compile=True)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{args.epochs} epochs of MNIST (60,000 images, batch 128) on {args.device}")
    bf16 = cvae.devices.native_bfloat16(args.device)
    print(f"native bfloat16 on {args.device}: {bf16} (so the Trainer's default runs in"
          f" {'bfloat16' if bf16 else 'float32'})")
    runs = {"tutorial": (0.0, tutorial(args.epochs, args.device))}
    runs["Trainer"] = library(args.epochs, args.device)
    runs["Trainer fp32"] = library(args.epochs, args.device, mixed_precision=False)
    if args.compile:
        runs["Trainer compile"] = library(args.epochs, args.device, compile=True)
    print("epoch | " + " | ".join(f"{name + ': s, loss':>22s}" for name in runs))
    for e in range(args.epochs):
        print(f"{e + 1:5d} | " + " | ".join(f"{r[e][0]:13.2f} s, {r[e][1]:6.2f}"
                                              for _, r in runs.values()))
    print(f"Trainer loads the data set once in {runs['Trainer'][0]:.2f} s")
    gap = max(abs(a[1] - b[1]) for a, b in zip(runs["Trainer"][1], runs["Trainer fp32"][1]))
    print(f"largest gap between the Trainer's loss and float32's at any epoch: {gap:.2f}"
          f" ({'within' if gap <= 0.5 else 'over'} 0.5)")
    # The first epoch of a compiled run includes compilation: compare the later ones.
    per_epoch = {name: sum(s for s, _ in r[1:] or r) / len(r[1:] or r) for name, (_, r) in runs.items()}
    print("seconds per epoch (epochs after the first): "
          + ", ".join(f"{name} {t:.2f}" for name, t in per_epoch.items()))
    for name, t in per_epoch.items():
        if name != "tutorial":
            print(f"speed-up (tutorial / {name}, per epoch): {per_epoch['tutorial'] / t:.2f}x")
    speed = matmul_speed(torch.float32, args.device)
    floor = epoch_flops(args.device) / speed
    print(f"floor of an epoch, float32: {floor_line(epoch_flops(args.device), speed, 's')}")
    for name, t in per_epoch.items():
        print(f"{name}: {t / floor:.2f}x the float32 floor")


if __name__ == "__main__":
    main()
