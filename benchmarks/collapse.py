"""Posterior collapse on a small, odd-size data set: active units, ELBO and sample diversity.

Trains a model on 1,800 MNIST training digits shrunk to 8x8 (area averaging), validates
on 2,000 shrunk test digits, and prints the active latent units after every few epochs,
the validation negative ELBO, the KL, and the diversity ratio of 200 samples per class
against the class's test digits in pixel space (`cvae.diversity.diversity_ratio`; 1.0 is
as varied as the data). It also prints how grey the shrunk digits are: a pixel's mean
distance to 0 or 1. Small data sets like this one are where the posterior collapses.

Usage:

    CVAE_DATA=../shared/data python benchmarks/collapse.py [--backbone mlp] [--epochs 20]
        [--free-bits 0] [--warmup-epochs 0] [--size 8] [--likelihood bernoulli]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from common import data_root, machine

import cvae
from cvae.diversity import diversity_ratio


def shrunk(data, n, size, seed):
    picks = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return F.interpolate(data.images[picks], size=(size, size), mode="area"), data.labels[picks]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mlp")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--free-bits", type=float, default=0.0)
    parser.add_argument("--warmup-epochs", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=8, help="image side after shrinking")
    parser.add_argument("--likelihood", default="bernoulli")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    train = shrunk(cvae.load_dataset("mnist", data_root()), 1800, args.size, 0)
    test = shrunk(cvae.load_dataset("mnist", data_root(), train=False), 2000, args.size, 1)
    grey = torch.minimum(train[0], 1 - train[0]).mean().item()
    print(f"a training pixel lies {grey:.2f} from 0 or 1 on average (the likelihood advice's"
          f" threshold: 0.15)")
    torch.manual_seed(0)
    model = cvae.ConditionalVAE((1, args.size, args.size), 10, backbone=args.backbone,
                                likelihood=args.likelihood)
    start = time.perf_counter()
    history = cvae.Trainer(model, train, test, epochs=args.epochs, seed=0, verbose=False,
                           progress=False, free_bits=args.free_bits,
                           warmup_epochs=args.warmup_epochs).train()
    seconds = time.perf_counter() - start
    every = max(1, args.epochs // 5)
    print(f"{args.backbone} backbone, {args.likelihood} likelihood, {args.epochs} epochs on 1,800 MNIST"
          f" digits at {args.size}x{args.size}, free bits {args.free_bits}, warm-up"
          f" {args.warmup_epochs} epochs: {seconds:.1f} s")
    print("active units (of 20) after epochs", ", ".join(
        f"{h['epoch']}: {h['active_units']}" for h in history if h["epoch"] % every == 0))
    last = history[-1]
    print(f"validation negative ELBO {last['val_nelbo']:.2f}, KL {last['val_kl']:.2f} nats per image")
    ratios = [diversity_ratio(test[0][test[1] == c].flatten(1),
                              model.sample(c, 200, generator=torch.Generator().manual_seed(c),
                                           mixed_precision=False).flatten(1))
              for c in range(10)]
    print("diversity ratio per class (pixels):", " ".join(f"{r:.2f}" for r in ratios),
          f"| mean {sum(ratios) / len(ratios):.3f}")


if __name__ == "__main__":
    main()
