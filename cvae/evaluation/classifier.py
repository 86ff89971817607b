"""A small MNIST digit classifier, shipped to judge generated digits.

It is not a generative model: `cvae.evaluation.sample_accuracy` uses it to measure how often a
model's samples are the class asked for. Its weights are in `cvae/classifiers/mnist-cnn/`,
trained by `scripts/train_classifier.py` (the card there gives its test accuracy).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["MNISTClassifier", "load_classifier"]

CLASSIFIERS_DIR = Path(__file__).parents[1] / "classifiers"  # cvae/classifiers


class MNISTClassifier(nn.Module):
    """Three conv-BN-ReLU-pool blocks (32, 64, 128 channels) and a linear head.

    Args:
        num_classes: Number of output classes.
        in_channels: Channels of the input images (28x28).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        blocks: list[nn.Module] = []
        for c_in, c_out in ((in_channels, 32), (32, 64), (64, 128)):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                       nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)  # 28 -> 14 -> 7 -> 3
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 3 * 3, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits `(B, num_classes)` for images `(B, C, 28, 28)` in [0, 1]."""
        return self.head(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The features the head classifies, `(B, 1152)`: what Fréchet distances compare."""
        # channels-last: oneDNN's convolutions run faster on a CPU (as in cvae.models.backbones)
        return self.features(x.contiguous(memory_format=torch.channels_last)).flatten(1)

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Predicted class indices `(B,)`, computed in batches in eval mode."""
        self.eval()
        return torch.cat([self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def load_classifier(name: str = "mnist-cnn", device: str | torch.device = "cpu") -> MNISTClassifier:
    """Load a bundled classifier (eval mode).

    Args:
        name: The bundled classifier's folder name.
        device: Where to put it.

    Raises:
        FileNotFoundError: If no such classifier is bundled.
    """
    from safetensors.torch import load_model

    path = CLASSIFIERS_DIR / name / "model.safetensors"
    if not path.is_file():
        known = sorted(p.name for p in CLASSIFIERS_DIR.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no bundled classifier named {name!r}; bundled: {known}")
    model = MNISTClassifier()
    load_model(model, str(path))
    return model.to(device, memory_format=torch.channels_last).eval()
