"""Class labels as users give them (indices, names, lists, tensors), checked and made indices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["Labels", "class_index", "class_indices"]

#: What `sample` and friends accept as labels: a class index, a class name (when the model
#: has `class_names`), a sequence of those, or an integer tensor of class indices.
Labels = int | str | Sequence[int | str] | torch.Tensor


def class_index(label: Any, num_classes: int, class_names: Sequence[str] | None) -> int:
    """The index of one class given by index or by name.

    Raises:
        TypeError: If `label` is neither an int nor a str.
        ValueError: If it is outside `0 .. num_classes - 1` or an unknown name.
    """
    if isinstance(label, str):
        if class_names is None:
            raise ValueError(f"label {label!r} is a name, but this model has no class_names;"
                             f" use class indices 0..{num_classes - 1}")
        if label not in class_names:
            raise ValueError(f"unknown class name {label!r}; known: {list(class_names)}")
        return list(class_names).index(label)
    if isinstance(label, bool) or not isinstance(label, int):
        raise TypeError(f"labels must be ints (class indices) or class names,"
                        f" got {type(label).__name__} {label!r}")
    if not 0 <= label < num_classes:
        raise ValueError(f"label {label} is outside this model's classes 0..{num_classes - 1}")
    return label


def class_indices(labels: Labels, num_classes: int, class_names: Sequence[str] | None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Check labels and turn them into a 1-D `torch.long` tensor of class indices.

    Args:
        labels: A class index, a class name, a sequence of those, or an integer tensor.
        num_classes: How many classes there are.
        class_names: Their names, in index order, or `None`.
        device: Where to put the result.

    Raises:
        TypeError: If a label is not an int, a str or an integer tensor.
        ValueError: If a label is outside `0 .. num_classes - 1` or an unknown name.
    """
    if isinstance(labels, torch.Tensor):
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise TypeError(f"label tensors must hold integer class indices, got {labels.dtype}")
        if labels.dim() > 1:
            raise ValueError(f"labels must be a scalar or 1-D tensor, got shape {tuple(labels.shape)}")
        indices = labels.reshape(-1).long()
        outside = (indices < 0) | (indices >= num_classes)
        if outside.any():
            class_index(int(indices[outside][0]), num_classes, class_names)  # raises
        return indices.to(device)
    is_many = isinstance(labels, Sequence) and not isinstance(labels, str)
    items = list(labels) if is_many else [labels]
    return torch.tensor([class_index(item, num_classes, class_names) for item in items],
                        dtype=torch.long, device=device)
