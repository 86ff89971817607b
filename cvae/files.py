"""Writing files so that a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "write_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write through a temporary file in the same folder, then rename it over `path`.

    Args:
        path: The file to write; its folder is created if missing.
        write: Writes the content to the path it is given (the temporary file).

    Returns:
        `path`, as a `Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` as UTF-8 to `path`, atomically (see `atomic_write`)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
