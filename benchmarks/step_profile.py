"""Where an epoch of the tutorial's recipe goes in the Trainer, against what it must cost.

Times, in one process:

- one Trainer epoch of the tutorial's model on the 60,000 MNIST images (batch 128);
- the floor set by the matrix products alone: the same products, with the same shapes,
  that the epoch's forward and backward passes make (469 steps), run back to back;
- Adam's update alone (the Trainer's fused one), 469 times on the model's parameters;
- a bare eager loop over the same in-memory tensors (index, forward, loss, backward,
  fused Adam, nothing else): what the Trainer's own bookkeeping adds is the difference;
- the top operators of one profiled epoch (`torch.profiler`).

Usage:

    CVAE_DATA=../shared/data python benchmarks/step_profile.py [--epochs 2] [--top 12] [--compile] [--float32]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from common import data_root, machine
from torch.profiler import profile

import cvae


def matmul_floor(model: cvae.ConditionalVAE, steps: int, batch: int) -> float:
    """Seconds for the epoch's matrix products alone: per Linear, the forward product, the
    weight gradient and (except for the first layer, whose input needs none) the input
    gradient."""
    shapes = [(m.in_features, m.out_features) for m in model.modules()
              if isinstance(m, torch.nn.Linear)]
    calls = []
    for i, (n_in, n_out) in enumerate(shapes):
        x, w, g = torch.rand(batch, n_in), torch.rand(n_out, n_in), torch.rand(batch, n_out)
        calls.append(lambda x=x, w=w: torch.mm(x, w.t()))
        calls.append(lambda x=x, g=g: torch.mm(g.t(), x))
        if i != 0:
            calls.append(lambda w=w, g=g: torch.mm(g, w))
    for call in calls:
        call()
    start = time.perf_counter()
    for _ in range(steps):
        for call in calls:
            call()
    return time.perf_counter() - start


def adam_alone(steps: int) -> float:
    """Seconds for `steps` of the Trainer's fused Adam update on a fresh tutorial model,
    gradients already in place."""
    model = cvae.ConditionalVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer.step()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return time.perf_counter() - start


def bare_loop(data: cvae.LabelledImages, batch: int) -> float:
    """Seconds for one epoch of the plainest in-memory loop that computes the recipe."""
    model = cvae.ConditionalVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    order = torch.randperm(len(data))
    start = time.perf_counter()
    for i in range(0, len(data), batch):
        idx = order[i:i + batch]
        x, y = data.images[idx], data.labels[idx]
        logits, mu, logvar = model(x, y, return_logits=True)
        loss = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
                - 0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    parser.add_argument("--top", type=int, default=12, help="operators to list")
    parser.add_argument("--compile", action="store_true", help="profile Trainer(compile=True)")
    parser.add_argument("--float32", action="store_true",
                        help="profile Trainer(mixed_precision=False), as a CPU without bfloat16 runs")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    data = cvae.load_dataset("mnist", data_root())
    model = cvae.ConditionalVAE()
    trainer = cvae.Trainer(model, data, epochs=1 + args.epochs, seed=0, verbose=False,
                           progress=False, device="cpu", compile=args.compile,
                           mixed_precision=False if args.float32 else "auto")
    history = trainer.train()
    epoch = sum(h["seconds"] for h in history[1:]) / args.epochs
    steps = -(-len(data) // 128)
    floor, adam = matmul_floor(model, steps, 128), adam_alone(steps)
    bare = min(bare_loop(data, 128) for _ in range(args.epochs))
    print(f"Trainer epoch: {epoch:.2f} s (mean of epochs 2-{1 + args.epochs})")
    print(f"bare eager loop: {bare:.2f} s (best of {args.epochs})")
    print(f"matrix products alone: {floor:.2f} s ({floor / epoch:.0%} of the epoch)")
    print(f"fused Adam alone: {adam:.2f} s ({adam / epoch:.0%})")
    print(f"the rest: {epoch - floor - adam:.2f} s ({(epoch - floor - adam) / epoch:.0%})")
    trainer.epochs += 1
    with profile() as prof:
        trainer.train()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top,
                                    max_name_column_width=40))


if __name__ == "__main__":
    main()
