"""Milliseconds per training step of the `"conv"` backbone on MNIST-sized batches.

Times one Trainer-like step (forward, loss, backward, fused Adam) on a batch of 128 random
28x28 images, for the backbone's default stages and for the `mnist-conv` recipe, each with
the channels-last layout that the backbone uses and with the plain (contiguous) layout it
used before. Usage:

    python benchmarks/conv_step.py [--steps 10]
"""

import argparse
import time

import torch
from common import machine

import cvae
import cvae.backbones

CONFIGS = {
    "default stages (32, 64, 128), extra_convs=1": {},
    "mnist-conv: (32, 64), hidden 960, extra_convs=0": {"channels": [32, 64], "hidden_dim": 960,
                                                        "extra_convs": 0},
}


def step_ms(settings: dict, steps: int) -> float:
    """Mean milliseconds of a training step after two warm-up steps."""
    torch.manual_seed(0)
    model = cvae.ConditionalVAE(latent_dim=32, backbone="conv", backbone_kwargs=settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = model.loss(x, y)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("backbone settings | ms/step, channels-last | ms/step, contiguous | ratio")
    for name, settings in CONFIGS.items():
        cvae.backbones._LAST = torch.channels_last
        last = step_ms(settings, args.steps)
        cvae.backbones._LAST = torch.contiguous_format  # the layout before channels-last
        plain = step_ms(settings, args.steps)
        print(f"{name} | {last:.0f} | {plain:.0f} | {plain / last:.2f}x")


if __name__ == "__main__":
    main()
