"""Checks of what users pass, and the one-line messages that refuse it.

Every public entry point checks its arguments with these before any work, and says what
was wrong and what is accepted.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: messages echo what was given, not all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def one_line(text: object) -> str:
    """`text` on one line: its lines joined by spaces, so that no advice after a newline is lost.

    Messages are shown one line each (the `cvae` command's errors, the Trainer's warnings);
    cutting at the first newline dropped what came after it, often the fix (torch's
    `BackendCompilerFailed` says only `backend='inductor' raised:` on its first line).
    """
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def expand_path(path: str | os.PathLike[str], what: str = "the path") -> Path:
    """`path` as a `Path`, with a leading `~` or `~user` expanded.

    Raises:
        ValueError: If it is empty, or names the home folder of a user this system does
            not know (`~nosuchuser/model`).
    """
    text = os.fsdecode(path)
    if not text.strip():
        raise ValueError(f"{what} is empty: give a file or folder name")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory."
        head = text.split("/", 1)[0]
        raise ValueError(f"{what} {short(text, 200)} starts with {head}, but no home folder is"
                         f" known for {'the user' if head == '~' else 'user ' + repr(head[1:])};"
                         f" give the folder's full path") from None


def parse_json(data: str | bytes, where: str) -> Any:
    """`data` read as JSON, or one line that says why it is not (`where` names the source).

    Raises:
        ValueError: If it is not JSON, not UTF-8, or nested deeper than Python's parser goes
            (a `RecursionError` otherwise, with no word of the file).
    """
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where} is not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{where} is not JSON that cvae reads: it is nested too deep (arrays or"
                         f" objects within each other, thousands of levels)") from None


def names_list(names: Sequence[Any], at_most: int = 5) -> str:
    """The first `at_most` of `names`, and how many more: an error names a few, not thousands."""
    shown = ", ".join(short(name) for name in list(names)[:at_most])
    more = len(names) - at_most
    return f"{shown} and {more:,} more" if more > 0 else shown


def check_images(images: Any, image_shape: Sequence[int] | None = None, what: str = "images",
                 batch: str = "B") -> None:
    """Refuse images that are not `(batch, C, H, W)`, or not `(batch, *image_shape)` if given.

    The message suggests the fix for the common mix-ups: one image without its batch axis
    `(C, H, W)`, grey images without their channel axis `(N, H, W)`, and channels last
    `(N, H, W, C)` as numpy and PIL hold them.

    Raises:
        ValueError: If the shape is wrong.
    """
    shape = tuple(images.shape)
    fits = len(shape) == 4 and (image_shape is None or shape[1:] == tuple(image_shape))
    if fits:
        return
    wanted = f"({batch}, {', '.join(map(str, image_shape))}) for this model" if image_shape else (
        f"({batch}, C, H, W)")
    # What the images would be with a channel axis added, or moved first: do they fit then?
    grey = (1, *shape[1:]) if len(shape) == 3 else None
    first = (shape[3], *shape[1:3]) if len(shape) == 4 and shape[1] not in (1, 3) else None
    hint = ""
    if len(shape) == 3 and shape[0] in (1, 3) and (image_shape is None or shape == tuple(image_shape)):
        hint = f"; for one image, {what}[None] adds the batch axis: (1, C, H, W)"
    elif grey and (image_shape is None or grey == tuple(image_shape)):
        hint = f"; grey images need their channel axis: {what}.unsqueeze(1) makes them (N, 1, H, W)"
    elif first and first[0] in (1, 3) and (image_shape is None or first == tuple(image_shape)):
        hint = f"; these look channels-last: {what}.permute(0, 3, 1, 2) makes them (N, C, H, W)"
    raise ValueError(f"{what} must be {wanted}, got shape {shape}{hint}")


#: The largest whole number a setting may be: torch takes sizes and seeds as 64-bit ints.
MAX_INT = 2**63 - 1


def check_int(key: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int, if it is a whole number (not a bool) from `minimum` to `MAX_INT`.

    Raises:
        ValueError: Naming `key`, for a float, a string, a list, a bool, a smaller number,
            or one too large for torch (which said only "Overflow when unpacking long long").
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int of at least {minimum}"
        raise ValueError(f"{key} must be {what}, got {short(value)}")
    if value > MAX_INT:
        raise ValueError(f"{key} must be at most 2**63 - 1, got {short(value)}")
    return int(value)


def check_bool(key: str, value: Any) -> bool:
    """`value`, if it is True or False (not 1, 0 or a string: a config.json may hold any of them).

    Raises:
        ValueError: Naming `key`, for anything else.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be True or False, got {short(value)}")
    return value


def check_image_shape(image_shape: Any) -> tuple[int, int, int]:
    """`image_shape` as a `(C, H, W)` tuple of positive ints.

    Raises:
        ValueError: If it is not three positive whole numbers.
    """
    if (not isinstance(image_shape, (list, tuple)) or len(image_shape) != 3
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 1 <= s <= MAX_INT
                   for s in image_shape)):
        raise ValueError(f"image_shape must be (C, H, W) of positive sizes, got {short(image_shape)}")
    return tuple(int(s) for s in image_shape)  # type: ignore[return-value]


def check_float(key: str, value: Any, minimum: float = 0.0, *, above: bool = False) -> float:
    """`value` as a float, if it is a finite real number of at least (or above) `minimum`.

    Raises:
        ValueError: Naming `key`, for a string, a bool, NaN, an infinity or a smaller number.
    """
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and (value > minimum if above else value >= minimum))
    if not ok:
        raise ValueError(f"{key} must be a finite number {'above' if above else 'of at least'}"
                         f" {minimum:g}, got {short(value)}")
    return float(value)


def check_ints(key: str, values: Any, minimum: int = 1) -> list[int]:
    """`values` as a list of ints of at least `minimum`; an empty list is refused.

    Raises:
        ValueError: Naming `key`, for anything but a non-empty list or tuple of such ints.
    """
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{key} must be a non-empty list of ints, got {short(values)}")
    if all(type(v) is int and minimum <= v <= MAX_INT for v in values):  # common, fast for long lists
        return list(values)
    return [check_int(f"{key}[{i}]", v, minimum) for i, v in enumerate(values)]
