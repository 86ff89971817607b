"""How many synthetic images of each class: a count per class, or the classes balanced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from cvae._checks import check_int
from cvae._classes import class_index

PerClass = int | Mapping[int | str, int]


def plan_counts(
    real_counts: torch.Tensor,
    class_names: Sequence[str] | None,
    *,
    per_class: PerClass | None = None,
    balance: bool = False,
) -> list[int]:
    """Synthetic images to draw for each class.

    Args:
        real_counts: `(K,)` real training images of each of the model's `K` classes.
        class_names: The model's class names, if it has them.
        per_class: A count for every class, or `{class: count}` for some (by name or index).
        balance: Raise every class to the largest class's count.

    Returns:
        `K` counts, one a class (0 for a class that gets none).

    Raises:
        ValueError: If neither or both of `per_class` and `balance` are given, a class is
            unknown, a count is not a positive whole number, or the classes are balanced
            already (`balance=True` would draw nothing).
    """
    num_classes = len(real_counts)
    if (per_class is None) == (not balance):
        raise ValueError(
            "say how many images to draw: per_class=N (or {class: N}), or balance=True"
            " (every class raised to the largest one's count), not both"
        )
    if balance:
        counts = (real_counts.max() - real_counts).tolist()
        if not any(counts):
            raise ValueError(
                f"the classes are balanced already ({int(real_counts[0])} images each):"
                f" balance=True would draw nothing; per_class=N draws N of each"
            )
        return [int(c) for c in counts]
    if isinstance(per_class, Mapping):
        if not per_class:
            raise ValueError("per_class is an empty mapping; name at least one class and its count")
        counts = [0] * num_classes
        for key, value in per_class.items():
            counts[class_index(key, num_classes, class_names)] = check_int(f"per_class[{key!r}]", value)
        return counts
    return [check_int("per_class", per_class)] * num_classes
