"""How good a model is, measured the same way for every model.

- `elbo`: the negative ELBO per image and its two terms (one draw of `z` per image);
- `iwae_bound`: the importance-weighted bound on the negative log-likelihood
  (Burda et al. 2015), tighter than the ELBO as `k` grows;
- `reconstruction_error`: mean squared error of reconstructions from the posterior mean;
- `sample_accuracy`: how often a classifier labels samples as the class asked for;
- `frechet_distance`: the distance between Gaussians fitted to two sets of features
  (FID, Heusel et al. 2017, with the features of a classifier for the data set);
- `active_units`: how many latent units the encoder uses (Burda et al. 2016);
- `evaluate`: all of the above, with precision, recall and the diversity ratio of the
  samples (`cvae.evaluation`), as `cvae eval` prints them.

All figures are in nats per image unless named otherwise. Each takes a `generator`, so the
same model and seed give the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from cvae._classes import UNLABELLED
from cvae._devices import randn, use_bfloat16
from cvae.data._labelled import LabelledData, LabelledImages, batches
from cvae.data._sources import as_dataset, as_labelled
from cvae.models.conditional_vae import ConditionalVAE
from cvae.models.posterior import DiagonalGaussian

__all__ = ["elbo", "iwae_bound", "reconstruction_error", "sample_accuracy", "frechet_distance",
           "active_units", "classifier_accuracy"]

Features = Callable[[torch.Tensor], torch.Tensor]


def _tensors(model: ConditionalVAE, data: LabelledData) -> LabelledImages:
    data = as_labelled(data)
    return LabelledImages(data.images.to(model.device, model.dtype), data.labels.to(model.device),
                          data.class_names, data.split, data.conditions)


def _batches(model: ConditionalVAE, data: LabelledData, batch_size: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches on the model's device and dtype, read as they are needed.

    A dataset not held in memory (the Trainer's validation data may be one) is read as it
    goes, never all at once.
    """
    for x, y in batches(as_dataset(data), batch_size):
        yield x.to(model.device, model.dtype), y.to(model.device)


@torch.inference_mode()
def elbo(model: ConditionalVAE, data: LabelledData, batch_size: int = 1000,
         generator: torch.Generator | None = None) -> dict[str, float]:
    """The negative ELBO per image, `reconstruction + kl`, with one draw of `z` per image.

    Each batch is scored by `model.loss` (with `beta = 1`), the objective that training
    minimises; the sums are kept in float64. `Trainer.evaluate` reports this figure.

    Args:
        model: The model.
        data: Labelled images (a dataset or `(images, labels)`).
        batch_size: Images at a time (the draws of `z` follow the batches).
        generator: Random generator for the draws of `z` (on any device).

    Returns:
        `{"nelbo": ..., "reconstruction": ..., "kl": ...}`, averages per image in nats.
    """
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=model.device)
    count = 0
    for x, y in _batches(model, data, batch_size):
        sums += torch.stack(model.loss(x, y, generator=generator)).double()
        count += len(x)
    nelbo, reconstruction, kl = (sums / count).tolist()
    return {"nelbo": nelbo, "reconstruction": reconstruction, "kl": kl}


@torch.inference_mode()
def iwae_bound(model: ConditionalVAE, data: LabelledData, k: int = 100,
               max_decoded: int = 20000, generator: torch.Generator | None = None,
               reduction: str = "mean", mixed_precision: bool | str = "auto") -> float | torch.Tensor:
    """The importance-weighted upper bound on `-log p(x | y)`, averaged over images.

    `-log (1/k sum_i p(x, z_i | y) / q(z_i | x, y))` with `z_i ~ q(z | x, y)`. With `k = 1`
    it is the negative ELBO in expectation; it tightens (falls) towards the true negative
    log-likelihood as `k` grows.

    Args:
        model: The model.
        data: Labelled images.
        k: Importance samples per image.
        max_decoded: Images whose draws are made at once (images per batch times `k`).
            The figure depends on it, as on the seed; memory does not: each batch is
            decoded in chunks sized to the device's working memory.
        generator: Random generator for the draws (on any device).
        reduction: `"mean"` over the images, or `"none"`: the bound of each image, a
            float64 tensor (for a standard error, say).
        mixed_precision: Run the encoder and the `k` decoder passes under bfloat16
            autocast: `"auto"` (the default) does on CPUs that compute in it natively (AMX,
            AVX-512 BF16), faster (`benchmarks/eval_speed.py`); the codes, the densities and
            the log-likelihood's sum stay in float32, and the bound moves by thousandths of
            a nat on average (see the guide, Evaluating a model). `False` keeps float32,
            the same figure on every machine for the same generator; `True` forces
            bfloat16.

    Returns:
        The bound in nats per image.

    Raises:
        ValueError: If `k` is below 1, or `reduction` or `mixed_precision` is not one of
            the values above.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    bfloat16 = use_bfloat16(mixed_precision, model.device, model.dtype)
    model.eval()
    chunk = max(1, model._decode_chunk() // k)  # images whose k codes are decoded at once
    bounds = []
    # The networks run under autocast; what comes out is taken in the model's dtype, so the
    # bound is exact for the q that was used (bfloat16's mu and logvar are a q too).
    cast = torch.autocast(model.device.type, torch.bfloat16, enabled=bfloat16)
    for x, y in _batches(model, data, max(1, max_decoded // k)):
        with cast:
            q = DiagonalGaussian(*(t.to(model.dtype) for t in model.encode(x, y)))
        z = q.rsample(noise=randn((k, *q.mean.shape), generator, q.mean.device, q.mean.dtype))  # (k, b, d)
        log_pz_qz = DiagonalGaussian.standard_log_prob(z) - q.log_prob(z)  # (k, b)
        for i in range(0, len(x), chunk):
            xi, zi = x[i:i + chunk], z[:, i:i + chunk]
            with cast:
                rows = y[i:i + chunk].repeat(k, *[1] * (y.dim() - 1))  # labels or a table's rows
                logits = model.decode_logits(zi.reshape(-1, zi.shape[2]), rows)
            logits = logits.to(model.dtype)
            target = xi.unsqueeze(0).expand(k, *xi.shape).reshape(-1, *xi.shape[1:])
            log_px_z = -model.likelihood(logits, target).flatten(1).sum(1).view(k, len(xi))
            log_w = (log_px_z + log_pz_qz[:, i:i + chunk]).double()
            bounds.append(math.log(k) - torch.logsumexp(log_w, 0))
    per_image = torch.cat(bounds)
    return per_image if reduction == "none" else per_image.mean().item()


@torch.inference_mode()
def reconstruction_error(model: ConditionalVAE, data: LabelledData,
                         batch_size: int | None = None) -> float:
    """Mean squared error per pixel of `decode(mu, y)` against the images (no sampling).

    `batch_size` images at a time; by default chunks sized to the device's working memory.
    """
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=model.device), 0
    for x, y in _batches(model, data, batch_size or model._decode_chunk()):
        mu, _ = model.encode(x, y)
        total += (model.decode(mu, y) - x).pow(2).sum().double()
        count += x.numel()
    return (total / count).item()


@torch.inference_mode()
def sample_accuracy(model: ConditionalVAE, classifier: torch.nn.Module, n_per_class: int = 500,
                    temperature: float = 1.0, generator: torch.Generator | None = None
                    ) -> list[float]:
    """How often a classifier labels a model's samples as the class they were drawn for.

    The samples are decoded in float32 (`sample(mixed_precision=False)`), so the figure is
    the same on every machine for the same generator.

    Args:
        model: The generative model.
        classifier: Maps images `(B, C, H, W)` to class logits `(B, num_classes)`, for
            example `cvae.evaluation.load_classifier()` for MNIST.
        n_per_class: Samples drawn for each class.
        temperature: Prior temperature for the samples.
        generator: Optional random generator, for reproducible figures.

    Returns:
        The accuracy for each class, in class order; their mean is the overall figure.
    """
    classifier.eval()
    return [_accuracy(classifier, images, label)
            for label, images in _class_samples(model, n_per_class, temperature, generator)]


def _accuracy(classifier: torch.nn.Module, images: torch.Tensor, label: int) -> float:
    """The share of `images` that `classifier` labels as `label`."""
    predicted = classifier(images.to(next(classifier.parameters()).device)).argmax(1)
    return (predicted == label).float().mean().item()


def _class_samples(model: ConditionalVAE, n_per_class: int, temperature: float,
                   generator: torch.Generator | None, sharpness: float = 1.0,
                   guidance: float = 0.0) -> Iterator[tuple[int, torch.Tensor]]:
    """`(label, images)` for each class in turn, decoded in float32 (the same on every machine).

    At the setting given, whatever the model recommends: a figure says which it measured.
    """
    for label in range(model.num_classes):
        yield label, model.sample(label, n_per_class, temperature=temperature, generator=generator,
                                  mixed_precision=False, sharpness=sharpness, guidance=guidance)


@torch.inference_mode()
def active_units(model: ConditionalVAE, data: LabelledData, threshold: float = 0.01,
                 batch_size: int = 1000) -> int:
    """How many latent units the encoder uses for the image (Burda et al. 2016).

    A unit is active when its posterior mean `E_q(z|x,y)[z_u]` varies with the image: its
    variance over `data` is above `threshold` (0.01, as in the paper; the prior's variance
    is 1). For a conditional model the variance is taken within each class and pooled, so a
    unit that carries only the label, which the decoder is given anyway, does not count. A
    collapsed posterior, which ignores the image, has none.

    Args:
        model: The model.
        data: Labelled images (a test set, for example), at least 2 of one class; images
            labelled -1 (unlabelled) are left out.
        threshold: The variance above which a unit counts as active.
        batch_size: Images encoded at a time.

    Returns:
        The number of active units, from 0 to `model.latent_dim`.
    """
    means, labels = [], []
    for x, y in _batches(model, data, batch_size):
        if y.dim() == 2:  # several conditions: pooled within the first categorical part's classes
            means.append(model.encode(x, y)[0].double())
            labels.append(_classes_of(model, y))
            continue
        known = y != UNLABELLED  # unlabelled images (for a semi-supervised model) are left out
        means.append(model.encode(x[known], y[known])[0].double())
        labels.append(y[known])
    means, labels = torch.cat(means), torch.cat(labels)
    classes = model.num_classes + 1
    counts = torch.bincount(labels, minlength=classes).to(means.dtype)
    freedom = len(means) - int((counts > 0).sum())  # N - C: the pooled variance's divisor
    if freedom < 1:
        raise ValueError("active units need at least 2 images of one class")
    centres = torch.zeros(classes, means.shape[1], dtype=means.dtype, device=means.device)
    centres.index_add_(0, labels, means).div_(counts.clamp(min=1)[:, None])
    # Pooled within-class variance: squared deviations from each class's mean, over N - C.
    pooled = (means - centres[labels]).pow(2).sum(0) / freedom
    return int((pooled > threshold).sum())


def _classes_of(model: ConditionalVAE, table: torch.Tensor) -> torch.Tensor:
    """Each image's class in a conditions table: its first categorical part's, else 0.

    A missing class is one more group, `num_classes`.
    """
    first = model.conditions.first_categorical
    if first is None:
        return torch.zeros(len(table), dtype=torch.long, device=table.device)
    column = table[:, model.conditions.columns(first.name)][:, 0]
    return column.nan_to_num(first.num_classes).long()


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`, computed in float64 with
    symmetric eigendecompositions (no scipy needed).

    Args:
        features_a: `(N, D)` features of one image set.
        features_b: `(M, D)` features of the other.

    Returns:
        The distance (0 for identical distributions).
    """
    a, b = features_a.double().flatten(1), features_b.double().flatten(1)
    if a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two sets of at least 2 features of equal size, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    # tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric matrix.
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross).item()


@torch.inference_mode()
def _features(features: Features, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    # Small batches: a convolutional feature map of 2,000 images outgrows the CPU's caches.
    return torch.cat([features(images[i:i + batch_size]).flatten(1)
                      for i in range(0, len(images), batch_size)])


def classifier_accuracy(model, data: LabelledData, batch_size: int = 1000) -> float:
    """How often a semi-supervised model's `classify` gives the true label of `data`.

    Raises:
        ValueError: If the model has no classifier.
    """
    data = as_labelled(data)
    right = sum(int((model.classify(x.to(model.device)).argmax(1).cpu() == y).sum())
                for x, y in zip(data.images.split(batch_size), data.labels.split(batch_size)))
    return right / len(data)
