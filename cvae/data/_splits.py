"""Held-out splits and subsets of labelled data: stratified by class, seeded, deterministic.

A folder of images, a pair of tensors or a dataset without a test split of its own gets
one here: `test_fraction` of each class's images (rounded, at least one of every class
with two or more), drawn by a generator seeded with `seed` and the class index. The same
data, fraction and seed give the same split on every machine, and adding images to one
class leaves the split of the others as it was.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.utils.data import Dataset, Subset

from cvae._checks import check_float, check_int
from cvae._classes import UNLABELLED
from cvae.data._labelled import LabelledData, LabelledImages, conditions_of, labels_of
from cvae.data._sources import as_dataset

__all__ = ["DEFAULT_TEST_FRACTION", "VALIDATION_FRACTION", "split_indices", "stratified_subset",
           "train_test_split"]

#: The share of each class held out for testing where the data bring no test split.
DEFAULT_TEST_FRACTION = 0.2
#: The share of each class of the training images that `cvae train` holds out for early
#: stopping (`--validation-fraction`), so that the test images never choose the weights.
VALIDATION_FRACTION = 0.1


def strata(dataset: Dataset) -> torch.Tensor:
    """What a split keeps the shares of: each image's class, `(N,)`.

    With several conditions, the class of the first categorical part (a missing one is a
    stratum of its own, -2), or one stratum for all where there is none.
    """
    labels = labels_of(dataset)
    if labels.dim() == 1:
        return labels
    conditions = conditions_of(dataset)
    first = conditions.first_categorical if conditions is not None else None
    if first is None:
        return torch.zeros(len(labels), dtype=torch.long)
    return labels[:, conditions.columns(first.name)][:, 0].nan_to_num(_MISSING).long()  # type: ignore[union-attr]


_MISSING = -2  # the stratum of images whose class is missing (not -1, which trains only)


def _class_order(labels: torch.Tensor, seed: int) -> dict[int, torch.Tensor]:
    """Each class's positions in `labels`, shuffled by a generator of its own."""
    order = {}
    for c in torch.unique(labels).tolist():
        where = (labels == c).nonzero().flatten()
        generator = torch.Generator().manual_seed(seed + 1_000_003 * c)
        order[c] = where[torch.randperm(len(where), generator=generator)]
    return order


def split_indices(labels: torch.Tensor, test_fraction: float = DEFAULT_TEST_FRACTION,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of a stratified, seeded split: `(training, held-out)`, each sorted.

    Images labelled `UNLABELLED` (-1) all go to training: nothing can be measured on them.

    Args:
        labels: `(N,)` class indices.
        test_fraction: The share of each class to hold out, between 0 and 1.
        seed: Seed of the draw.

    Raises:
        ValueError: If `test_fraction` is not strictly between 0 and 1, or no class has
            the two images it needs to give one to each side.
    """
    test_fraction = check_float("test_fraction", test_fraction, above=True)
    seed = check_int("seed", seed, 0)
    if test_fraction >= 1:
        raise ValueError(f"test_fraction is the share of each class held out for testing, so it"
                         f" must be between 0 and 1 (such as {DEFAULT_TEST_FRACTION}), got"
                         f" {test_fraction:g}")
    train, test, alone = [], [], []
    for c, where in _class_order(labels.cpu(), seed).items():
        if c == UNLABELLED:
            train.append(where)
            continue
        if len(where) == 1:
            alone.append(c)
        # Round half up, but keep one image on each side of a class that has two.
        k = min(max(math.floor(len(where) * test_fraction + 0.5), 1), len(where) - 1)
        test.append(where[:k])
        train.append(where[k:])
    if not any(len(t) for t in test):
        raise ValueError(f"no class has the two images it needs to hold one out ({len(labels)}"
                         f" images); add images, or train on all of them without a test split")
    if alone:
        warnings.warn(f"{len(alone)} classes have a single image (such as class {alone[0]}): it"
                      f" is kept for training, so the held-out split has none of them",
                      stacklevel=2)
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def _part(dataset: Dataset, indices: torch.Tensor, split: str) -> Dataset:
    if isinstance(dataset, LabelledImages):
        return dataset.select(indices, split)
    part = Subset(dataset, indices.tolist())
    part.split = split  # type: ignore[attr-defined]
    return part


def train_test_split(data: LabelledData, test_fraction: float = DEFAULT_TEST_FRACTION,
                     seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split labelled data into a training part and a held-out part, stratified by class.

    Each class keeps its share in both parts (see `split_indices`); unlabelled images
    (-1) all stay in the training part. Tensors come back as
    `LabelledImages` (copies); any other dataset as `torch.utils.data.Subset`s of it,
    read lazily. Each part's `split` says what it is, for tables and model cards.

    Args:
        data: Labelled data in any form the `Trainer` takes.
        test_fraction: The share of each class to hold out.
        seed: Seed of the draw: the same data and seed give the same split.

    Returns:
        `(train, test)`.

    Example:
        ```python
        train, test = cvae.train_test_split((images, labels), test_fraction=0.2, seed=0)
        ```
    """
    dataset = as_dataset(data)
    train, test = split_indices(strata(dataset), test_fraction, seed)
    kept = f"{1 - test_fraction:.0%}"
    return (_part(dataset, train, f"train ({kept} of each class, seed {seed})"),
            _part(dataset, test, f"held-out ({test_fraction:.0%} of each class, seed {seed})"))


def stratified_subset(data: LabelledData, n: int, seed: int = 0) -> Dataset:
    """`n` images drawn from every class in proportion to its size, seeded.

    What `--limit` takes: unlike the first `n` images, which in a folder are the first
    classes only, every class keeps its share (and at least one image while `n` allows).

    Args:
        data: Labelled data in any form the `Trainer` takes.
        n: How many images; all of them if there are fewer.
        seed: Seed of the draw.
    """
    dataset = as_dataset(data)
    n = check_int("n", n)
    labels = strata(dataset)
    if n >= len(labels):
        return dataset
    order = _class_order(labels, seed)
    classes = sorted(order, key=lambda c: -len(order[c]))
    take = {c: int(i < n) for i, c in enumerate(classes)}  # one of each class while n allows
    left, rest = n - sum(take.values()), {c: len(order[c]) - take[c] for c in classes}
    # The rest in proportion to the class sizes, by largest remainders.
    quota = {c: rest[c] * left / sum(rest.values()) for c in classes}
    for c in classes:
        take[c] += math.floor(quota[c])
    by_remainder = sorted(classes, key=lambda c: quota[c] - math.floor(quota[c]), reverse=True)
    for c in by_remainder[:n - sum(take.values())]:
        take[c] += 1
    chosen = torch.cat([order[c][:take[c]] for c in order]).sort().values
    base = getattr(dataset, "split", None)
    return _part(dataset, chosen, f"{base + ', ' if base else ''}{n} drawn by class (seed {seed})")
