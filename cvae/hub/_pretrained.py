"""Model folders: local, bundled and on the Hugging Face Hub, for any class with the hooks.

A model folder holds `config.json` (the constructor's settings and a format version),
`model.safetensors` (the weights) and `README.md` (the model card). This module finds,
downloads, writes and uploads such folders; what goes into them is the model class's
business, through the hooks that `cvae.hub.HubMixin` names (`_save_pretrained`,
`_from_pretrained`, `_model_card`), so nothing here imports the model. `huggingface_hub`
is imported inside the functions that use it, so that `import cvae` stays cheap.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from cvae._checks import expand_path, parse_json, short
from cvae._files import read_regular, staged_folder, write_text
from cvae.hub._client import check_repo_id, hub_file, upload_folder
from cvae.hub._layout import (
    BUNDLED_DIR,
    CARD_NAME,
    CONFIG_NAME,
    FORMAT_VERSION,
    HISTORY_NAME,
    WEIGHTS_NAME,
)
from cvae.hub._names import local_folder
from cvae.hub._safetensors import CHECKSUM_KEY, TensorFile, read_header
from cvae.version import __version__

__all__ = ["save_pretrained", "load_pretrained", "push_to_hub", "push_folder", "read_config", "local_folder",
           "training_record"]

_MAX_CONFIG = 64 * 2**20
# Keys that config.json carries besides the constructor's arguments.
_META_KEYS = ("format_version", "library", "library_version")

Model = TypeVar("Model")
logger = logging.getLogger(__name__)
#: Seconds a save waits for another process that is saving to the same folder.
SAVE_WAIT = 30.0


def save_pretrained(model: Any, save_directory: str | os.PathLike[str], *,
                    model_card: str | None = None,
                    extra_files: Mapping[str, str] | None = None) -> Path:
    """Write a model folder, whole or not at all: weights, `config.json`, card, extra files.

    The weights come from the model's `_save_pretrained` hook, the config from
    `model.config`, and a generated card from its `_model_card` hook. The folder is written
    beside the old one and swapped in at once (`cvae._files.staged_folder`): a kill at any
    moment leaves the old model or the new one. Files of an old model that the new one does
    not write (its card, its training history) go with it, unless the weights are the same
    (a model saved again), whose card and history are kept. Other entries of the folder,
    such as `checkpoints/`, stay.

    Args:
        model: The model to save (a `HubMixin`).
        save_directory: The folder (created if missing).
        model_card: Markdown for `README.md`; if `None`, the card already there is kept for
            the same weights, and a card is generated otherwise.
        extra_files: More text files to write with the model, `{name: text}`, such as
            `training_history.json`.

    Returns:
        The folder, as a `Path`.

    Raises:
        ValueError: If an extra file's name is not a plain file name, or names a file that
            the model writes (`config.json`, `model.safetensors`, `README.md`).
        BlockingIOError: If another process keeps saving to the folder for 30 seconds.
    """
    folder, extra = expand_path(save_directory, "the folder to save to"), dict(extra_files or {})
    bad = [name for name in extra if Path(name).name != name or name in (".", "..")]
    if bad:
        raise ValueError(f"extra_files are named by plain file names, without folders; got {bad}")
    taken = sorted(set(extra) & {CONFIG_NAME, WEIGHTS_NAME, CARD_NAME})
    if taken:
        raise ValueError(f"extra_files cannot name {', '.join(taken)}: the model writes"
                         f" {CONFIG_NAME}, {WEIGHTS_NAME} and {CARD_NAME} itself (give a card as"
                         f" model_card=)")
    owned = {CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, HISTORY_NAME, *extra}
    with staged_folder(folder, owned, wait=SAVE_WAIT) as stage:
        model._save_pretrained(stage)  # first: it refuses models that cannot be saved
        config = {"format_version": FORMAT_VERSION, "library": "cvae",
                  "library_version": __version__, **model.config}
        (stage / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        checksum = _checksum(stage / WEIGHTS_NAME)
        same = checksum is not None and checksum == _checksum(folder / WEIGHTS_NAME)
        kept = [name for name, given in ((CARD_NAME, model_card), (HISTORY_NAME, extra.get(HISTORY_NAME)))
                if same and given is None and (folder / name).is_file()]
        if model_card is None and CARD_NAME not in kept:
            model_card = model._model_card()
        for name in kept:  # they describe these very weights
            shutil.copyfile(folder / name, stage / name)
        texts = {CARD_NAME: model_card, **extra} if model_card is not None else extra
        for name, text in texts.items():
            (stage / name).write_text(text, encoding="utf-8")
    return folder


def _checksum(weights: Path) -> str | None:
    """The checksum stored in a weights file's header, if the file has one."""
    try:
        return read_header(weights).metadata.get(CHECKSUM_KEY)
    except (OSError, ValueError):
        return None


def _read_json(path: Path, dir_fd: int | None = None) -> dict[str, Any]:
    """A model's `config.json` (opened in the folder `dir_fd` if given), checked to be one."""
    data = read_regular(path, limit=_MAX_CONFIG, dir_fd=dir_fd,
                        too_large="a model's config is a few hundred, so this is not one",
                        missing=f"{path} not found: a cvae model folder holds {CONFIG_NAME} and"
                                f" {WEIGHTS_NAME}, as written by save_pretrained")
    config = parse_json(data, str(path))
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object of model settings")
    version = config.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {short(version)}, but this cvae reads formats up to"
            f" {FORMAT_VERSION}: upgrade cvae (pip install -U torch-cvae)"
        )
    return config


def training_record(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `training_history.json` beside a model folder (`cvae train` writes one).

    Args:
        name_or_path: A model folder or bundled name, as `local_folder` takes them.

    Returns:
        The record (its `run` settings and `epochs` history), or an empty dict for a Hub
        repo id or a folder without one.
    """
    folder = local_folder(name_or_path)
    path = None if folder is None else folder / HISTORY_NAME
    if not (path and path.is_file()):
        return {}
    record = parse_json(read_regular(path, limit=_MAX_CONFIG, too_large="a training record is a few"
                                     " thousand, so this is not one"), str(path))
    if not isinstance(record, dict):
        raise ValueError(f"{path} must hold a JSON object: the training run and its epochs")
    return record


def read_config(path: str | os.PathLike[str], cls: type | None = None) -> dict[str, Any]:
    """Read a model's `config.json` and return the constructor's arguments.

    Args:
        path: The `config.json` file.
        cls: The model class (with `config_keys()`); if given, keys it does not take are
            refused.

    Returns:
        The settings, ready for `cls(**settings)`.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not JSON, was written by a newer format, or has unknown keys.
    """
    return _settings(_read_json(Path(path)), Path(path), cls)


def _settings(config: dict[str, Any], path: Path, cls: type | None) -> dict[str, Any]:
    settings = {k: v for k, v in config.items() if k not in _META_KEYS}
    if cls is not None:
        accepted = set(cls.config_keys())  # type: ignore[attr-defined]
        unknown = sorted(set(settings) - accepted)
        if unknown:
            raise ValueError(f"{path} has settings that {cls.__name__} does not take: {unknown};"
                             f" accepted: {sorted(accepted)}")
    return settings


def load_pretrained(cls: type[Model], name_or_path: str | os.PathLike[str], *,
                    revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                    force_download: bool = False, local_files_only: bool = False,
                    token: str | bool | None = None, map_location: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None, timeout: float = 10.0) -> Model:
    """Find a model's files (a folder, a bundled name or a Hub repo id) and have `cls` load them.

    The class's `_from_pretrained(config, weights, format_version=, map_location=, dtype=)`
    hook builds the model from the open weights file. See `ConditionalVAE.from_pretrained`
    for the arguments.

    Raises:
        ValueError: If `revision` is given for a folder or a bundled model (it names a
            version of a Hub repo).
    """
    load = functools.partial(_load, cls, map_location=map_location, dtype=dtype)
    folder = local_folder(name_or_path)
    if folder is None:
        check_repo_id(str(name_or_path))
        kwargs = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                      local_files_only=local_files_only, token=token, timeout=timeout)
        config_file = hub_file(str(name_or_path), CONFIG_NAME, **kwargs)
        return load(config_file, hub_file(str(name_or_path), WEIGHTS_NAME, **kwargs))
    if revision is not None:
        what = "the bundled model" if folder.parent == BUNDLED_DIR else "the folder"
        raise ValueError(f"revision={short(revision)} names a version of a Hub repo, but"
                         f" {short(os.fsdecode(name_or_path))} is {what} {folder}, which has one"
                         f" version: leave revision out")
    # One snapshot of the folder: its files are opened in the folder as it was when opened,
    # so a save that swaps in a new folder meanwhile cannot mix two versions. If the save
    # removed the old files before they were opened, the new folder is read, once.
    for attempt in (1, 2):
        dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            return load(folder / CONFIG_NAME, folder / WEIGHTS_NAME, dir_fd=dir_fd)
        except FileNotFoundError:
            if attempt == 2 or _same_folder(folder, dir_fd):
                raise
        finally:
            os.close(dir_fd)
    raise AssertionError("unreachable")


def _same_folder(folder: Path, dir_fd: int) -> bool:
    """Whether `folder` is still the folder that `dir_fd` opened (no save swapped it since)."""
    try:
        now, then = os.stat(folder), os.fstat(dir_fd)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (then.st_dev, then.st_ino)


def _load(cls: type[Model], config_file: Path, weights_file: Path, *, map_location: str | torch.device,
          dtype: torch.dtype | None, dir_fd: int | None = None) -> Model:
    """Read the config, open the weights once, and have the class's hook build the model."""
    config = _read_json(config_file, dir_fd)
    version = config.get("format_version", 1)
    with TensorFile(weights_file, dir_fd=dir_fd) as weights:
        return cls._from_pretrained(  # type: ignore[attr-defined]
            _settings(config, config_file, cls), weights, format_version=version,
            map_location=map_location, dtype=dtype)


def push_to_hub(model: Any, repo_id: str, *, commit_message: str = "Upload cvae model",
                private: bool | None = None, token: str | None = None, branch: str | None = None,
                model_card: str | None = None) -> str:
    """Save the model to a temporary folder and upload it as one commit.

    See `ConditionalVAE.push_to_hub` for the arguments.
    """
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, model_card=model_card)
        return upload_folder(tmp, repo_id, commit_message=commit_message, private=private, token=token,
                       branch=branch)


#: What `push_folder` uploads from a model folder: the model, its card and its history.
UPLOADED_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, HISTORY_NAME)


def push_folder(folder: str | os.PathLike[str], repo_id: str, *, model_class: type,
                commit_message: str = "Upload cvae model", private: bool | None = None,
                token: str | None = None, branch: str | None = None) -> str:
    """Upload a model folder (as written by `save_pretrained` or `cvae train`) to the Hub.

    The folder is loaded first, so a folder that would not load is never uploaded; only
    `config.json`, `model.safetensors`, `README.md` and `training_history.json` go up (a
    card is generated if the folder has none).

    Args:
        folder: The model folder.
        repo_id: The Hub repository, `"org/name"` (created if missing).
        model_class: The class that loads the folder, `cvae.ConditionalVAE`.
        commit_message: The commit's message.
        private: Create the repository as private.
        token: Hub token, as in huggingface_hub.
        branch: Branch to push to (default: `main`).

    Returns:
        The URL of the commit.
    """
    folder = Path(folder)
    model = load_pretrained(model_class, folder)  # refuses broken folders with a clear error
    with tempfile.TemporaryDirectory() as tmp:
        for name in UPLOADED_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, Path(tmp) / name)
        if not (folder / CARD_NAME).is_file():
            write_text(Path(tmp) / CARD_NAME, model._model_card(name=repo_id))
        return upload_folder(tmp, repo_id, commit_message=commit_message, private=private, token=token,
                       branch=branch)
