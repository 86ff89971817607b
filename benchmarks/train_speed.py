"""Seconds per epoch: the library's Trainer against the tutorial's own loop, and the floor.

All train the tutorial's model (the same architecture, loss, optimizer and batch size) on
the same MNIST training images for the same number of epochs, one after the other in this
process, an epoch of each in turn, and print the average training loss each reaches:

- the tutorial's loop (a DataLoader over torchvision's MNIST, float32);
- the Trainer with its defaults, made for the recipe's 100 epochs: `compile="auto"`
  compiles a run that long where torch can, and `mixed_precision="auto"` runs it in
  bfloat16 where the device computes in it natively;
- the same Trainer not compiled (`compile=False`);
- the Trainer in float32 (`mixed_precision=False`), compiled as the default is: what a CPU
  without native bfloat16 runs by default;
- the Trainer in float32, not compiled (`mixed_precision=False, compile=False`): the
  curve the default must follow (within 0.5 nats an image at every epoch);
- the floor: the FLOPs of an epoch (counted) at the float32 matrix-product speed
  measured here.

Usage:

    python benchmarks/train_speed.py [--epochs 5] [--device cpu]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from common import count_flops, data_root, floor_line, machine, matmul_speed
from torchvision import datasets, transforms
from tutorial import TutorialCVAE, tutorial_loss

import cvae


def tutorial(device):
    """The tutorial's loop: a DataLoader over torchvision MNIST with ToTensor, batch 128.

    A generator: each `next` runs one epoch and gives its seconds and average loss.
    """
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        datasets.MNIST(data_root(), train=True, download=True, transform=transforms.ToTensor()),
        batch_size=128, shuffle=True)
    model = TutorialCVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    while True:
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
        sync()
        yield time.perf_counter() - start, train_loss / len(loader.dataset)


RECIPE_EPOCHS = 100  # the tutorial's


def library(device, **options):
    """The same recipe through cvae: load_dataset + Trainer (with Trainer `options`).

    A generator: first whether the Trainer compiled its loss, then `(seconds, loss)` per
    epoch, as `tutorial`. The Trainer is made for the recipe's 100 epochs, from which
    `compile="auto"` decides, and goes on one epoch at a time, as it would in one call.
    """
    torch.manual_seed(0)
    train = cvae.load_dataset("mnist", data_root())
    trainer = cvae.Trainer(cvae.ConditionalVAE(), train, epochs=RECIPE_EPOCHS, device=device,
                           seed=0, verbose=False, progress=False, **options)
    yield trainer.compiled
    trainer.epochs = 0
    while True:
        trainer.epochs += 1
        record = trainer.train()[-1]
        yield record["seconds"], record["loss"]


def epoch_flops(device):
    """FLOPs of one epoch of the recipe: one step of 128 images, counted, times the steps."""
    model = cvae.ConditionalVAE().to(device)
    x, y = torch.rand(128, 1, 28, 28, device=device), torch.randint(0, 10, (128,), device=device)
    return count_flops(lambda: model.loss(x, y)[0].backward()) * 60000 / 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{args.epochs} epochs of MNIST (60,000 images, batch 128) on {args.device}")
    bf16 = cvae._devices.use_bfloat16("auto", args.device)
    print(f"native bfloat16 on {args.device}: {cvae._devices.native_bfloat16(args.device)} (the"
          f" Trainer's default runs in {'bfloat16' if bf16 else 'float32'})")
    runners = {"tutorial": tutorial(args.device), "Trainer": library(args.device),
               "Trainer eager": library(args.device, compile=False),
               "Trainer fp32": library(args.device, mixed_precision=False),
               "Trainer fp32 eager": library(args.device, mixed_precision=False, compile=False)}
    compiled = {name: next(runner) for name, runner in runners.items() if name != "tutorial"}
    print("compiled (torch.compile): " + ", ".join(f"{name} {c}" for name, c in compiled.items()))
    # Epochs taken in turns, so that a slower spell of a shared machine falls on all alike.
    runs = {name: [] for name in runners}
    for _ in range(args.epochs):
        for name, runner in runners.items():
            runs[name].append(next(runner))
    widths = {name: max(22, len(name) + 9) for name in runs}
    print("epoch | " + " | ".join(f"{name + ': s, loss':>{widths[name] + 1}s}" for name in runs))
    for e in range(args.epochs):
        print(f"{e + 1:5d} | " + " | ".join(f"{r[e][0]:{widths[name] - 9}.2f} s, {r[e][1]:6.2f}"
                                              for name, r in runs.items()))
    gap = max(abs(a[1] - b[1]) for a, b in zip(runs["Trainer"], runs["Trainer fp32 eager"]))
    print(f"largest gap between the Trainer's loss and eager float32's at any epoch: {gap:.2f}"
          f" ({'within' if gap <= 0.5 else 'over'} 0.5)")
    # The fastest epoch after the first (which includes warm-up and compilation): on a
    # shared machine, the one least slowed by other work, for every contender alike.
    per_epoch = {name: min(t for t, _ in r[1:] or r) for name, r in runs.items()}
    print("seconds per epoch (the fastest after the first): "
          + ", ".join(f"{name} {t:.2f}" for name, t in per_epoch.items()))
    for name, t in per_epoch.items():
        if name != "tutorial":
            print(f"speed-up (tutorial / {name}, per epoch): {per_epoch['tutorial'] / t:.2f}x")
    speed = matmul_speed(torch.float32, args.device)
    flops = epoch_flops(args.device)
    floor = flops / speed
    print(f"floor of an epoch, float32: {floor_line(flops, speed, 's')}")
    for name, t in per_epoch.items():
        print(f"{name}: {t / floor:.2f}x the float32 floor")


if __name__ == "__main__":
    main()
