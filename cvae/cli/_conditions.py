"""`--condition NAME=VALUE` on the command line: values read by their part's kind, and named back."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["condition_values", "described"]


def condition_values(pairs: list[str] | None, model: ConditionalVAE) -> dict[str, Any]:
    """`NAME=VALUE` pairs as values by part name, each read by its part's kind.

    A number for a continuous part, a list of tags (separated by commas) for a multi-label
    one, the text (a class name or index) for a categorical one.

    Raises:
        ValueError: If a pair has no `=`, names no part of the model, is given twice, or a
            continuous value is not a finite number.
    """
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--condition takes NAME=VALUE, such as thickness=2.5, got {pair!r}")
        if name not in model.conditions.names:
            raise ValueError(f"--condition {pair}: the model has no condition {name!r}; its conditions"
                             f" are {', '.join(model.conditions.names)}")
        if name in values:
            raise ValueError(f"--condition {name} is given twice")
        kind = model.conditions[name].kind
        if kind == "continuous":
            try:
                value: Any = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(f"--condition {pair}: {name!r} is continuous; give a finite number")
        elif kind == "multi-label":
            value = [tag.strip() for tag in text.split(",") if tag.strip()]
        else:
            value = text
        values[name] = value
    return values


def described(model: ConditionalVAE, y: torch.Tensor) -> tuple[str, str]:
    """The first row of `y` (a model's labels or table) in words, and as a file-name stem."""
    from cvae._classes import describe
    from cvae.models._conditioning import describe_values

    if model.conditions.is_single:
        index = int(y[0])
        if index < 0:
            return "any class", "unset"
        name = model.class_names[index] if model.class_names else str(index)
        return describe(index, model.class_names), re.sub(r"[^\w.-]+", "-", name).strip("-.") or str(index)
    words = describe_values(model.conditions, y[0].cpu())
    return words, re.sub(r"[^\w.=-]+", "-", words.replace(", ", "_")).strip("-.") or "unset"
