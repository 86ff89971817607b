"""`evaluate`: every figure of `cvae.evaluation` on one labelled test set, as `cvae eval` prints it."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from cvae._checks import check_int
from cvae._devices import use_bfloat16
from cvae.data._labelled import LabelledData, LabelledImages
from cvae.data._splits import stratified_subset
from cvae.evaluation.bayes import bayes_accuracy
from cvae.evaluation.diversity import diversity_ratio, precision_recall
from cvae.evaluation.metrics import (
    Features,
    _accuracy,
    _class_samples,
    _features,
    _tensors,
    active_units,
    classifier_accuracy,
    elbo,
    frechet_distance,
    iwae_bound,
    reconstruction_error,
)
from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["evaluate", "class_halves", "sample_figures"]


@torch.inference_mode()
def evaluate(model: ConditionalVAE, data: LabelledData, *, k: int = 100,
             iwae_images: int | None = 1000,
             classifier: torch.nn.Module | None = None, features: Features | None = None,
             n_per_class: int = 500, seed: int = 0, mixed_precision: bool | str = "auto",
             bayes_k: int | None = None, sampling: dict[str, float] | None = None) -> dict[str, Any]:
    """Every figure of `cvae.evaluation` on one labelled test set: what `cvae eval` prints.

    The importance-weighted bound costs `k` decoder passes an image, a hundred times the
    rest: by default it is measured on a fixed subset of `iwae_images` test images (every
    class in proportion, drawn with `seed`, so the same images for every model), with its
    standard error; `iwae_images=None` measures it on all of them.

    Args:
        model: The model.
        data: The labelled test set.
        k: Importance samples for `iwae_bound`.
        iwae_images: Test images the bound is measured on; `None` for all.
        classifier: A classifier for the data set, which enables the generation metrics.
        features: Maps images to feature vectors for the Fréchet distance (default: the
            classifier's `embed` method).
        n_per_class: Samples per class for `sample_accuracy`, precision, recall and
            diversity.
        seed: Seed of every random draw.
        mixed_precision: `iwae_bound`'s setting for the bound's network passes (`"auto"`:
            bfloat16 on CPUs that compute in it natively), and Bayes' rule's; every other
            figure is measured in float32.
        bayes_k: Also classify the images by Bayes' rule over the classes, with this many
            importance samples per image and class (`bayes_accuracy`); `None` does not.
        sampling: The setting the samples are drawn at, `{"temperature": t, "sharpness":
            s, "guidance": w}`, any of them; by default the model's own distribution (1, 1,
            0), whatever setting it recommends. `model.sampling` judges what `sample()` draws.

    Returns:
        A dict of figures: `nelbo`, `reconstruction`, `kl`, `iwae` (with `k`, the
        number of images `iwae_images`, the standard error of their mean `iwae_se` and
        `iwae_precision`, `"bfloat16"` or `"float32"`),
        `reconstruction_mse`, `active_units` (of `latent_dim`); with a classifier also
        `sample_accuracy` (the mean over classes), `sample_accuracy_per_class`,
        `frechet_distance` (real images of one half of the test set against samples drawn
        for the labels of the other half), `frechet_distance_real` (the two real halves
        against each other: what a perfect generator would score), and `precision`,
        `recall` and `diversity` (see `cvae.evaluation`; in the classifier's features, for
        each class the `n_per_class` samples against up to `n_per_class` real test images
        of the class, then the mean over classes; `_per_class` lists) beside
        `precision_real`, `recall_real` and `diversity_real` (another as many real test
        images of each class in the samples' place); for a semi-supervised model its own
        classifier's `classifier_accuracy`; with `bayes_k`, `bayes_accuracy` (and per class,
        and `bayes_seconds`). Always `test_images`, `seed` and `samples_per_class`.
    """
    k = check_int("k", k)
    iwae_images = None if iwae_images is None else check_int("iwae_images", iwae_images)
    model.check_sampling(sampling)  # a bad setting refused before the bound's minutes
    data = _tensors(model, data)
    gen = torch.Generator(model.device)
    subset = data if iwae_images is None else _tensors(model, stratified_subset(data, iwae_images, seed))
    bounds = iwae_bound(model, subset, k, generator=gen.manual_seed(seed), reduction="none",
                        mixed_precision=mixed_precision)
    bfloat16 = use_bfloat16(mixed_precision, model.device, model.dtype)
    results: dict[str, float | list[float] | str] = {
        **elbo(model, data, generator=gen.manual_seed(seed)),
        "iwae": bounds.mean().item(), "k": k, "iwae_images": len(bounds),
        "iwae_se": (bounds.std() / math.sqrt(len(bounds))).item() if len(bounds) > 1 else math.nan,
        "iwae_precision": "bfloat16" if bfloat16 else "float32",
        "reconstruction_mse": reconstruction_error(model, data),
        "active_units": active_units(model, data), "latent_dim": model.latent_dim,
        "test_images": len(data), "seed": seed, "samples_per_class": n_per_class,
    }
    results.update(_own_classifier(model, data, bayes_k, seed, mixed_precision))
    if classifier is not None:
        results.update(sample_figures(model, data, classifier, features, n_per_class, seed, sampling))
    return results


def _own_classifier(model: ConditionalVAE, data: LabelledImages, bayes_k: int | None, seed: int,
                    mixed_precision: bool | str) -> dict[str, Any]:
    """How well the model classifies: its own q(y | x) if it has one, Bayes' rule if asked."""
    results: dict[str, Any] = {}
    if model.classifier is not None:  # a semi-supervised model's own q(y | x)
        results["classifier_accuracy"] = classifier_accuracy(model, data)
    if bayes_k:
        start = time.perf_counter()
        bayes = bayes_accuracy(model, data, k=check_int("bayes_k", bayes_k),
                               generator=torch.Generator(model.device).manual_seed(seed),
                               mixed_precision=mixed_precision)
        results.update({"bayes_k": bayes_k, "bayes_accuracy": bayes["accuracy"],
                        "bayes_accuracy_per_class": bayes["accuracy_per_class"],
                        "bayes_seconds": time.perf_counter() - start})
    return results


def sample_figures(model: ConditionalVAE, data: LabelledImages, classifier: torch.nn.Module,
                   features: Features | None, n_per_class: int, seed: int,
                   setting: dict[str, float] | None = None) -> dict[str, Any]:
    """The samples judged by a classifier: accuracy, Frechet distance, precision, recall, diversity.

    Drawn at `setting` (`temperature`, `sharpness`, `guidance`); by default the model's own
    distribution (1, 1, 0), whatever setting it recommends.
    """
    setting = {**model.SAMPLING, **(setting or {})}
    gen = torch.Generator(model.device)
    classifier.eval()
    features = features or classifier.embed
    real = _features(features, data.images)  # every test image's, once
    per_class, spread = [], []
    for label, images in _class_samples(model, n_per_class, generator=gen.manual_seed(seed), **setting):
        per_class.append(_accuracy(classifier, images, label))
        spread.append(_spread(_features(features, images), real, data.labels, label, n_per_class, seed))
    # Halves of equal size and class balance, which the Fréchet distance depends on.
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    a, b = order[: len(data) // 2].to(model.device), order[len(data) // 2:].to(model.device)
    fake = model.sample(data.labels[b], 1, generator=gen.manual_seed(seed), mixed_precision=False,
                        **setting)
    real_a = real[a]
    results: dict[str, Any] = {
        "sample_accuracy": sum(per_class) / len(per_class),
        "sample_accuracy_per_class": per_class,
        "frechet_distance": frechet_distance(real_a, _features(features, fake)),
        "frechet_distance_real": frechet_distance(real_a, real[b]),
    }
    for name in spread[0]:
        values = [figures[name] for figures in spread]
        results[name] = sum(values) / len(values)
        if not name.endswith("_real"):
            results[f"{name}_per_class"] = values
    return results


def class_halves(labels: torch.Tensor, label: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the two sets of a class's images that `evaluate` compares samples with.

    The class's images shuffled with `seed + label`: the first `m` stand for the data, the
    next `m` take the samples' place for the reference (`m`: `n`, or half the class).

    Args:
        labels: The class of every image, `(N,)`.
        label: The class.
        n: Images wanted in each set.
        seed: `evaluate`'s seed.

    Returns:
        `(data, reference)`: two index tensors of `m` images each, on the CPU.
    """
    own = (labels == label).nonzero().flatten().cpu()
    own = own[torch.randperm(len(own), generator=torch.Generator().manual_seed(seed + label))]
    m = min(n, len(own) // 2)
    return own[:m], own[m:2 * m]


def _spread(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor, label: int, n: int,
            seed: int) -> dict[str, float]:
    """Precision, recall and diversity of one class's samples, and `_real`: real against real.

    `real` holds the features of every test image, `labels` their classes. The class's
    images are shuffled with `seed`; the first `n` (at most half of them) stand for the
    data, the next as many take the samples' place for the reference.
    """
    ours, other = class_halves(labels, label, n, seed)
    names = ("precision", "recall", "diversity")
    if len(ours) <= 3:  # k = 3 neighbours need more than 3 images
        return {f"{name}{suffix}": math.nan for suffix in ("", "_real") for name in names}
    ours, other = real[ours.to(real.device)], real[other.to(real.device)]
    figures = {}
    for suffix, drawn in (("", fake), ("_real", other)):
        values = (*precision_recall(ours, drawn), diversity_ratio(ours, drawn))
        figures.update({f"{name}{suffix}": value for name, value in zip(names, values)})
    return figures
