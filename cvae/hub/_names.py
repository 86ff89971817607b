"""What a model's name means: a folder, a bundled model, or a Hugging Face Hub repo id."""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

from cvae._checks import expand_path, short
from cvae.hub._layout import BUNDLED_DIR, list_pretrained

__all__ = ["local_folder"]

logger = logging.getLogger(__name__)


def local_folder(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The folder of a model given as a path or a bundled name; `None` for a Hub repo id.

    One order, whatever the working directory holds:

    1. a `Path`, or a string that looks like one (it starts with `/`, `.` or `~`, or its
       first part is a folder here, as in `runs/mnist`), is a folder, which must exist;
    2. the name of a bundled model (`cvae.list_pretrained()`) is that model, even where a
       folder of the same name is here (a warning says so; write `./NAME` for the folder);
    3. a plain name that is a folder here is that folder;
    4. anything else is a Hugging Face Hub repo id; a near miss of a bundled name, with
       no `/`, is refused with the name it resembles instead of a trip to the network.

    Raises:
        ValueError: If the name is empty, or a plain name resembles a bundled one.
        FileNotFoundError: If a path does not exist; the message names similar folders.
    """
    text = os.fsdecode(name_or_path)
    if not text.strip():
        raise ValueError(f"the model's name is empty: give a folder, a bundled model"
                         f" ({', '.join(list_pretrained())}) or a Hub repo id such as org/name")
    path = expand_path(text, "the model folder")
    first = Path(text).parts[0] if Path(text).parts else ""
    if (not isinstance(name_or_path, str) or text.startswith(("/", ".", "~")) or "\\" in text
            or ("/" in text and _is_dir(Path(first)))):
        if _is_dir(path):
            return path
        raise FileNotFoundError(f"no folder {short(text, 200)}{_similar(path)}")
    if text in list_pretrained():
        if _is_dir(path):
            logger.warning(f"cvae: {text!r} is the bundled model, not the folder {text!r} here;"
                           f" write ./{text} for the folder")
        return BUNDLED_DIR / text
    if _is_dir(path):
        return path
    # Compared in lower case: a name typed in capitals (MNIST-CONV) is a near miss too.
    lowered = {name.lower(): name for name in list_pretrained()}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.8)
    if close and "/" not in text:
        raise ValueError(f"no bundled model or folder {short(text)}; did you mean"
                         f" {lowered[close[0]]!r}? (bundled: {', '.join(list_pretrained())}; a Hub"
                         f" repo is org/name)")
    return None


def _is_dir(path: Path) -> bool:
    """`path.is_dir()`, but False for a name the system refuses (too long, say)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _similar(path: Path) -> str:
    """`; similar: a, b` for the folders beside `path` with names like its own, or `''`."""
    parent = path.parent if str(path.parent) else Path(".")
    names = [p.name for p in parent.iterdir() if p.is_dir()] if _is_dir(parent) else []
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    return f" (similar: {', '.join(str(parent / name) for name in close)})" if close else ""
