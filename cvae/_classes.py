"""Class labels as users give them (indices, names, lists, tensors), checked and made indices."""

from __future__ import annotations

import difflib
import numbers
import unicodedata
from collections.abc import Sequence
from typing import Any

import torch

from cvae._checks import short

__all__ = ["Labels", "class_index", "class_indices", "describe", "check_class_names"]

#: What `sample` and friends accept as labels: a class index, a class name (when the model
#: has `class_names`), a sequence of those, or an integer tensor of class indices.
Labels = int | str | Sequence[int | str] | torch.Tensor


def class_index(label: Any, num_classes: int, class_names: Sequence[str] | None) -> int:
    """The index of one class given by index or by name.

    A string is a class name first: with classes named `"1", "10", "2"`, `"10"` is class 1.
    A string of digits that names no class is an index (as the command line passes them),
    unless some class names are numbers too, when it would be ambiguous and is refused.
    Integers of any kind (Python's, numpy's, 0-d tensors) are indices.

    Raises:
        TypeError: If `label` is neither an integer nor a str.
        ValueError: If it is outside `0 .. num_classes - 1` or names no class.
    """
    if isinstance(label, str):
        names = [unicodedata.normalize("NFC", name) for name in class_names or []]
        text = unicodedata.normalize("NFC", label)
        if text in names:
            return names.index(text)
        numeric = [name for name in names if _is_whole(name)]
        if _is_whole(text) and not numeric:
            return class_index(int(text), num_classes, class_names)
        if not names:
            raise ValueError(f"label {label!r} is a name, but this model has no class_names;"
                             f" use class indices 0..{num_classes - 1}")
        shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
        # Say why a number that could be an index was not taken as one.
        why = (" (numbers are read as names here, since some class names are numbers; in"
               " Python, give an index as an int)" if numeric and _is_whole(text)
               and 0 <= int(text) < num_classes else "")
        guess = _closest(text, names)
        hint = f"; did you mean {guess!r}?" if guess else ""
        raise ValueError(f"no class is named {label!r}{why}{hint} The classes are {shown}"
                         if hint else f"no class is named {label!r}{why}; the classes are {shown}")
    if isinstance(label, torch.Tensor) and label.dim() == 0 and not label.dtype.is_floating_point:
        label = int(label)
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise TypeError(f"labels must be ints (class indices) or class names,"
                        f" got {type(label).__name__} {label!r}")
    if not 0 <= label < num_classes:
        raise ValueError(f"label {label} is outside this model's classes 0..{num_classes - 1}")
    return int(label)


def _closest(text: str, names: Sequence[str]) -> str | None:
    """The class name that `text` most likely meant: the same but for case, else a near spelling."""
    folded = [name for name in names if name.casefold() == text.casefold()]
    if folded:
        return folded[0]
    close = difflib.get_close_matches(text.casefold(), [n.casefold() for n in names], n=1, cutoff=0.75)
    return next(name for name in names if name.casefold() == close[0]) if close else None


def _is_whole(text: str) -> bool:
    """Whether text reads as a whole number, as `int(text)` would take it ("7", " -2")."""
    return text.strip().lstrip("-").isdigit()


def describe(index: int, class_names: Sequence[str] | None) -> str:
    """A class for messages and file names: `'three' (class 3)`, or `class 3` without names."""
    return f"{class_names[index]!r} (class {index})" if class_names else f"class {index}"


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
    if type(labels).__module__ == "numpy" and getattr(labels, "ndim", 0) > 0:
        labels = labels.tolist()  # type: ignore[union-attr]
    is_many = isinstance(labels, Sequence) and not isinstance(labels, str)
    items = list(labels) if is_many else [labels]
    return torch.tensor([class_index(item, num_classes, class_names) for item in items],
                        dtype=torch.long, device=device)


def check_class_names(class_names: Any, num_classes: int) -> list[str] | None:
    """`class_names` as a list of `num_classes` distinct strings (or None, for none).

    Raises:
        ValueError: If they are not a list of names, or not one distinct name per class.
    """
    if class_names is None:
        return None
    if not isinstance(class_names, (list, tuple)) or not all(
            isinstance(name, (str, int)) and not isinstance(name, bool) for name in class_names):
        raise ValueError(f"class_names must be a list of names (strings), one per class,"
                         f" got {short(class_names)}")
    names = [str(name) for name in class_names]
    if len(names) != num_classes or len(set(names)) != num_classes:
        raise ValueError(f"class_names must hold {num_classes} distinct names (one per class),"
                         f" got {short(class_names)}")
    return names


#: The label of an image whose class is unknown (for a semi-supervised model); a dataset
#: may also give `None` as the label, which is read as this.
UNLABELLED = -1
