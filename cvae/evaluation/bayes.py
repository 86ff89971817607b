"""Classify images with a conditional generative model, by Bayes' rule.

A conditional VAE models `p(x | y)` for every class `y`, so Bayes' rule makes it a
classifier with nothing more to train:

    p(y | x) = p(x | y) p(y) / sum_c p(x | c) p(c)

`log p(x | y)` is estimated by the importance-weighted bound (Burda et al. 2015) with `k`
draws of `z` for each class (`k = 1`: the ELBO with one draw), so an image costs
`num_classes * k` decoder passes. It works for any conditional model, the bundled ones
included; `cvae eval --bayes-k K` reports its accuracy on a test set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cvae._checks import check_int
from cvae.data._labelled import LabelledData
from cvae.data._sources import as_labelled
from cvae.evaluation.metrics import iwae_bound
from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["class_log_posterior", "bayes_accuracy"]


def _log_prior(model: ConditionalVAE, class_prior: Sequence[float] | torch.Tensor | None) -> torch.Tensor:
    classes = model.num_classes
    prior = torch.as_tensor(class_prior if class_prior is not None else [1.0] * classes,
                            dtype=torch.float64).flatten()
    if len(prior) != classes or not bool((prior > 0).all()) or not bool(prior.isfinite().all()):
        raise ValueError(f"class_prior must give a positive, finite weight to each of the model's"
                         f" {classes} classes, got {len(prior)} values"
                         f"{'' if len(prior) != classes else ', some zero, negative or not finite'}")
    return (prior / prior.sum()).log()


@torch.inference_mode()
def class_log_posterior(model: ConditionalVAE, images: torch.Tensor, *, k: int = 10,
                        class_prior: Sequence[float] | torch.Tensor | None = None,
                        generator: torch.Generator | None = None,
                        mixed_precision: bool | str = "auto") -> torch.Tensor:
    """`log p(y | x)` for every class, from the model's `p(x | y)` and a class prior.

    Args:
        model: Any conditional model of this library (a bundled one, say).
        images: `(B, C, H, W)` images of the model's shape, values as it was trained on.
        k: Draws of `z` per image and class for the importance-weighted estimate of
            `log p(x | y)`; more is more exact and costs more (`k` decoder passes per class).
        class_prior: `p(y)`, one positive weight per class (normalised here), for example
            the training set's class counts; default: uniform.
        generator: Random generator for the draws (on the model's device), for
            reproducible results.
        mixed_precision: Decode in bfloat16 (`iwae_bound`'s setting): `"auto"` does on
            CPUs that compute in it natively; `False` keeps float32.

    Returns:
        A float64 tensor `(B, num_classes)` of log-probabilities; `argmax(1)` is the
        predicted class.

    Raises:
        ValueError: If `images` do not match the model's image shape, `k` is below 1 or
            `class_prior` does not give a positive weight to each class.
    """
    k = check_int("k", k)
    log_prior = _log_prior(model, class_prior)
    if images.dim() != 4 or not len(images):
        raise ValueError(f"images must be a batch (B, C, H, W) of at least one image, got shape"
                         f" {tuple(images.shape)}")
    model._check_data(images, torch.zeros(len(images), dtype=torch.long), "the classified")
    log_px = torch.stack([
        -iwae_bound(model, (images, torch.full((len(images),), c, dtype=torch.long)), k,
                    generator=generator, reduction="none", mixed_precision=mixed_precision).cpu()
        for c in range(model.num_classes)], dim=1)
    return torch.log_softmax(log_px + log_prior, dim=1)


def bayes_accuracy(model: ConditionalVAE, data: LabelledData, *, k: int = 10,
                   class_prior: Sequence[float] | torch.Tensor | None = None,
                   generator: torch.Generator | None = None,
                   mixed_precision: bool | str = "auto") -> dict[str, float | list[float]]:
    """How often `class_log_posterior`'s most probable class is the true label.

    Args:
        model: The conditional model.
        data: Labelled test images (a dataset or `(images, labels)`).
        k: Draws per image and class (see `class_log_posterior`).
        class_prior: `p(y)`; default: uniform.
        generator: Random generator for the draws.
        mixed_precision: See `class_log_posterior`.

    Returns:
        `{"accuracy": ..., "accuracy_per_class": [...]}`, each from 0 to 1 (a class with
        no test image gets NaN).
    """
    data = as_labelled(data)
    model._check_data(data.images, data.labels, "the test")
    predicted = class_log_posterior(model, data.images, k=k, class_prior=class_prior,
                                    generator=generator, mixed_precision=mixed_precision).argmax(1)
    labels = data.labels.cpu()
    right = (predicted == labels).double()
    per_class = [right[labels == c].mean().item() for c in range(model.num_classes)]
    return {"accuracy": right.mean().item(), "accuracy_per_class": per_class}
