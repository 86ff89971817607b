"""Seconds per epoch: the library's Trainer against the tutorial's own training loop.

Both train the tutorial's model (the same architecture, loss, optimizer and batch size) on
the same MNIST training images for the same number of epochs, one after the other in this
process, and print the average training loss each reaches. Usage:

    python benchmarks/train_speed.py [--epochs 3] [--device cpu]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from common import data_root, machine
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


def library(epochs, device):
    """The same recipe through cvae: load_dataset + Trainer."""
    torch.manual_seed(0)
    start = time.perf_counter()
    train = cvae.load_dataset("mnist", data_root())
    load_seconds = time.perf_counter() - start
    trainer = cvae.Trainer(cvae.ConditionalVAE(), train, epochs=epochs, device=device, seed=0,
                           verbose=False, progress=False)
    history = trainer.train()
    return load_seconds, [(h["seconds"], h["loss"]) for h in history]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{args.epochs} epochs of MNIST (60,000 images, batch 128) on {args.device}")
    base = tutorial(args.epochs, args.device)
    load_seconds, ours = library(args.epochs, args.device)
    print("epoch | tutorial s | tutorial loss | Trainer s | Trainer loss")
    for e, ((ts, tl), (os_, ol)) in enumerate(zip(base, ours), 1):
        print(f"{e:5d} | {ts:10.2f} | {tl:13.2f} | {os_:9.2f} | {ol:12.2f}")
    t_mean = sum(s for s, _ in base) / len(base)
    o_mean = sum(s for s, _ in ours) / len(ours)
    print(f"Trainer loads the data set once in {load_seconds:.2f} s")
    print(f"seconds per epoch: tutorial {t_mean:.2f}, Trainer {o_mean:.2f}")
    print(f"speed-up (tutorial / Trainer, per epoch): {t_mean / o_mean:.2f}x")


if __name__ == "__main__":
    main()
