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
In eval mode (`cvae.evaluation`) the loss is the negative ELBO. `partly_labelled`
makes such data from a labelled set; `model.classify(x)` is the trained classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvae._checks import check_images
from cvae._classes import UNLABELLED
from cvae._modes import in_eval_mode
from cvae.models.loss import VAELoss

__all__ = ["SemiSupervisedMixin"]


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
                             " rule (cvae.evaluation.class_log_posterior)")
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
        with in_eval_mode(self):
            return torch.softmax(self.classifier_logits(x).float(), dim=1)

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


