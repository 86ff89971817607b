"""Train the bundled MNIST classifier (`cvae/classifiers/mnist-cnn`) and write its card.

Adam with a one-cycle learning rate, light random affine augmentation, batch 128.
Usage, from the repo root:

    CVAE_DATA=../shared/data python scripts/train_classifier.py [--epochs 6]
"""

import argparse
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_model

import cvae
from cvae.evaluation.classifier import CLASSIFIERS_DIR, MNISTClassifier


def augment(x, generator):
    """Random rotation (+-10 degrees), scale (0.9-1.1) and shift (+-2 px) per image."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 0.9 + 0.2 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--output", default=str(CLASSIFIERS_DIR / "mnist-cnn"))
    args = parser.parse_args()
    train = cvae.load_dataset("mnist", train=True)
    test = cvae.load_dataset("mnist", train=False)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = MNISTClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = math.ceil(len(train) / 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=args.epochs * steps)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for i in range(0, len(train), 128):
            idx = order[i:i + 128]
            loss = F.cross_entropy(model(augment(train.images[idx], generator)), train.labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        accuracy = (model.predict(test.images) == test.labels).float().mean().item()
        print(f"epoch {epoch}: test accuracy {accuracy:.4f}", flush=True)
    minutes = (time.perf_counter() - start) / 60
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / "model.safetensors"))
    (out / "README.md").write_text(f"""# mnist-cnn: the MNIST classifier that judges generated digits

A small CNN ({sum(p.numel() for p in model.parameters()):,} parameters: three
conv-BN-ReLU-pool blocks of 32, 64 and 128 channels, dropout and a linear head), used by
`cvae.evaluation.metrics.sample_accuracy` to measure how often a model's samples are the digit asked
for. Load it with `cvae.evaluation.classifier.load_classifier()`.

**MNIST test accuracy: {accuracy:.2%}** (10,000 test images).

Trained on the 60,000 MNIST training images (Y. LeCun, C. Cortes, C. J. C. Burges; Creative
Commons Attribution-Share Alike 3.0, the licence of these weights too) by this command, from
the repository's root, in {minutes:.1f} minutes on the CPU ({platform.machine()},
{torch.get_num_threads()} threads, torch {torch.__version__}):

```
CVAE_DATA=../shared/data python scripts/train_classifier.py --epochs {args.epochs}
```

Adam (peak lr 3e-3, one-cycle schedule, weight decay 1e-4), batch 128, {args.epochs} epochs,
random rotations up to 10 degrees, scaling by 0.9-1.1 and shifts up to 2 pixels.
""")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
