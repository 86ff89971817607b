"""A model's conditions: named parts, each a class, a set of tags, or a real value.

A conditional VAE sees its condition beside the image (encoder) and the latent code
(decoder) as one row of numbers. Each part of the condition gives its own columns of that
row:

- `Categorical`: one of K classes, as a one-hot code (K columns);
- `MultiLabel`: any subset of K tags, as a multi-hot code and a "known" flag (K + 1);
- `Continuous`: a real value, standardised by the mean and standard deviation of the
  training data (saved with the model), and a "known" flag (2).

A part that is unset (a missing value in the data, a part that training dropped, a part
that a sampling call leaves out) is zeros in all of its columns; the flag tells a known
zero (no tags, a value at the mean) from an unset one, and the network's weights on the
columns of an unset part are the learned "unknown" input.

Data carry their conditions as a *table*: a float tensor `(N, R)` with one column per
categorical or continuous part (the class index, or the raw value) and one per tag of a
multi-label part (0 or 1), NaN where a value is missing. A model with one categorical part
(every model before conditions had names) takes its labels as a `(N,)` tensor of class
indices, as before.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from cvae._checks import names_list, short
from cvae._classes import check_class_names

__all__ = ["Categorical", "Conditions", "Continuous", "MultiLabel", "Part"]

# Categorical indices are held as float32 in a table, which counts whole numbers exactly to 2**24.
_MAX_CLASSES = 2**24


def _count(name: str, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"condition {name!r}: {what} must be a whole number of at least 1,"
                         f" got {short(value)}")
    return value


@dataclass(frozen=True)
class Categorical:
    """One of `num_classes` classes, optionally named (`class_names`, in index order).

    Args:
        name: The part's name, as `sample(digit=7)` and `config.json` use it.
        num_classes: How many classes.
        class_names: Their names, or `None` (then classes are given by index).
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...] | None = None
    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        _count(self.name, self.num_classes, "num_classes")
        names = check_class_names(self.class_names, self.num_classes)
        object.__setattr__(self, "class_names", tuple(names) if names is not None else None)

    @property
    def table_width(self) -> int:
        """Columns in a table: the class index."""
        return 1

    @property
    def width(self) -> int:
        """Columns in the model's condition row: the one-hot code."""
        return self.num_classes

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """One-hot rows `(B, K)` for table columns `(B, 1)`; zeros where the value is NaN."""
        known = ~torch.isnan(values)
        index = torch.where(known, values, 0).long().clamp(0, self.num_classes - 1)[:, 0]
        return F.one_hot(index, self.num_classes).to(values.dtype) * known

    def describe(self) -> str:
        """The part in words, for tables and messages."""
        names = f": {names_list(self.class_names)}" if self.class_names else ""
        return f"categorical, {self.num_classes} classes{names}"

    def to_json(self) -> dict[str, Any]:
        """The part as `config.json` holds it."""
        return {"name": self.name, "kind": self.kind, "num_classes": self.num_classes,
                "class_names": list(self.class_names) if self.class_names else None}


@dataclass(frozen=True)
class MultiLabel:
    """Any subset of named tags: a multi-hot code.

    Args:
        name: The part's name.
        tags: The tags' names, in column order.
    """

    name: str
    tags: tuple[str, ...]
    kind: ClassVar[str] = "multi-label"

    def __post_init__(self) -> None:
        if not isinstance(self.tags, (list, tuple)) or not self.tags:
            raise ValueError(f"condition {self.name!r}: tags must be a list of tag names, got"
                             f" {short(self.tags)}")
        names = check_class_names(list(self.tags), len(self.tags))
        object.__setattr__(self, "tags", tuple(names or ()))

    @property
    def table_width(self) -> int:
        """Columns in a table: one per tag, 0 or 1."""
        return len(self.tags)

    @property
    def width(self) -> int:
        """Columns in the model's condition row: the tags and the known flag."""
        return len(self.tags) + 1

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """Multi-hot rows and a known flag, `(B, K + 1)`; zeros where any tag is NaN."""
        known = ~torch.isnan(values).any(1, keepdim=True)
        return torch.cat([torch.where(known, values, 0), known.to(values.dtype)], 1)

    def describe(self) -> str:
        """The part in words."""
        return f"multi-label, {len(self.tags)} tags: {names_list(self.tags)}"

    def to_json(self) -> dict[str, Any]:
        """The part as `config.json` holds it."""
        return {"name": self.name, "kind": self.kind, "tags": list(self.tags)}


@dataclass(frozen=True)
class Continuous:
    """A real value, standardised with the training data's mean and standard deviation.

    Args:
        name: The part's name.
        mean: The training values' mean; `None` until the model has seen training data.
        std: Their standard deviation (1 where they are all equal).
        low: The smallest training value: sampling outside `[low, high]` warns.
        high: The largest.
    """

    name: str
    mean: float | None = None
    std: float | None = None
    low: float | None = None
    high: float | None = None
    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        stats = (self.mean, self.std, self.low, self.high)
        if any(v is not None for v in stats) and not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in stats):
            raise ValueError(f"condition {self.name!r}: mean, std, low and high must be finite"
                             f" numbers, all four or none, got {short(stats)}")
        if self.std is not None and self.std <= 0:
            raise ValueError(f"condition {self.name!r}: std must be above 0, got {self.std}")

    @property
    def table_width(self) -> int:
        """Columns in a table: the raw value."""
        return 1

    @property
    def width(self) -> int:
        """Columns in the model's condition row: the standardised value and the known flag."""
        return 2

    @property
    def fitted(self) -> bool:
        """Whether the part has its training statistics."""
        return self.mean is not None

    def fit(self, values: torch.Tensor) -> Continuous:
        """This part with the statistics of `values` `(N, 1)` (NaN left out)."""
        known = values[~torch.isnan(values)].double()
        if not len(known):
            raise ValueError(f"condition {self.name!r} has no known value in the training data")
        std = known.std().item() if len(known) > 1 else 0.0
        return replace(self, mean=known.mean().item(), std=std if std > 0 else 1.0,
                       low=known.min().item(), high=known.max().item())

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """The standardised value and a known flag, `(B, 2)`; zeros where the value is NaN."""
        if not self.fitted:
            raise ValueError(f"condition {self.name!r} has no training statistics yet: train the"
                             f" model (the Trainer takes them from the training data) or build it"
                             f" with ConditionalVAE.from_data")
        known = ~torch.isnan(values)
        scaled = (values - self.mean) / self.std
        return torch.cat([torch.where(known, scaled, 0), known.to(values.dtype)], 1)

    def describe(self) -> str:
        """The part in words, with the training range."""
        if not self.fitted:
            return "continuous (statistics not yet taken)"
        return (f"continuous, mean {self.mean:.4g}, sd {self.std:.4g},"
                f" trained on {self.low:.4g} to {self.high:.4g}")

    def to_json(self) -> dict[str, Any]:
        """The part as `config.json` holds it."""
        return {"name": self.name, "kind": self.kind, "mean": self.mean, "std": self.std,
                "low": self.low, "high": self.high}


#: One part of a condition.
Part = Categorical | MultiLabel | Continuous
_KINDS: dict[str, type[Part]] = {cls.kind: cls for cls in (Categorical, MultiLabel, Continuous)}
# Names a part cannot take: `sample`'s own arguments, which `sample(name=value)` would shadow.
_RESERVED = frozenset({"labels", "n", "temperature", "generator", "batch_size", "mixed_precision",
                       "sharpness", "guidance", "prior", "self"})


def _part(spec: Any) -> Part:
    """A part from itself or from its JSON form (`{"name": ..., "kind": ..., ...}`)."""
    if isinstance(spec, (Categorical, MultiLabel, Continuous)):
        return spec
    named = isinstance(spec, Mapping) and isinstance(spec.get("name"), str)
    if not named or spec.get("kind") not in _KINDS:
        raise ValueError(f"a condition part is a dict with a 'name' and a 'kind' (one of"
                         f" {', '.join(_KINDS)}), got {short(spec)}")
    settings = {key: value for key, value in spec.items() if key != "kind"}
    try:
        return _KINDS[spec["kind"]](**settings)
    except TypeError:
        raise ValueError(f"condition {spec['name']!r} ({spec['kind']}) takes only the settings"
                         f" {[f for f in _KINDS[spec['kind']].__dataclass_fields__ if f != 'kind']},"
                         f" got {sorted(settings)}") from None


class Conditions(Sequence[Part]):
    """The named parts a model is conditioned on, in order: the model's condition schema.

    Args:
        parts: `Categorical`, `MultiLabel` and `Continuous` parts, or their JSON forms.

    Raises:
        ValueError: If there are no parts, a name is empty, repeated or one of `sample`'s
            own arguments, or a part's settings are bad.

    Example:
        ```python
        Conditions([Categorical("digit", 10), Continuous("thickness")])
        ```
    """

    def __init__(self, parts: Sequence[Part | Mapping[str, Any]]):
        if isinstance(parts, (str, bytes, Mapping)) or not isinstance(parts, Sequence) or not parts:
            raise ValueError(f"conditions must be a list of parts (at least one), got {short(parts)}")
        self.parts: tuple[Part, ...] = tuple(_part(spec) for spec in parts)
        names = [part.name for part in self.parts]
        for name in names:
            if not name.strip() or name in _RESERVED or names.count(name) > 1:
                raise ValueError(f"condition names must be distinct, not empty, and none of"
                                 f" {sorted(_RESERVED)} (sample's arguments), got {names}")
        self.names = names
        big = [p.name for p in self.parts if isinstance(p, Categorical) and p.num_classes > _MAX_CLASSES]
        if big and len(self.parts) > 1:
            raise ValueError(f"condition {big[0]!r} has more than {_MAX_CLASSES:,} classes, more than a"
                             f" table of several conditions holds exactly")
        starts = [0, *itertools.accumulate(p.table_width for p in self.parts)]
        self._columns = {p.name: slice(a, b) for p, a, b in zip(self.parts, starts, starts[1:])}

    @classmethod
    def single(cls, num_classes: int, class_names: Sequence[str] | None = None,
               name: str = "label") -> Conditions:
        """One categorical part: the condition of a model given `num_classes`."""
        return cls([Categorical(name, num_classes, tuple(class_names) if class_names else None)])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, str):
            return self.part(index)
        return self.parts[index]

    def __len__(self) -> int:
        return len(self.parts)

    def __iter__(self) -> Iterator[Part]:
        return iter(self.parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conditions) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def __repr__(self) -> str:
        width = max(len(name) for name in self.names)
        lines = [f"  {p.name:<{width}}  {p.describe()}" for p in self.parts]
        return "Conditions(\n" + "\n".join(lines) + "\n)"

    def part(self, name: str) -> Part:
        """The part called `name`.

        Raises:
            KeyError: If there is none; the message lists the parts.
        """
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(f"this model has no condition {name!r}; its conditions are {', '.join(self.names)}")

    @property
    def is_single(self) -> bool:
        """Whether there is one categorical part: labels are then `(N,)` class indices."""
        return len(self.parts) == 1 and isinstance(self.parts[0], Categorical)

    @property
    def width(self) -> int:
        """Columns of the model's condition row (what the backbones take as `num_classes`)."""
        return sum(part.width for part in self.parts)

    @property
    def table_width(self) -> int:
        """Columns of a table of these conditions."""
        return sum(part.table_width for part in self.parts)

    @property
    def first_categorical(self) -> Categorical | None:
        """The first categorical part, the model's "class" (`sample(7)`, per-class tools)."""
        return next((p for p in self.parts if isinstance(p, Categorical)), None)

    @property
    def fitted(self) -> bool:
        """Whether every continuous part has its training statistics."""
        return all(p.fitted for p in self.parts if isinstance(p, Continuous))

    def columns(self, name: str) -> slice:
        """The table columns of the part `name`."""
        return self._columns[self.part(name).name]

    def row_parts(self) -> list[int]:
        """For each column of the condition row, the index of its part (for dropout masks)."""
        return [i for i, part in enumerate(self.parts) for _ in range(part.width)]

    def rows(self, table: torch.Tensor) -> torch.Tensor:
        """The model's condition rows `(B, width)` for a table `(B, table_width)`."""
        return torch.cat([p.encode(table[:, self._columns[p.name]]) for p in self.parts], 1)

    def fit(self, table: torch.Tensor) -> Conditions:
        """These conditions with every continuous part's statistics taken from `table`."""
        return Conditions([p.fit(table[:, self._columns[p.name]]) if isinstance(p, Continuous) else p
                           for p in self.parts])

    def to_json(self) -> list[dict[str, Any]]:
        """The parts as `config.json` holds them."""
        return [part.to_json() for part in self.parts]
