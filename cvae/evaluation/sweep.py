"""Sharp or varied: the sample figures at every sampling setting asked, and the one to recommend.

Temperature, sharpness and guidance each trade variety (recall) for typical, clean images
(precision, and samples recognised as their class). `sweep` measures every combination
with the same figures as `evaluate` (the classifier's features, each class's samples
against its real test images), and gives precision and recall also as a share of what
real images score against real images in the same features: a share of 1 is as good as
real data, and nothing is asked beyond it. The recommended setting is the one with the
best harmonic mean of the two shares (each capped at 1), so that neither is bought with
the other.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch

from cvae.data._labelled import LabelledData
from cvae.evaluation._evaluate import sample_figures
from cvae.evaluation.metrics import Features, _tensors
from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["sweep", "recommend", "default_grid"]


def default_grid(model: ConditionalVAE) -> dict[str, list[float]]:
    """The settings a sweep tries where none are given: those that apply to `model`.

    Guidance for models trained with condition dropout, sharpness for likelihoods with
    logits, and two temperatures for every model.
    """
    return {"temperature": [1.0, 0.8],
            "sharpness": [1.0, 1.5, 2.0] if model.likelihood.logits else [1.0],
            "guidance": [0.0, 1.0, 2.0, 3.0] if model.condition_dropout else [0.0]}


@torch.inference_mode()
def sweep(model: ConditionalVAE, data: LabelledData, classifier: torch.nn.Module, *,
          temperature: Sequence[float] | None = None, sharpness: Sequence[float] | None = None,
          guidance: Sequence[float] | None = None, n_per_class: int = 200, seed: int = 0,
          features: Features | None = None) -> dict[str, Any]:
    """The sample figures at every combination of the settings given, and the one to recommend.

    Args:
        model: The model.
        data: Its labelled test set.
        classifier: A classifier of the data set, whose features the figures use.
        temperature: Prior temperatures to try (default: `default_grid`'s).
        sharpness: Sharpness values to try (default: `default_grid`'s).
        guidance: Guidance weights to try (default: `default_grid`'s).
        n_per_class: Samples per class, for each setting.
        seed: Seed of every draw: each setting decodes the same codes.
        features: Maps images to feature vectors (default: the classifier's `embed`).

    Returns:
        `{"settings": [...], "recommended": {...}}`: for each setting its `temperature`,
        `sharpness` and `guidance`, then `recognised` (the mean over classes of the share
        of samples the classifier labels as asked), `recognised_worst` (that share in the
        class where it is lowest), `precision`, `recall`, `diversity`,
        `frechet_distance`, and `precision_share` and `recall_share` (against real
        images: `precision_real`, `recall_real`); `recommended` is one of them.

    Raises:
        ValueError: If a value is bad or cannot apply to this model (as in `sample`), before
            any image is drawn.
    """
    grid = default_grid(model)
    asked = {"temperature": temperature, "sharpness": sharpness, "guidance": guidance}
    values = {key: list(given) if given is not None else grid[key] for key, given in asked.items()}
    settings = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    for setting in settings:  # every one checked before the first is measured
        model.check_sampling(setting)
    data = _tensors(model, data)
    rows = []
    for setting in settings:
        figures = sample_figures(model, data, classifier, features, n_per_class, seed, setting)
        rows.append({**setting, "recognised": figures["sample_accuracy"],
                     "recognised_worst": min(figures["sample_accuracy_per_class"]),
                     **{key: figures[key] for key in ("precision", "recall", "diversity", "frechet_distance",
                                                      "precision_real", "recall_real")},
                     "precision_share": figures["precision"] / figures["precision_real"],
                     "recall_share": figures["recall"] / figures["recall_real"]})
    return {"settings": rows, "recommended": recommend(rows)}


def recommend(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The row with the best harmonic mean of its precision and recall shares, each capped at 1."""
    def score(row: dict[str, Any]) -> float:
        p, r = min(row["precision_share"], 1.0), min(row["recall_share"], 1.0)
        return 0.0 if not (p > 0 and r > 0) or math.isnan(p + r) else 2 * p * r / (p + r)

    return max(rows, key=score)
