"""`ConditionPredictor`: a small CNN that measures every condition part back from an image.

A model's samples are asked for conditions; to check them on data that bring no measuring
function of their own (the morphometry of `benchmarks/morphometry.py`, say), `cvae eval`
trains this predictor on the real training images and measures the samples with it
(`cvae.evaluation.condition_fidelity`), beside its own score on real test images, which
says how far the instrument itself can be trusted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvae.conditions import Categorical, Conditions, Continuous, MultiLabel
from cvae.data import LabelledData, as_labelled

__all__ = ["ConditionPredictor", "fit_predictor", "small_cnn"]


def small_cnn(channels: int, outputs: int, width: int = 32) -> nn.Sequential:
    """A small CNN for images of any size with `channels`, and `outputs` outputs.

    Three conv layers (`width`, twice and four times as many channels; the last two stride
    2), pooled to 4x4, then a hidden layer of `8 * width` and the outputs: what comes before
    the last module gives the `8 * width` features.
    """
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1), nn.SiLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.SiLU(), nn.AdaptiveAvgPool2d(4),
        nn.Flatten(), nn.Linear(4 * width * 16, 8 * width), nn.SiLU(), nn.Linear(8 * width, outputs))


class ConditionPredictor(nn.Module):
    """A small CNN (`small_cnn`) with one output per class, tag or value of the conditions.

    Args:
        channels: Channels of the images.
        conditions: The parts to predict; continuous ones must have their statistics (the
            predictor learns standardised values and gives them back in the data's units).
    """

    def __init__(self, channels: int, conditions: Conditions):
        super().__init__()
        self.conditions = conditions
        self.widths = [p.num_classes if isinstance(p, Categorical) else len(p.tags) if isinstance(
            p, MultiLabel) else 1 for p in conditions]
        self.net = small_cnn(channels, sum(self.widths))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each part's raw output for images `(B, C, H, W)`: logits, or a standardised value."""
        return list(self.net(x).split(self.widths, 1))

    def loss(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, binary cross-entropy or squared error per part; missing values left out."""
        total = x.new_zeros(())
        for part, out in zip(self.conditions, self(x)):
            target = table[:, self.conditions.columns(part.name)]
            known = ~torch.isnan(target).any(1)
            if not known.any():
                continue
            out, target = out[known], target[known]
            if isinstance(part, Categorical):
                total = total + F.cross_entropy(out, target[:, 0].long())
            elif isinstance(part, MultiLabel):
                total = total + F.binary_cross_entropy_with_logits(out, target)
            else:
                total = total + F.mse_loss(out, (target - part.mean) / part.std)  # type: ignore[operator]
        return total

    @torch.inference_mode()
    def measure(self, images: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
        """Each part measured from images: class logits, tag probabilities, or values."""
        self.eval()
        device = next(self.parameters()).device
        outs = [self(images[i:i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
        measured = {}
        for j, part in enumerate(self.conditions):
            out = torch.cat([o[j] for o in outs]).cpu()
            if isinstance(part, MultiLabel):
                out = torch.sigmoid(out)
            elif isinstance(part, Continuous):
                out = out[:, 0] * part.std + part.mean  # type: ignore[operator]
            measured[part.name] = out
        return measured


def fit_predictor(data: LabelledData, conditions: Conditions, *, epochs: int = 5, n: int | None = 20_000,
                  batch_size: int = 128, seed: int = 0) -> ConditionPredictor:
    """A `ConditionPredictor` trained on (up to `n` of) the real images and their conditions.

    Args:
        data: Training images with their conditions table.
        conditions: The parts (a model's `conditions`, statistics taken).
        epochs: Passes over the images (Adam, lr 1e-3).
        n: How many of the images; `None`: all.
        batch_size: Images a step.
        seed: Seed of the initial weights and the order.
    """
    data = as_labelled(data)
    images, table = data.images[:n].float(), data.labels[:n].float()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    predictor = ConditionPredictor(images.shape[1], conditions)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(images), generator=generator).split(batch_size):
            optimizer.zero_grad()
            predictor.loss(images[idx], table[idx]).backward()
            optimizer.step()
    return predictor.eval()
