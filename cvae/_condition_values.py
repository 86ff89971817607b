"""Condition values as users give them (by name, one or a batch), checked and made a table.

Two callers: sampling (`model.sample(digit=7, thickness=2.5)`, `transfer(..., to=...)`),
where a part left out is unset and a value of the wrong kind is refused; and data
(`(images, {"digit": ..., "thickness": ...})`), where a missing value (NaN, -1, `None`)
is unset too. Either way the result is a table (`cvae.conditions`), NaN where unset.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from cvae._checks import names_list, short
from cvae._classes import class_index
from cvae.conditions import Categorical, Conditions, Continuous, MultiLabel, Part

__all__ = ["check_table", "infer_conditions", "table_from_values"]


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_list(value: Any) -> list[Any] | None:
    """A batch of values as a list, or None for one value (a scalar, a string, a 0-d tensor)."""
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        value = torch.as_tensor(value)
        return None if value.dim() == 0 else value.tolist()
    return list(value) if isinstance(value, (list, tuple)) else None


def _categorical(part: Categorical, value: Any, data: bool) -> list[float]:
    items = _as_list(value)
    out = []
    for item in [value] if items is None else items:
        if data and (item is None or (_is_number(item) and (math.isnan(item) or item == -1))):
            out.append(math.nan)  # a missing class
            continue
        if _is_number(item) and not isinstance(item, numbers.Integral) and float(item).is_integer():
            item = int(item)  # a table's float column, 3.0
        try:
            out.append(float(class_index(item, part.num_classes, part.class_names)))
        except (TypeError, ValueError) as err:
            raise ValueError(f"condition {part.name!r} is categorical: {err}") from None
    return out


def _tag_row(part: MultiLabel, tags: Any) -> list[float]:
    """One multi-hot row from a list of tags, by name or index."""
    if not isinstance(tags, (list, tuple)):
        raise ValueError(f"condition {part.name!r} is multi-label: give a list of its tags"
                         f" ({names_list(part.tags)}) per image, got {short(tags)}")
    row = [0.0] * len(part.tags)
    for tag in tags:
        try:
            row[class_index(tag, len(part.tags), part.tags)] = 1.0
        except (TypeError, ValueError):
            raise ValueError(f"condition {part.name!r} has no tag {tag!r}; its tags are"
                             f" {names_list(part.tags, 20)}") from None
    return row


def _multi_label(part: MultiLabel, value: Any, data: bool) -> list[list[float]]:
    """Rows for a list of tags, a list of such lists, or a tensor of 0/1 rows `(K,)` or `(B, K)`."""
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        rows = torch.as_tensor(value, dtype=torch.float32)
        rows = rows[None] if rows.dim() == 1 else rows
        if rows.dim() != 2 or rows.shape[1] != len(part.tags):
            raise ValueError(f"condition {part.name!r} is multi-label: a tensor of it holds one 0/1"
                             f" column per tag, ({len(part.tags)},) or (B, {len(part.tags)}), got shape"
                             f" {tuple(rows.shape)}")
        return rows.tolist()  # values other than 0 and 1 are refused by check_table
    rows = value if isinstance(value, (list, tuple)) and value and all(
        isinstance(v, (list, tuple)) or v is None for v in value) else [value]
    return [[math.nan] * len(part.tags) if data and row is None else _tag_row(part, row) for row in rows]


def _continuous(part: Continuous, value: Any, data: bool) -> list[float]:
    items = _as_list(value)
    out = []
    for item in [value] if items is None else items:
        if data and item is None:
            item = math.nan
        if not _is_number(item) or math.isinf(item) or (math.isnan(item) and not data):
            raise ValueError(f"condition {part.name!r} is continuous: give a finite number (or a list"
                             f" of them), got {short(item)}")
        out.append(float(item))
    return out


def _column(part: Part, value: Any, data: bool) -> list[list[float]]:
    if isinstance(part, MultiLabel):
        return _multi_label(part, value, data)
    values = (_categorical if isinstance(part, Categorical) else _continuous)(part, value, data)  # type: ignore[operator]
    return [[v] for v in values]


def table_from_values(conditions: Conditions, values: Mapping[str, Any], *, data: bool = False,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """A table `(B, table_width)` for values given by part name; parts left out are NaN.

    Each part takes one value or a batch (a list or tensor); parts with one value are
    repeated to the batch's length.

    Args:
        conditions: The schema.
        values: Part name -> a value or a batch of values.
        data: Values of a data set: NaN, -1 (a categorical part) and `None` are missing.
        device: Where to put the table.

    Raises:
        ValueError: If a name is not a part, a value is not of its part's kind (a class, a
            list of known tags, a finite number), or batches differ in length.
    """
    unknown = [name for name in values if name not in conditions.names]
    if unknown:
        raise ValueError(f"this model has no condition {unknown[0]!r}; its conditions are"
                         f" {', '.join(conditions.names)}")
    columns = {name: _column(conditions.part(name), value, data) for name, value in values.items()}
    lengths = {name: len(rows) for name, rows in columns.items() if len(rows) != 1}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the conditions give batches of different lengths: {lengths}; give each"
                         f" part one value or the same number of values")
    batch = next(iter(lengths.values()), 1)
    table = torch.full((batch, conditions.table_width), math.nan)
    for name, rows in columns.items():
        table[:, conditions.columns(name)] = torch.tensor(rows, dtype=table.dtype)
    return table.to(device)


def warn_outside(conditions: Conditions, table: torch.Tensor, stacklevel: int = 5) -> None:
    """Warn, once per part, of continuous values outside the range the model was trained on.

    `stacklevel` points the warning at the user's call (through `sample` and the
    `inference_mode` wrapper, by default).
    """
    for part in conditions:
        if isinstance(part, Continuous) and part.fitted:
            column = table[:, conditions.columns(part.name)]
            outside = column[(column < part.low) | (column > part.high)]
            if len(outside):
                warnings.warn(f"condition {part.name!r} = {outside[0].item():g} is outside the range the"
                              f" model was trained on, {part.low:g} to {part.high:g}: expect less"
                              f" faithful images", UserWarning, stacklevel=stacklevel)


def check_table(conditions: Conditions, table: torch.Tensor, role: str = "the") -> None:
    """Refuse a data table whose values are not of their parts' kinds, naming part and row.

    Raises:
        ValueError: If the table's shape is not the schema's, or a categorical value is not a
            class index, a tag not 0 or 1, a continuous value infinite.
    """
    if table.dim() != 2 or table.shape[1] != conditions.table_width or not table.dtype.is_floating_point:
        raise ValueError(f"{role} conditions must be a float table (N, {conditions.table_width}) for"
                         f" {', '.join(conditions.names)}, got {table.dtype} of shape {tuple(table.shape)}")
    for part in conditions:
        column = table[:, conditions.columns(part.name)]
        known = column.nan_to_num(0)
        if isinstance(part, Categorical):
            bad = (known != known.round()) | (known < 0) | (known >= part.num_classes)
            what = f"a class index 0..{part.num_classes - 1}"
        elif isinstance(part, MultiLabel):
            bad = (known != 0) & (known != 1)
            what = "0 or 1 for each tag"
        else:
            bad = torch.isinf(column)
            what = "a finite number"
        rows = bad.any(1).nonzero().flatten()
        if len(rows):
            i = int(rows[0])
            raise ValueError(f"{role} condition {part.name!r} at row {i} is"
                             f" {short(column[i].tolist())}, but it must be {what} (NaN: missing)")


def infer_conditions(values: Mapping[str, Any]) -> Conditions:
    """A schema for data given as part name -> tensor, from each tensor's kind.

    Integer tensors `(N,)` are categorical (classes 0 to the largest; -1 is missing), float
    tensors `(N,)` continuous (NaN is missing), and bool or 0/1 tensors `(N, K)` multi-label
    with tags named `"0"` .. `"K-1"`. Give `conditions=` to say otherwise (class names, tag
    names, a whole-numbered value that is continuous).

    Raises:
        ValueError: If a value is not a tensor or array of one of these kinds.
    """
    parts: list[Part] = []
    for name, value in values.items():
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"condition {name!r}: give a tensor or array of values per image, got"
                             f" {type(value).__name__}") from None
        if tensor.dim() == 2:
            parts.append(MultiLabel(name, tuple(str(i) for i in range(tensor.shape[1]))))
        elif tensor.dim() == 1 and tensor.dtype.is_floating_point:
            parts.append(Continuous(name))
        elif tensor.dim() == 1 and not tensor.dtype.is_complex and tensor.dtype != torch.bool and len(tensor):
            parts.append(Categorical(name, max(1, int(tensor.max()) + 1)))
        else:
            raise ValueError(f"condition {name!r}: an integer tensor (N,) is categorical, a float"
                             f" tensor (N,) continuous, a 0/1 tensor (N, K) multi-label; got"
                             f" {tensor.dtype} of shape {tuple(tensor.shape)}")
    return Conditions(parts)
