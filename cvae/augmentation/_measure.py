"""What a datasheet measures of a synthetic set, class by class.

- `memorisation`: the share of synthetic images closer to a training image than real
  training images are to each other (below the 1st percentile of the real images'
  distances to their nearest other real image), in a classifier's features;
- `class_quality`: how often a classifier trained on the real images recognises each
  class's synthetic images, beside its recall on held-out real ones, and precision,
  recall and diversity of the synthetic images against the real ones of the class;
- `utility`: the same classifier recipe trained on real images only, on synthetic only
  and on both, each tested on held-out real images, over several seeds.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cvae.data._labelled import LabelledImages
from cvae.evaluation.diversity import diversity_ratio, precision_recall
from cvae.evaluation.reference import ReferenceClassifier, fit_classifier

SETS = ("real", "synthetic", "real+synthetic")
MEMORISED_QUANTILE = 0.01  # of the real images' nearest-neighbour distances
MOST_PER_CLASS = 1000  # images of a class that precision, recall and diversity compare


def nearest(
    queries: torch.Tensor, keys: torch.Tensor, *, skip_self: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each of `queries`, the distance to its nearest of `keys`, and its index.

    In chunks of at most 2**24 distances (128 MB), whatever the number of keys.

    With `skip_self` (queries and keys one set), a point is not its own neighbour.
    """
    distances, indices = [], []
    chunk = max(1, 2**24 // max(1, len(keys)))
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk].double(), keys.double())
        if skip_self:
            rows = torch.arange(len(d))
            d[rows, rows + start] = math.inf
        best = d.min(1)
        distances.append(best.values)
        indices.append(best.indices)
    return torch.cat(distances), torch.cat(indices)


def memorisation(
    real: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor, num_classes: int
) -> dict[str, Any]:
    """Share of `fake` features nearer a `real` one than real images are to each other.

    Returns:
        `threshold` (the 1st percentile of real-to-real nearest distances), `rate` (overall),
        `rate_per_class` (NaN for a class with no synthetic image), and for every synthetic
        image its nearest real image (`nearest`) and the distance (`distance`).
    """
    own, _ = nearest(real, real, skip_self=True)
    threshold = torch.quantile(own, MEMORISED_QUANTILE).item()
    distance, index = nearest(fake, real)
    memorised = (distance < threshold).double()
    per_class = [
        memorised[fake_labels == c].mean().item() if (fake_labels == c).any() else math.nan
        for c in range(num_classes)
    ]
    return {
        "threshold": threshold,
        "rate": memorised.mean().item(),
        "rate_per_class": per_class,
        "distance": distance,
        "nearest": index,
    }


def _some(indices: torch.Tensor, seed: int) -> torch.Tensor:
    """At most `MOST_PER_CLASS` of `indices`, drawn with `seed`."""
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))
    return indices[order[:MOST_PER_CLASS]]


def class_quality(
    judge: ReferenceClassifier,
    features: tuple[torch.Tensor, torch.Tensor],
    real: LabelledImages,
    fake: LabelledImages,
    test: LabelledImages,
    num_classes: int,
    seed: int,
) -> list[dict[str, float]]:
    """Per class: `recognised`, `judge_recall` (on held-out real), `precision`, `recall`, `diversity`.

    `features` are the judge's of the real and the synthetic images. Figures that need
    images a class lacks (3 or fewer for precision and recall) are NaN.
    """
    real_features, fake_features = features
    recognised = recall_per_class(judge.predict(fake.images) == fake.labels, fake.labels, num_classes)
    on_real = recall_per_class(judge.predict(test.images) == test.labels, test.labels, num_classes)
    rows = []
    for c in range(num_classes):
        mine, drawn = real.labels == c, fake.labels == c
        row = {
            "recognised": recognised[c],
            "judge_recall": on_real[c],
            "precision": math.nan,
            "recall": math.nan,
            "diversity": math.nan,
        }
        ours = real_features[_some(mine.nonzero().flatten(), seed + c)]
        theirs = fake_features[_some(drawn.nonzero().flatten(), seed + c)]
        if min(len(ours), len(theirs)) > 3:  # k = 3 neighbours need more than 3 images
            row["precision"], row["recall"] = precision_recall(ours, theirs)
            row["diversity"] = diversity_ratio(ours, theirs)
        rows.append(row)
    return rows


def recall_per_class(right: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float]:
    """For each class, the share of its images that `right` marks (NaN for a class with none)."""
    return [
        right[labels == c].double().mean().item() if (labels == c).any() else math.nan
        for c in range(num_classes)
    ]


def mean_se(values: list[float]) -> tuple[float, float]:
    """The mean of `values` and its standard error (NaN for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def utility(
    real: LabelledImages,
    fake: LabelledImages,
    test: LabelledImages,
    num_classes: int,
    *,
    seeds: int,
    steps: int,
    batch_size: int,
) -> tuple[dict[str, Any], ReferenceClassifier]:
    """Accuracy and per-class recall on `test` of the classifier trained on each set, over `seeds`.

    Returns:
        `{set: {"accuracy", "accuracy_se", "recall", "recall_se"}}` for each of `SETS`
        (recall lists one a class), and the first classifier trained on real images only,
        which judges the synthetic images.
    """
    sources = {
        "real": (real.images, real.labels),
        "synthetic": (fake.images, fake.labels),
        "real+synthetic": (
            torch.cat([real.images, fake.images.to(real.images.dtype)]),
            torch.cat([real.labels, fake.labels]),
        ),
    }
    results, judge = {}, None
    for name in SETS:
        images, labels = sources[name]
        accuracies, recalls = [], []
        for seed in range(seeds):
            classifier = fit_classifier(
                images, labels, num_classes, steps=steps, batch_size=batch_size, seed=seed
            )
            judge = judge or classifier  # the first: real images only, seed 0
            right = classifier.predict(test.images) == test.labels
            accuracies.append(right.double().mean().item())
            recalls.append(recall_per_class(right, test.labels, num_classes))
        accuracy, accuracy_se = mean_se(accuracies)
        per_class = [mean_se([r[c] for r in recalls]) for c in range(num_classes)]
        results[name] = {
            "accuracy": accuracy,
            "accuracy_se": accuracy_se,
            "recall": [m for m, _ in per_class],
            "recall_se": [s for _, s in per_class],
        }
    assert judge is not None
    return results, judge
