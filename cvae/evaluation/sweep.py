"""Sharp or varied: the sample figures at every sampling setting asked, and the one to recommend.

Temperature, sharpness and guidance each trade variety (recall) for typical, clean images
(precision, and samples recognised as their class). `sweep` measures every combination
with the same figures as `evaluate` (the classifier's features, each class's samples
against its real test images), and gives precision and recall also as a share of what
real images score against real images in the same features: a share of 1 is as good as
real data, and nothing is asked beyond it.

The recommended setting puts precision first: of the settings whose samples look as real
as `min_precision` (0.95) of real images' precision, the most varied (the highest recall
share), as a detector is run at "recall at 95% precision". A setting must also have its
samples recognised as their class at least as often as the model's own distribution
(temperature 1, sharpness 1, no guidance): variety bought with samples of the wrong class
is not recommended (a warmer prior raises recall while it draws more samples that look
like another class). Where no setting is that precise, the most precise is recommended.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch

from cvae._checks import check_float
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
          features: Features | None = None, min_precision: float = 0.95) -> dict[str, Any]:
    """The sample figures at every combination of the settings given, and the one to recommend.

    The model's own distribution (`ConditionalVAE.SAMPLING`: temperature 1, sharpness 1, no
    guidance) is measured too, first, where the combinations leave it out: `recommend` holds
    the others to its share of samples recognised.

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
        min_precision: The precision share a recommended setting must reach (`recommend`).

    Returns:
        `{"settings": [...], "recommended": {...}, "min_precision": ..., "n_per_class": ...,
        "seed": ...}`: for each setting its `temperature`,
        `sharpness` and `guidance`, then `recognised` (the mean over classes of the share
        of samples the classifier labels as asked), `recognised_worst` (that share in the
        class where it is lowest) and `recognised_worst_class` (that class's name),
        `precision`, `recall`, `diversity`,
        `frechet_distance`, and `precision_share` and `recall_share` (against real
        images: `precision_real`, `recall_real`); `recommended` is one of them.

    Raises:
        ValueError: If a value is bad or cannot apply to this model (as in `sample`), before
            any image is drawn.
    """
    check_float("min_precision", min_precision, above=True)
    grid = default_grid(model)
    asked = {"temperature": temperature, "sharpness": sharpness, "guidance": guidance}
    values = {key: list(given) if given is not None else grid[key] for key, given in asked.items()}
    settings = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    if model.SAMPLING not in settings:
        settings.insert(0, dict(model.SAMPLING))
    for setting in settings:  # every one checked before the first is measured
        model.check_sampling(setting)
    data = _tensors(model, data)
    rows = []
    for setting in settings:
        figures = sample_figures(model, data, classifier, features, n_per_class, seed, setting)
        per_class = figures["sample_accuracy_per_class"]
        worst = min(range(len(per_class)), key=per_class.__getitem__)
        rows.append({**setting, "recognised": figures["sample_accuracy"],
                     "recognised_worst": per_class[worst],
                     "recognised_worst_class": model.class_names[worst] if model.class_names else str(worst),
                     **{key: figures[key] for key in ("precision", "recall", "diversity", "frechet_distance",
                                                      "precision_real", "recall_real")},
                     "precision_share": figures["precision"] / figures["precision_real"],
                     "recall_share": figures["recall"] / figures["recall_real"]})
    return {"settings": rows, "recommended": recommend(rows, min_precision), "min_precision": min_precision,
            "n_per_class": n_per_class, "seed": seed}


def recommend(rows: Sequence[dict[str, Any]], min_precision: float = 0.95) -> dict[str, Any]:
    """The setting to recommend of a sweep's rows: the most varied of those that look real.

    Of the rows whose `recognised` is at least that of the model's own distribution
    (`ConditionalVAE.SAMPLING`, measured on the same codes) and whose `precision_share` is
    at least `min_precision`, the one with the highest `recall_share` (capped at 1). Recall
    shares equal to the hundredth count as a tie, which goes to the more precise: a few
    hundred samples a class do not measure recall more finely. Where no row recognised as
    often is that precise, the most precise of them.

    Args:
        rows: `sweep`'s rows, the model's own distribution among them.
        min_precision: The share of real images' precision asked of the samples: lower buys
            variety with samples that look less real.

    Returns:
        One of `rows`.

    Raises:
        ValueError: If `min_precision` is not a finite number above 0, or no row is at the
            model's own distribution.
    """
    check_float("min_precision", min_precision, above=True)
    own = next((row for row in rows
                if all(row[key] == value for key, value in ConditionalVAE.SAMPLING.items())), None)
    if own is None:
        raise ValueError(f"recommend holds every setting to the share of samples recognised at the"
                         f" model's own distribution, {ConditionalVAE.SAMPLING}, and no row is at"
                         f" it: sweep measures it with the others")
    recognised = [row for row in rows if row["recognised"] >= own["recognised"]]
    precise = [row for row in recognised if _share(row, "precision") >= min_precision]
    if not precise:
        return max(recognised, key=lambda row: _share(row, "precision"))
    return max(precise, key=lambda row: (round(min(_share(row, "recall"), 1.0), 2), _share(row, "precision")))


def _share(row: dict[str, Any], figure: str) -> float:
    """A row's share of real for `figure`; minus infinity where it could not be measured (NaN)."""
    value = row[f"{figure}_share"]
    return -math.inf if math.isnan(value) else value

