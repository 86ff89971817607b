"""What a `ConditionalVAE` is conditioned on: its `Conditions`, and labels made condition rows.

A model with one categorical part (every model given `num_classes`) takes labels as class
indices `(B,)`, as the tutorial's does; a model with several parts takes a table `(B, R)`
(`cvae.conditions`) or values by part name. Either way the backbones see one row of
`conditions.width` numbers per image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from cvae._checks import check_int
from cvae._classes import UNLABELLED, Labels, check_class_names, class_indices
from cvae._condition_values import check_table, table_from_values, warn_outside
from cvae.conditions import Categorical, Conditions, Continuous, MultiLabel

__all__ = ["ConditionMixin", "build_conditions", "describe_values"]


def build_conditions(conditions: Any, num_classes: int, class_names: Any) -> Conditions:
    """The model's `Conditions`: those given, else one categorical part of `num_classes`.

    Raises:
        ValueError: If `conditions` are bad, or given with `class_names` (which they hold).
    """
    if conditions is None:
        num_classes = check_int("num_classes", num_classes)
        return Conditions.single(num_classes, check_class_names(class_names, num_classes))
    schema = conditions if isinstance(conditions, Conditions) else Conditions(conditions)
    first = schema.first_categorical
    # A saved config holds both; they must agree.
    if class_names is not None and (first is None or list(first.class_names or []) != list(class_names)):
        raise ValueError("give class names inside the categorical part of conditions (class_names="
                         " there), not as the model's class_names")
    return schema


class ConditionMixin:
    """The model's conditions, its labels made rows, and the checks of labels against them."""

    _conditions: Conditions

    @property
    def conditions(self) -> Conditions:
        """The parts the model is conditioned on (print it to see them, with their ranges)."""
        return self._conditions

    def condition_rows(self, y: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
        """The rows `(B, conditions.width)` that the encoder and decoder see for labels `y`.

        Args:
            y: For one categorical part, class indices `(B,)` (-1: unset, in a model trained
                with condition dropout) or rows `(B, K)` (one-hot, or soft labels, which
                pass through); for several parts, a table `(B, R)` or values by name.
        """
        if isinstance(y, Mapping):
            y = self._condition_input(y, {})
        if not self._conditions.is_single:
            return self._conditions.rows(y.float()).to(self.dtype)
        if y.dim() == 2:
            return y.to(self.dtype)
        if self.condition_dropout:  # -1 is an unset label: a row of zeros
            return self._eye[y.clamp_min(0)] * (y >= 0)[:, None].to(self.dtype)
        return self._eye[y]

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """One-hot encode a `(B,)` tensor of class indices as `(B, num_classes)`.

        Rows that are already `(B, num_classes)` floats (one-hot, or soft labels between
        classes, as interpolation and ONNX graphs use) pass through. For a model with several
        conditions this is `condition_rows`.
        """
        return self.condition_rows(y)

    def _check_labels(self, y: torch.Tensor, batch: int) -> None:
        # Shapes only: checking the values would make every training step wait for the
        # device; the Trainer checks them once, before training.
        schema = self._conditions
        if schema.is_single and y.shape != (batch,) and y.shape != (batch, self.num_classes):
            raise ValueError(f"labels must be a (B,) tensor of class indices with B = {batch},"
                             f" got shape {tuple(y.shape)}")
        if not schema.is_single and (y.shape != (batch, schema.table_width) or not y.dtype.is_floating_point):
            raise ValueError(f"conditions must be a float table ({batch}, {schema.table_width}) for"
                             f" {', '.join(schema.names)} (or a dict of values by name), got"
                             f" {y.dtype} of shape {tuple(y.shape)}")

    def _zero_labels(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Labels of class 0 (all values 0) for `n` images: `(n,)`, or a `(n, R)` table."""
        if self._conditions.is_single:
            return torch.zeros(n, dtype=torch.long, device=device)
        return torch.zeros(n, self._conditions.table_width, device=device)

    def _labels_to_tensor(self, labels: Labels) -> torch.Tensor:
        """Labels of the model's class (its first categorical part) as `(B,)` class indices.

        Raises:
            TypeError: If a label is not an int, a str or an integer tensor.
            ValueError: If a label is outside `0 .. num_classes - 1` or an unknown name, or
                the model has no categorical condition.
        """
        first = self._conditions.first_categorical
        if first is None:
            raise ValueError(f"this model has no class: its conditions ({', '.join(self._conditions.names)})"
                             f" are given by name, as in sample(n=8, {self._conditions.names[0]}=...)")
        return class_indices(labels, first.num_classes, first.class_names, self.device)

    def _condition_input(self, labels: Any, named: Mapping[str, Any]) -> torch.Tensor:
        """Labels (the model's class, or a dict by name) and values by name as this model's `y`.

        A part left out is unset, which a model trained with `condition_dropout` decodes;
        a continuous value outside the training range warns.

        Raises:
            ValueError: If a part is unknown, given twice, of the wrong kind, or left out of a
                model that was not trained to leave it unset.
        """
        if isinstance(labels, torch.Tensor) and labels.dim() == 2 and not self._conditions.is_single:
            if named:  # a table is every condition already
                raise ValueError(f"give conditions as a table or by name, not both ({', '.join(named)})")
            check_table(self._conditions, labels, "the")
            if torch.isnan(labels).any() and not self.condition_dropout:
                raise ValueError("the table leaves conditions unset (NaN), which this model, trained"
                                 " without condition dropout, has not learned")
            warn_outside(self._conditions, labels)
            return labels.to(self.device)
        values = dict(labels) if isinstance(labels, Mapping) else {}
        if labels is not None and not isinstance(labels, Mapping):
            first = self._conditions.first_categorical
            name = first.name if first is not None else None
            if name is None or name in named:
                self._labels_to_tensor(labels)  # says why there is no class to give
                raise ValueError(f"condition {name!r} is given twice: as labels and by name")
            values[name] = labels
        twice = set(values) & set(named)
        if twice:
            raise ValueError(f"condition {sorted(twice)[0]!r} is given twice")
        values.update(named)
        unset = [name for name in self._conditions.names if name not in values]
        if unset and not self.condition_dropout:
            raise ValueError(f"give every condition ({', '.join(self._conditions.names)}); {', '.join(unset)}"
                             f" left out: this model was trained without condition dropout, so it"
                             f" has not learned to leave a condition unset (train with"
                             f" condition_dropout=0.1)")
        if self._conditions.is_single:
            part = self._conditions[0]
            if part.name not in values:
                return torch.full((1,), UNLABELLED, dtype=torch.long, device=self.device)
            return class_indices(values[part.name], part.num_classes, part.class_names, self.device)
        table = table_from_values(self._conditions, values, device=self.device)
        check_table(self._conditions, table, "the")  # a tag's 0/1 given as a tensor, say
        warn_outside(self._conditions, table)
        return table

    def _check_condition_values(self, labels: torch.Tensor, role: str) -> None:
        """Refuse a data set's conditions that this model cannot take (a table's values)."""
        check_table(self._conditions, labels, role)

    def match_conditions(self, conditions: Conditions | None, class_names: Any,
                         role: str = "training") -> None:
        """Check the data's conditions against the model's; a new model takes what it lacks.

        A model without class names takes the data's (`match_classes`); a model whose
        continuous parts have no statistics takes the training data's.

        Raises:
            ValueError: If the data have other parts, kinds, classes or tags than the model.
        """
        mine = self._conditions
        theirs = conditions if conditions is not None else Conditions.single(max(1, self.num_classes))
        if mine.is_single and theirs.is_single:
            return self.match_classes(class_names, role)  # type: ignore[attr-defined]
        if mine.is_single or theirs.is_single:
            raise ValueError(f"the {role} data are conditioned on {', '.join(theirs.names)}, but the"
                             f" model is conditioned on {', '.join(mine.names)}: give the data the"
                             f" model's conditions (a dict of values by part name), or build the"
                             f" model with ConditionalVAE.from_data(data)")
        for a, b in zip(mine, theirs):
            if a.name != b.name or a.kind != b.kind or _classes(a) != _classes(b):
                raise ValueError(f"the {role} data's condition {b.name!r} ({b.describe()}) is not the"
                                 f" model's {a.name!r} ({a.describe()}): give the parts in the model's"
                                 f" order, with its classes and tags")
        if len(mine) != len(theirs):
            raise ValueError(f"the {role} data have the conditions {theirs.names}, the model {mine.names}")
        if not mine.fitted:
            if role != "training":
                raise ValueError("the model's continuous conditions have no statistics yet: train it first")
            fitted = Conditions([b if isinstance(a, Continuous) and not a.fitted else a
                                 for a, b in zip(mine, theirs)])
            self._conditions = fitted
            self.register_to_config(conditions=fitted.to_json())  # type: ignore[attr-defined]


def _classes(part: Any) -> Any:
    """What must agree between a model's part and the data's: its classes or tags."""
    if isinstance(part, Categorical):
        return part.num_classes, part.class_names
    return part.tags if isinstance(part, MultiLabel) else None


def describe_values(conditions: Conditions, table: torch.Tensor) -> str:
    """One row of a table in words, `digit=7, thickness=2.5` (unset parts left out)."""
    words = []
    for part in conditions:
        column = table[conditions.columns(part.name)].tolist()
        if any(v != v for v in column):
            continue
        if isinstance(part, Categorical):
            value = part.class_names[int(column[0])] if part.class_names else int(column[0])
        elif isinstance(part, MultiLabel):
            value = "+".join(t for t, v in zip(part.tags, column) if v) or "none"
        else:
            value = f"{column[0]:g}"
        words.append(f"{part.name}={value}")
    return ", ".join(words) or "unset"

