"""How good a model is: measures computed the same way for every model."""

from __future__ import annotations

import torch
from torch import nn

from .model import ConditionalVAE

__all__ = ["sample_accuracy"]


@torch.inference_mode()
def sample_accuracy(model: ConditionalVAE, classifier: nn.Module, n_per_class: int = 500,
                    temperature: float = 1.0, generator: torch.Generator | None = None
                    ) -> list[float]:
    """How often a classifier labels a model's samples as the class they were drawn for.

    Args:
        model: The generative model.
        classifier: Maps images `(B, C, H, W)` to class logits `(B, num_classes)`, for
            example `cvae.classifier.load_classifier()` for MNIST.
        n_per_class: Samples drawn for each class.
        temperature: Prior temperature for the samples.
        generator: Optional random generator, for reproducible figures.

    Returns:
        The accuracy for each class, in class order; their mean is the overall figure.
    """
    classifier.eval()
    accuracies = []
    for label in range(model.num_classes):
        images = model.sample(label, n_per_class, temperature=temperature, generator=generator)
        predicted = classifier(images.to(next(classifier.parameters()).device)).argmax(1)
        accuracies.append((predicted == label).float().mean().item())
    return accuracies
