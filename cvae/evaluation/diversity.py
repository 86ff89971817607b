"""Whether samples are as varied as real data: precision, recall and a diversity ratio.

All three compare feature vectors (a classifier's, for example) of generated images with
those of real ones:

- `precision_recall` (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models"): each set's manifold is the union of balls around its
  points, each reaching its `k`-th nearest neighbour in the same set. Precision is the share
  of samples inside the real manifold (samples that look real); recall the share of real
  images inside the samples' manifold (the ways real images look that the model draws).
- `diversity_ratio`: the mean distance between two samples over the mean distance between
  two real images; below 1, samples vary less than the data.

Each figure means most beside the same figure for real data against other real data,
which is what a perfect generator would score; `cvae.evaluation.evaluate` prints both.
"""

from __future__ import annotations

import torch

from cvae._checks import check_int

__all__ = ["precision_recall", "diversity_ratio"]


def _radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its `k`-th nearest other point of the same set."""
    distances = torch.cdist(points, points)
    return distances.kthvalue(k + 1, dim=1).values  # the 1st is the point itself, at 0


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Whether each of `points` lies in at least one ball (`centres`, `radii`)."""
    return (torch.cdist(points, centres) <= radii[None]).any(1)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Precision and recall of `fake` against `real` (Kynkäänniemi et al. 2019).

    Args:
        real: `(N, D)` features of real images.
        fake: `(M, D)` features of generated images.
        k: The neighbour whose distance sets each ball's radius (3, as in the paper).

    Returns:
        `(precision, recall)`, each from 0 to 1.

    Raises:
        ValueError: If a set has `k` points or fewer, or their features differ in size.
    """
    k = check_int("k", k)
    real, fake = real.double().flatten(1), fake.double().flatten(1)
    if real.shape[1] != fake.shape[1] or min(len(real), len(fake)) <= k:
        raise ValueError(f"need two sets of more than k={k} features of equal size, got"
                         f" {tuple(real.shape)} and {tuple(fake.shape)}")
    precision = _covered(fake, real, _radii(real, k)).double().mean().item()
    recall = _covered(real, fake, _radii(fake, k)).double().mean().item()
    return precision, recall


def _mean_distance(points: torch.Tensor) -> float:
    n = len(points)
    return (torch.cdist(points, points).sum() / (n * (n - 1))).item()  # the diagonal is 0


def diversity_ratio(real: torch.Tensor, fake: torch.Tensor) -> float:
    """The mean pairwise distance among `fake` over that among `real` (1 for equal spread).

    Args:
        real: `(N, D)` features of real images (of one class, for a conditional model).
        fake: `(M, D)` features of generated images of the same class.

    Raises:
        ValueError: If a set has fewer than 2 points, or their features differ in size.
    """
    real, fake = real.double().flatten(1), fake.double().flatten(1)
    if real.shape[1] != fake.shape[1] or min(len(real), len(fake)) < 2:
        raise ValueError(f"need two sets of at least 2 features of equal size, got"
                         f" {tuple(real.shape)} and {tuple(fake.shape)}")
    return _mean_distance(fake) / _mean_distance(real)
