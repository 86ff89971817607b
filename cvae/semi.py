"""Learning from partly labelled data: the model M2 of Kingma et al. (2014).

A model built with `semi_supervised=True` holds a classifier `q(y | x)` beside its encoder
and decoder: the backbone's encoder, given no label and one output per class. In a batch,
a label of `UNLABELLED` (-1) marks an image whose class is unknown; the model's loss
scores it by the paper's bound

    U(x) = sum_y q(y | x) L(x, y) - H(q(y | x)),

the negative ELBO `L(x, y)` under each class, weighted by how likely the classifier finds
it, less the classifier's entropy (each unlabelled image costs a pass per class). A labelled
image costs `L(x, y)`, plus, in training mode, `classifier_weight` times the classifier's
cross-entropy, the paper's alpha term: without it the classifier would learn from no label.
In eval mode (`cvae.metrics`) the loss is the negative ELBO. `partly_labelled`
makes such data from a labelled set; `model.classify(x)` is the trained classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import check_images, check_int
from .labelled import UNLABELLED, LabelledData, LabelledImages, to_tensors
from .loss import VAELoss
from .sources import as_dataset

__all__ = ["UNLABELLED", "SemiSupervisedMixin", "partly_labelled", "with_unlabelled",
           "classifier_accuracy"]


class SemiSupervisedMixin:
    """`classify` and the M2 loss, for `ConditionalVAE` (see the module's docs)."""

    def classifier_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's logits `(B, num_classes)` for images `(B, C, H, W)`.

        Raises:
            ValueError: If the model was built without `semi_supervised=True`.
        """
        if self.classifier is None:
            raise ValueError("this model has no classifier: build it with"
                             " ConditionalVAE(..., semi_supervised=True), or classify by Bayes'"
                             " rule (cvae.bayes.class_log_posterior)")
        check_images(x, self.image_shape)
        # The backbone's encoder, built for one constant label and num_classes outputs:
        # its mean head gives the logits, its variance head is not used.
        return self.classifier(x.to(self.dtype), self._eye.new_ones(len(x), 1))[0]

    @torch.inference_mode()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The learned `q(y | x)`: class probabilities `(B, num_classes)`; `argmax(1)` predicts.

        Raises:
            ValueError: If the model has no classifier, or `x` is not of its image shape.
        """
        training = self.training
        self.eval()
        try:
            return torch.softmax(self.classifier_logits(x).float(), dim=1)
        finally:
            self.train(training)

    def check_classes_labelled(self, labels: torch.Tensor, role: str = "training") -> None:
        """Refuse partly labelled data that leave a class with no labelled image.

        The Trainer calls this with all the labels of data it holds in memory (streamed data
        are read batch by batch, so not checked for it).

        Raises:
            ValueError: If some class has no labelled image among `labels`.
        """
        known = labels[labels != UNLABELLED]
        missing = sorted(set(range(self.num_classes)) - set(known.unique().tolist()))
        if missing:
            names = [self.class_names[c] if self.class_names else str(c) for c in missing]
            raise ValueError(f"the {role} data have no labelled image of class(es)"
                             f" {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}:"
                             f" a semi-supervised model needs at least one of each class")

    def _partly_labelled_loss(self, x: torch.Tensor, y: torch.Tensor, *,
                              beta: float | torch.Tensor, generator: torch.Generator | None,
                              noise: torch.Tensor | None, reduction: str, free_bits: float) -> VAELoss:
        """`model.loss` of a batch in which some labels are `UNLABELLED`."""
        if free_bits:
            raise ValueError("free_bits is not used with unlabelled images, whose KL term is an"
                             " average over classes: train with free_bits=0")
        known = y != UNLABELLED
        k, unknown = self.num_classes, int((~known).sum())
        # Labelled images once with their label, then every unlabelled one with each class.
        xs = torch.cat([x[known], x[~known].repeat(k, 1, 1, 1)])
        ys = torch.cat([y[known], torch.arange(k, device=y.device).repeat_interleave(unknown)])
        eps = None if noise is None else torch.cat([noise[known], noise[~known].repeat(k, 1)])
        per = self._elbo_loss(xs, ys, beta, generator, eps, "none", 0.0)
        log_q = F.log_softmax(self.classifier_logits(x).to(per.loss.dtype), dim=1)
        q = log_q[~known].exp()
        labelled = len(xs) - k * unknown
        terms = []
        for part in per:  # loss, reconstruction, kl: each image's, in the batch's order
            out = part.new_empty(len(x))
            out[known] = part[:labelled]
            out[~known] = (q * part[labelled:].view(k, unknown).T).sum(1)
            terms.append(out)
        if self.training:  # the objective; in eval mode the loss is the negative ELBO
            cross_entropy = -log_q[known].gather(1, y[known, None]).squeeze(1)
            terms[0][known] += self.config["classifier_weight"] * cross_entropy
        terms[0][~known] += (q * log_q[~known]).sum(1)  # minus the entropy
        if reduction == "none":
            return VAELoss(*terms)
        sums = [t.sum() / len(x) if reduction == "mean" else t.sum() for t in terms]
        return VAELoss(*sums)


def partly_labelled(data: LabelledData, per_class: int, seed: int = 0,
                    repeat: int = 1) -> LabelledImages:
    """Keep the labels of `per_class` images of each class; the rest become `UNLABELLED`.

    Args:
        data: Labelled data in any form the `Trainer` takes.
        per_class: Images of each class that keep their label, drawn with `seed`.
        seed: Seed of the draw: the same seed keeps the same images.
        repeat: How many times each labelled image appears (the unlabelled ones once), so
            that batches hold labelled images often enough to train the classifier: 100
            labels among 60,000 images put one in about every fifth batch of 128.

    Returns:
        The images and their labels, with -1 for the images whose label was dropped.

    Raises:
        ValueError: If `per_class` or `repeat` is not a positive int, or a class has fewer
            than `per_class` images.
    """
    per_class, repeat = check_int("per_class", per_class), check_int("repeat", repeat)
    data = to_tensors(as_dataset(data))
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(data.labels[data.labels != UNLABELLED]).tolist():
        where = (data.labels == c).nonzero().flatten()
        if len(where) < per_class:
            raise ValueError(f"class {c} has {len(where)} images, fewer than the {per_class} per"
                             f" class asked to keep their labels")
        keep.append(where[torch.randperm(len(where), generator=generator)[:per_class]])
    kept = torch.cat(keep)
    labels = torch.full_like(data.labels, UNLABELLED)
    labels[kept] = data.labels[kept]
    return with_unlabelled(LabelledImages(data.images, labels, data.class_names), repeat=repeat)


def with_unlabelled(data: LabelledData, unlabelled: torch.Tensor | None = None,
                    repeat: int = 1) -> LabelledImages:
    """Labelled data and a separate set of unlabelled images, as one training set.

    Args:
        data: Labelled data in any form the `Trainer` takes; its images labelled -1 (or
            `None`) are unlabelled too.
        unlabelled: More images without labels, `(N, C, H, W)` in [0, 1] like those of
            `data` (`cvae.data.load_images(paths, image_shape)` reads files so), or `None`.
        repeat: How many times each labelled image appears (the unlabelled ones once), so
            that batches hold labelled images often enough to train the classifier.

    Returns:
        The images of both, labelled images first as in `data`, then `unlabelled` with
        label -1, then the repeats.

    Raises:
        ValueError: If `repeat` is not a positive int, or the unlabelled images are not of
            the shape of `data`'s.
        TypeError: If `unlabelled` is not a float tensor.
    """
    repeat = check_int("repeat", repeat)
    data = to_tensors(as_dataset(data))
    images, labels = data.images, data.labels
    if unlabelled is not None:
        if not isinstance(unlabelled, torch.Tensor) or not unlabelled.dtype.is_floating_point:
            raise TypeError(f"unlabelled must be a float tensor of images (N, C, H, W) in [0, 1],"
                            f" got {getattr(unlabelled, 'dtype', type(unlabelled).__name__)}")
        if unlabelled.shape[1:] != images.shape[1:] or unlabelled.dim() != 4:
            raise ValueError(f"the unlabelled images have shape {tuple(unlabelled.shape)}, but the"
                             f" labelled ones (N, {', '.join(map(str, images.shape[1:]))})")
        images = torch.cat([images, unlabelled.to(images.dtype)])
        labels = torch.cat([labels, labels.new_full((len(unlabelled),), UNLABELLED)])
    extra = (labels != UNLABELLED).nonzero().flatten().repeat(repeat - 1)
    return LabelledImages(torch.cat([images, images[extra]]), torch.cat([labels, labels[extra]]),
                          data.class_names, data.split)


def classifier_accuracy(model, data: LabelledData, batch_size: int = 1000) -> float:
    """How often a semi-supervised model's `classify` gives the true label of `data`.

    Raises:
        ValueError: If the model has no classifier.
    """
    data = to_tensors(as_dataset(data))
    right = sum(int((model.classify(x.to(model.device)).argmax(1).cpu() == y).sum())
                for x, y in zip(data.images.split(batch_size), data.labels.split(batch_size)))
    return right / len(data)
