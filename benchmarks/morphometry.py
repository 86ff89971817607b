"""Morphometry of digit images (after Castro et al. 2019, Morpho-MNIST): stroke thickness and slant.

- thickness: the stroke's area over its skeleton's length, in pixels (a stroke of width
  w and length L has area w L and a skeleton of L pixels);
- slant: the shear of the digit from the image moments, `atan(-mu11 / mu02)` in degrees,
  positive leaning right (rows grow downwards, so a right-leaning stroke has x falling as
  y grows).

Images are binarised at 0.5 (samples too: the Bernoulli's mean, thresholded), and the
skeleton is Zhang & Suen's (1984) thinning, run on a whole batch at once in torch. The
measures are what `scripts/train_morpho_mnist.py` conditions a model on and checks its
samples against. Usage, from the repo root, to print the measures of MNIST:

    python benchmarks/morphometry.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The 8 neighbours of a pixel in Zhang & Suen's order P2..P9: N, NE, E, SE, S, SW, W, NW.
_OFFSETS = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]


def _neighbours(image: torch.Tensor) -> list[torch.Tensor]:
    padded = F.pad(image, (1, 1, 1, 1))
    h, w = image.shape[-2:]
    return [padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _OFFSETS]


def skeleton(binary: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of binary images `(N, H, W)` (bool): one-pixel-wide skeletons."""
    image = binary.to(torch.uint8).clone()
    while True:
        changed = False
        for step in (0, 1):
            p = _neighbours(image)
            count = sum(p)
            transitions = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).to(torch.uint8) for i in range(8))
            if step == 0:
                a, b = p[0] * p[2] * p[4], p[2] * p[4] * p[6]
            else:
                a, b = p[0] * p[2] * p[6], p[0] * p[4] * p[6]
            remove = (image == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & (a == 0) & (b == 0)
            if remove.any():
                image[remove] = 0
                changed = True
        if not changed:
            return image.bool()


def measure(images: torch.Tensor, batch_size: int = 10_000) -> dict[str, torch.Tensor]:
    """Thickness (pixels) and slant (degrees) of images `(N, 1, H, W)` in [0, 1].

    Returns:
        `{"thickness": (N,), "slant": (N,)}`, float32; an empty image measures 0 and 0.
    """
    out: dict[str, list[torch.Tensor]] = {"thickness": [], "slant": []}
    for chunk in images.split(batch_size):
        binary = chunk[:, 0] > 0.5
        area = binary.sum((1, 2)).double()
        length = skeleton(binary).sum((1, 2)).double()
        out["thickness"].append((area / length.clamp(min=1)).float())
        out["slant"].append(_slant(binary.double()).float())
    return {key: torch.cat(values) for key, values in out.items()}


def _slant(binary: torch.Tensor) -> torch.Tensor:
    """`atan(-mu11 / mu02)` in degrees, from the central moments of binary images `(N, H, W)`."""
    n, h, w = binary.shape
    ys = torch.arange(h, dtype=binary.dtype)[:, None].expand(h, w)
    xs = torch.arange(w, dtype=binary.dtype)[None, :].expand(h, w)
    mass = binary.sum((1, 2)).clamp(min=1)
    cy, cx = (binary * ys).sum((1, 2)) / mass, (binary * xs).sum((1, 2)) / mass
    dy, dx = ys - cy[:, None, None], xs - cx[:, None, None]
    mu11, mu02 = (binary * dx * dy).sum((1, 2)), (binary * dy * dy).sum((1, 2))
    return torch.rad2deg(torch.atan(-mu11 / mu02.clamp(min=1e-9)))


def main() -> None:
    """Print the measures of the MNIST training set (the data `cvae.load_dataset` finds)."""
    import cvae

    train = cvae.load_dataset("mnist", train=True)
    measured = measure(train.images)
    for key, values in measured.items():
        q = torch.quantile(values, torch.tensor([0.01, 0.5, 0.99])).tolist()
        print(
            f"{key}: mean {values.mean():.3f}, sd {values.std():.3f}, 1%/50%/99% {q[0]:.2f} /"
            f" {q[1]:.2f} / {q[2]:.2f}"
        )
    print(f"({len(train.images):,} MNIST training images)")


if __name__ == "__main__":
    main()
