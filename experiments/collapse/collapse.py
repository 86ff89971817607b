"""Posterior collapse on a small, odd-size data set: active units, ELBO and sample diversity.

Trains a model on 1,800 MNIST training digits (`--images`, `--dataset`) shrunk to 8x8
(`--size`; area averaging) with the defaults of `ConditionalVAE.from_data` and the Trainer
but for the options given, and validates on 2,000 shrunk test digits. It prints the active
latent units after every few epochs, the validation negative ELBO, the KL, the diversity
ratio of 200 samples per class against the class's test digits in pixel space
(`cvae.evaluation.diversity.diversity_ratio`; 1.0 is as varied as the data), the share of samples that
a small classifier of the shrunk images (trained here on all 60,000) recognises as their
class, and how many samples are one flat grey. It also prints how grey the shrunk digits
are: a pixel's mean distance to 0 or 1. Small data sets like this one are where the
posterior collapses.

Usage:

    CVAE_DATA=../shared/data python experiments/collapse/collapse.py [--backbone mlp] [--epochs 20]
        [--free-bits 0] [--warmup-epochs 0] [--size 8] [--likelihood auto]
        [--dataset fashion-mnist] [--images 6000] [--prior standard] [--grid samples.png]
"""

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import cvae
from cvae.evaluation import diversity_ratio
from cvae.images import save_grid
from cvae.models.likelihoods import GREY_LEVEL, grey_level

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import data_root, machine  # noqa: E402  (the benchmarks' machine line and data folder)


def shrunk(data, n, size, seed):
    picks = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return F.interpolate(data.images[picks], size=(size, size), mode="area"), data.labels[picks]


def recogniser(data, size, test):
    """A small MLP classifier of the shrunk images, trained on all 60,000 of them."""
    images, labels = shrunk(data, 60000, size, 2)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(size * size, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10))
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(5):
        for i in range(0, len(images), 128):
            loss = F.cross_entropy(net(images[i:i + 128]), labels[i:i + 128])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (net(test[0]).argmax(1) == test[1]).float().mean().item()
    print(f"the judging classifier recognises {accuracy:.1%} of the shrunk test images")
    return net.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mlp")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--free-bits", type=float, default=0.0)
    parser.add_argument("--warmup-epochs", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=8, help="image side after shrinking")
    parser.add_argument("--likelihood", default="auto")
    parser.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist")
    parser.add_argument("--images", type=int, default=1800, help="training images")
    parser.add_argument("--prior", default="fitted", choices=["fitted", "standard"],
                        help="what the samples draw codes from (from_data's default: fitted)")
    parser.add_argument("--grid", help="also write 10 samples of each class to this PNG file")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    full = cvae.load_dataset(args.dataset, data_root())
    train = shrunk(full, args.images, args.size, 0)
    test = shrunk(cvae.load_dataset(args.dataset, data_root(), train=False), 2000, args.size, 1)
    print(f"a training pixel lies {grey_level(train[0]):.2f} from 0 or 1 on average (near-binary up to"
          f" {GREY_LEVEL})")
    torch.manual_seed(0)
    model = cvae.ConditionalVAE.from_data(train, backbone=args.backbone, likelihood=args.likelihood,
                                          prior=args.prior)
    start = time.perf_counter()
    history = cvae.Trainer(model, train, test, epochs=args.epochs, seed=0, verbose=False,
                           progress=False, free_bits=args.free_bits,
                           warmup_epochs=args.warmup_epochs).train()
    seconds = time.perf_counter() - start
    every = max(1, args.epochs // 5)
    print(f"{args.backbone} backbone, {model.config['likelihood']} likelihood, {args.epochs} epochs"
          f" on {args.images:,} {args.dataset} images at {args.size}x{args.size}, free bits"
          f" {args.free_bits}, warm-up {args.warmup_epochs} epochs, {args.prior} prior: {seconds:.1f} s")
    print("active units (of 20) after epochs", ", ".join(
        f"{h['epoch']}: {h['active_units']}" for h in history if h["epoch"] % every == 0))
    last = history[-1]
    print(f"validation negative ELBO {last['val_nelbo']:.2f}, KL {last['val_kl']:.2f} nats per image")
    samples = [model.sample(c, 200, generator=torch.Generator().manual_seed(c), mixed_precision=False)
               for c in range(10)]
    ratios = [diversity_ratio(test[0][test[1] == c].flatten(1), samples[c].flatten(1)) for c in range(10)]
    print("diversity ratio per class (pixels):", " ".join(f"{r:.2f}" for r in ratios),
          f"| mean {sum(ratios) / len(ratios):.3f}")
    flat = sum((x.flatten(1).std(1) < 0.02).sum().item() for x in samples)
    judge = recogniser(full, args.size, test)
    with torch.no_grad():
        right = sum((judge(x.clone()).argmax(1) == c).sum().item() for c, x in enumerate(samples))
    print(f"samples recognised as their class: {right / 20:.1f}%; flat (one grey level): {flat} of 2,000")
    if args.grid:
        samples = model.sample(list(range(10)), 10, generator=torch.Generator().manual_seed(0))
        print(f"wrote {save_grid(samples, args.grid, nrow=10, scale=4)}")


if __name__ == "__main__":
    main()
