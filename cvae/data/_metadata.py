"""Folders of images: class sub-folders, or a metadata file that gives each image its conditions.

The metadata file follows Hugging Face `imagefolder`'s convention: `metadata.csv` or
`metadata.jsonl` at the folder's root, one row per image, a `file_name` column with the
image's path relative to the folder, and one column per condition. Which columns are
conditions is said (`conditions=`), else every other column is; each column's kind is
said (`"thickness:continuous"`, a `Conditions`) or inferred from its values and logged:

- text: categorical, the classes its distinct values, sorted;
- whole numbers from 0, at most `MAX_INFERRED_CLASSES` distinct: categorical, classes
  0 to the largest (named by number);
- other numbers: continuous;
- lists (JSON lines): multi-label, the tags its distinct items, sorted. In a CSV file, a
  multi-label column is said as such, its tags separated by `;`.

A blank cell (or `null`) is a missing value: the model learns that part unset there.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cvae._checks import expand_path, names_list, parse_json, short
from cvae._files import read_regular
from cvae.conditions import Categorical, Conditions, Continuous, MultiLabel, Part
from cvae.data._folders import IMAGE_EXTENSIONS, load_class_folders, read_files
from cvae.data._labelled import LabelledImages

__all__ = ["METADATA_NAMES", "MAX_INFERRED_CLASSES", "load_image_folder", "read_metadata"]

logger = logging.getLogger("cvae.data")

METADATA_NAMES = ("metadata.csv", "metadata.jsonl")
MAX_INFERRED_CLASSES = 32  # whole numbers with more distinct values than this are read as continuous
_KINDS = ("categorical", "multi-label", "continuous")
_METADATA_LIMIT = 1 << 30  # a metadata file is read whole: one of a gigabyte is refused, not read


def load_image_folder(path: str | os.PathLike[str], image_size: Sequence[int] | None = None,
                      channels: int | None = None, unlabelled: str | None = None,
                      conditions: Conditions | Sequence[str] | None = None) -> LabelledImages:
    """Load a folder of images, as in-memory tensors in [0, 1], with their labels or conditions.

    Two layouts. Class folders, as `torchvision.datasets.ImageFolder`: `path/<class>/<image>`;
    class indices follow the sorted folder names (as in torchvision and Hugging Face's
    `imagefolder`), which become the class names. Or a metadata file at the root
    (`metadata.csv` or `metadata.jsonl`, Hugging Face's `imagefolder` convention: a
    `file_name` column and one column per condition, see the module's notes), which gives
    each image several conditions (`cvae.conditions`).

    Args:
        path: The folder.
        image_size: `(H, W)` to resize every image to; by default all images must already
            have one size.
        channels: 1 (grey) or 3 (RGB); by default grey if every image is grey, RGB if
            every image has colour; a folder that mixes them is refused, naming files of
            each kind.
        unlabelled: Class folders only: a sub-folder whose images have no label, labelled -1
            (`cvae.data.UNLABELLED`), for a semi-supervised model.
        conditions: Metadata only: the columns that are conditions, in order, each
            optionally with its kind (`["digit", "thickness:continuous"]`), or a model's
            `Conditions` (its classes and tags: what a test set is read with); default:
            every column, kinds inferred.

    Returns:
        A `LabelledImages`.

    Raises:
        FileNotFoundError: If the folder, its class folders, or an image the metadata names
            are missing.
        ValueError: If a file is not an image, the images mix grey and colour with no
            `channels` or differ in size with no `image_size`, or the metadata are bad (no
            `file_name` column, an image it does not name, a value not of its column's kind):
            the message names the row or file.
    """
    folder = expand_path(path, "the image folder")
    found = [folder / name for name in METADATA_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        raise ValueError(f"{folder} holds both {METADATA_NAMES[0]} and {METADATA_NAMES[1]}: keep one")
    if not found:
        if conditions is not None:
            raise FileNotFoundError(f"conditions are read from a metadata file"
                                    f" ({' or '.join(METADATA_NAMES)}) with a file_name column,"
                                    f" and {folder} has none")
        return load_class_folders(folder, image_size, channels, unlabelled)
    if unlabelled is not None:
        raise ValueError("unlabelled names a class folder; with a metadata file, leave an image's"
                         " cells blank instead (its conditions are then unset)")
    rows = read_metadata(found[0])
    paths = _image_paths(folder, found[0].name, rows)
    schema, values = _conditions(rows, conditions, found[0].name)
    data = LabelledImages(read_files(folder, paths, channels, image_size), values, conditions=schema)
    logger.info(f"cvae: {len(rows):,} images from {found[0].name}, conditioned on {data.conditions}")
    return data


def read_metadata(path: Path) -> list[dict[str, Any]]:
    """The rows of a metadata file, as dicts; blank CSV cells and JSON nulls are `None`.

    Raises:
        ValueError: If it is not UTF-8 CSV or JSON lines of objects, or has no `file_name`.
    """
    text = read_regular(path, limit=_METADATA_LIMIT, too_large=f"{path.name} is over 1 GB").decode(
        "utf-8-sig", errors="replace")
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = [{key: (value if value and value.strip() else None) for key, value in row.items()}
                for row in reader]
        columns = reader.fieldnames or []
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                row = parse_json(line, f"line {number} of {path.name}")
                if not isinstance(row, dict):
                    raise ValueError(f"line {number} of {path.name} is not a JSON object, {short(row)}")
                rows.append(row)
        columns = list(dict.fromkeys(key for row in rows for key in row))
    if "file_name" not in columns:
        raise ValueError(f"{path.name} has no file_name column (the image's path in the folder);"
                         f" its columns are {names_list(columns)}")
    if not rows:
        raise ValueError(f"{path.name} names no images")
    return rows


def _image_paths(folder: Path, metadata: str, rows: list[dict[str, Any]]) -> list[Path]:
    """Each row's image, checked: inside the folder, there, named once; no image left unnamed."""
    paths, seen = [], {}
    for index, row in enumerate(rows):
        name, where = row.get("file_name"), _where(metadata, index)
        if not isinstance(name, str) or os.path.isabs(name) or ".." in Path(name).parts:
            raise ValueError(f"{where}: file_name must be a path inside the folder, got {short(name)}")
        key = unicodedata.normalize("NFC", str(Path(name)))
        if key in seen:
            raise ValueError(f"{where} names {name!r} again (first at {seen[key]})")
        seen[key] = where
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{where} names {name!r}, which is not a file in {folder}")
        paths.append(folder / name)
    for p in sorted(folder.rglob("*")):
        rel = unicodedata.normalize("NFC", str(p.relative_to(folder)))
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and rel not in seen:
            raise ValueError(f"the image {rel} in {folder} has no row in {metadata}: add its row, or"
                             f" move the image out of the folder")
    return paths


def _conditions(rows: list[dict[str, Any]], asked: Any, metadata: str) -> tuple[Conditions, dict[str, list]]:
    """The schema and each condition column's values, for the columns asked (or all but file_name)."""
    columns = list(dict.fromkeys(key for row in rows for key in row if key != "file_name"))
    if isinstance(asked, Conditions):
        specs = [(part.name, part) for part in asked]
    else:
        specs = [_spec(item, metadata) for item in (asked if asked is not None else columns)]
    missing = [name for name, _ in specs if name not in columns]
    if missing:
        raise ValueError(f"{metadata} has no column {missing[0]!r}; its columns are"
                         f" {names_list(columns, 20)}")
    if not specs:
        raise ValueError(f"{metadata} has no column besides file_name: add one per condition")
    parts, values = [], {}
    for name, kind in specs:
        cells = [row.get(name) for row in rows]
        part = kind if not isinstance(kind, (str, type(None))) else _infer(name, cells, kind, metadata)
        parts.append(part)
        values[name] = [_cell(part, cell, _where(metadata, i)) for i, cell in enumerate(cells)]
    return Conditions(parts), values


def _where(metadata: str, index: int) -> str:
    """Row `index` (from 0) of a metadata file in words: CSV rows count the header line."""
    if metadata.endswith(".csv"):
        return f"row {index + 2} of {metadata}"
    return f"line {index + 1} of {metadata}"


def _spec(item: Any, metadata: str) -> tuple[str, str | None]:
    if not isinstance(item, str):
        raise ValueError(f"conditions are column names of {metadata} (optionally name:kind),"
                         f" got {short(item)}")
    name, _, kind = item.partition(":")
    if kind and kind not in _KINDS:
        raise ValueError(f"condition {name!r}: the kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    return name, kind or None


def _number(cell: Any) -> float | None:
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return float(cell)
    try:
        return float(cell) if isinstance(cell, str) else None
    except ValueError:
        return None


def _infer(name: str, cells: list[Any], kind: str | None, metadata: str) -> Part:
    """The part a column's cells make: said by `kind`, else inferred (see the module's notes)."""
    known = [c for c in cells if c is not None]
    if kind == "multi-label" or (kind is None and any(isinstance(c, list) for c in known)):
        tags = sorted({str(t) for c in known for t in _tags(c)})
        return MultiLabel(name, tuple(tags))
    numbers = [_number(c) for c in known]
    if kind == "continuous" or (kind is None and known and all(v is not None for v in numbers)):
        whole = all(v is not None and v.is_integer() and 0 <= v for v in numbers)
        if kind is None and whole and len(set(numbers)) <= MAX_INFERRED_CLASSES:
            top = int(max(numbers))  # type: ignore[type-var]
            return Categorical(name, top + 1, tuple(str(i) for i in range(top + 1)))
        return Continuous(name)
    if kind is None and sum(v is not None for v in numbers) > len(known) / 2:
        text = next(c for c, v in zip(known, numbers) if v is None)
        raise ValueError(f"column {name!r} holds numbers and text ({text!r} at"
                         f" {_where(metadata, cells.index(text))}): correct the cell, or say the column"
                         f" is categorical ({name}:categorical)")
    names = sorted({unicodedata.normalize("NFC", str(c)) for c in known})
    return Categorical(name, max(1, len(names)), tuple(names) if names else None)


def _tags(cell: Any) -> list[Any]:
    return cell if isinstance(cell, list) else [t.strip() for t in str(cell).split(";") if t.strip()]


def _cell(part: Part, cell: Any, where: str) -> Any:
    """One cell as the value its part takes (`None`: missing), or refused naming the row."""
    if cell is None:
        return None if not isinstance(part, Continuous) else math.nan
    if isinstance(part, MultiLabel):
        return [str(t) for t in _tags(cell)]
    if isinstance(part, Continuous):
        value = _number(cell)
        if value is None or math.isinf(value):
            raise ValueError(f"condition {part.name!r} is continuous, but {where} holds {short(cell)}:"
                             f" give a number, or leave the cell blank (missing)")
        return value
    return unicodedata.normalize("NFC", str(cell)) if part.class_names else cell

