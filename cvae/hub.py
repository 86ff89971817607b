"""Model folders: local, bundled and on the Hugging Face Hub, for any class with the hooks.

A model folder holds `config.json` (the constructor's settings and a format version),
`model.safetensors` (the weights) and `README.md` (the model card). This module finds,
downloads, writes and uploads such folders; what goes into them is the model class's
business, through the hooks that `cvae.hub_mixin.HubMixin` names (`_save_pretrained`,
`_from_pretrained`, `_model_card`), so nothing here imports the model. `huggingface_hub`
is imported inside the functions that use it, so that `import cvae` stays cheap.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import torch

from .files import write_text
from .version import __version__

__all__ = ["list_pretrained", "save_pretrained", "load_pretrained", "push_to_hub", "push_folder",
           "read_config", "local_folder", "FORMAT_VERSION", "CONFIG_NAME", "WEIGHTS_NAME",
           "CARD_NAME", "HISTORY_NAME", "BUNDLED_DIR"]

#: Version of the `config.json` layout that this release writes; it reads this and older.
#: 2: the Gaussian likelihood's scale is `likelihood.log_scale` in the weights (was `log_scale`).
FORMAT_VERSION = 2
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: The training run and its epochs, as `cvae train` writes them beside the model.
HISTORY_NAME = "training_history.json"
BUNDLED_DIR = Path(__file__).parent / "pretrained"
# Keys that config.json carries besides the constructor's arguments.
_META_KEYS = ("format_version", "library", "library_version")

Model = TypeVar("Model")


def list_pretrained() -> list[str]:
    """Names of the pretrained models that ship with the package.

    Each loads offline with `ConditionalVAE.from_pretrained(name)`.
    """
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CONFIG_NAME).is_file())


def local_folder(name_or_path: str | os.PathLike[str]) -> Path | None:
    """The folder of a model given as a path or a bundled name; `None` for a Hub repo id."""
    if Path(name_or_path).is_dir():
        return Path(name_or_path)
    if str(name_or_path) in list_pretrained():
        return BUNDLED_DIR / str(name_or_path)
    return None


def save_pretrained(model: Any, save_directory: str | os.PathLike[str], *,
                    model_card: str | None = None) -> Path:
    """Write a model folder: weights, `config.json` and model card.

    The weights come from the model's `_save_pretrained` hook, the config from
    `model.config`, and a generated card from its `_model_card` hook.

    Args:
        model: The model to save (a `HubMixin`).
        save_directory: The folder (created if missing).
        model_card: Markdown for `README.md`; if `None`, the model's generated card
            (`_model_card`) is written unless the folder already has one.

    Returns:
        The folder, as a `Path`.
    """
    folder = Path(save_directory)
    model._save_pretrained(folder)  # first: it refuses models that cannot be saved
    config = {"format_version": FORMAT_VERSION, "library": "cvae", "library_version": __version__,
              **model.config}
    write_text(folder / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    if model_card is not None or not (folder / CARD_NAME).exists():
        write_text(folder / CARD_NAME, model_card if model_card is not None else model._model_card())
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a cvae model folder holds {CONFIG_NAME} and {WEIGHTS_NAME},"
            f" as written by save_pretrained"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object of model settings")
    version = config.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version!r}, but this cvae reads formats up to"
            f" {FORMAT_VERSION}: upgrade cvae (pip install -U cvae)"
        )
    return config


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


def _unreachable(err: Exception, endpoint: str, timeout: float) -> str:
    """Say in one line why the Hub could not be asked, from the client's exception."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    name = type(err).__name__
    if isinstance(err, OfflineModeIsEnabled):
        return "offline mode is on (HF_HUB_OFFLINE=1)"
    if isinstance(err, HfHubHTTPError) and err.response is not None:
        return f"the Hub at {endpoint} answered HTTP {err.response.status_code}"
    if "Timeout" in name:
        return f"the Hub at {endpoint} did not answer within {timeout:g} s"
    if "Connect" in name:
        return f"cannot connect to the Hub at {endpoint} (is it up? HF_ENDPOINT sets it)"
    return f"asking the Hub at {endpoint} failed ({name}: {err})"


def _hub_file(repo_id: str, filename: str, *, revision: str | None, cache_dir: str | Path | None,
              force_download: bool, local_files_only: bool, token: str | bool | None,
              timeout: float) -> Path:
    """Download one file of a Hub repo, or find it in the cache, with one clear error.

    One request with `timeout` asks the Hub first, so that a server that is down, failing
    or silent is reported at once (huggingface_hub itself retries for minutes); if it
    cannot be asked, a cached copy is used, as huggingface_hub does.
    """
    from huggingface_hub import (
        constants,
        get_hf_file_metadata,
        hf_hub_download,
        hf_hub_url,
        try_to_load_from_cache,
    )
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = repr(repo_id) + (f" at revision {revision!r}" if revision else "")
    offline = local_files_only or constants.HF_HUB_OFFLINE
    try:
        if not offline:
            try:
                get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision),
                                     token=token, timeout=timeout)
            except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
                raise
            except Exception as err:  # the server is down, failing or silent
                cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir,
                                                revision=revision)
                if isinstance(cached, str) and not force_download:
                    return Path(cached)
                raise OSError(f"cannot download {filename} of {where}:"
                              f" {_unreachable(err, constants.ENDPOINT, timeout)}") from None
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                                    force_download=force_download, token=token,
                                    local_files_only=offline, etag_timeout=timeout))
    # Before EntryNotFoundError, its base class: the file may well exist on the Hub.
    except LocalEntryNotFoundError:
        raise OSError(f"{filename} of {where} is not in the Hub cache, and offline mode is on"
                      f" (HF_HUB_OFFLINE=1 or local_files_only=True): load it once online"
                      f" first") from None
    except RevisionNotFoundError:
        raise OSError(f"revision {revision!r} does not exist in {repo_id!r}") from None
    except RepositoryNotFoundError:
        # Some servers (mirrors) answer "repository not found" for a missing file or
        # revision too: ask again for what must exist, to say which it is.
        if filename != CONFIG_NAME and _exists(repo_id, CONFIG_NAME, revision, token, timeout):
            raise OSError(_missing(where, filename)) from None
        if revision and _exists(repo_id, CONFIG_NAME, None, token, timeout):
            raise OSError(f"revision {revision!r} does not exist in {repo_id!r}") from None
        raise OSError(f"{repo_id!r} is not a local folder, a bundled model ({list_pretrained()})"
                      f" or a Hub repository that this token can see") from None
    except EntryNotFoundError:
        raise OSError(_missing(where, filename)) from None
    except HfHubHTTPError as err:
        raise OSError(f"cannot download {filename} of {where}:"
                      f" {_unreachable(err, constants.ENDPOINT, timeout)}") from None


def _missing(where: str, filename: str) -> str:
    hint = (" cvae loads only safetensors weights, never pickle files such as pytorch_model.bin,"
            " which can run code when loaded") if filename == WEIGHTS_NAME else ""
    return f"{where} has no {filename}.{hint}"


def _exists(repo_id: str, filename: str, revision: str | None, token: str | bool | None,
            timeout: float) -> bool:
    """Whether the Hub serves `filename` of the repo at `revision` (any failure: no)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), token=token,
                             timeout=timeout)
        return True
    except Exception:
        return False


def load_pretrained(cls: type[Model], name_or_path: str | os.PathLike[str], *,
                    revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                    force_download: bool = False, local_files_only: bool = False,
                    token: str | bool | None = None, map_location: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None, timeout: float = 10.0) -> Model:
    """Find a model's files (a folder, a bundled name or a Hub repo id) and have `cls` load them.

    The class's `_from_pretrained(config, weights_file, format_version=, map_location=,
    dtype=)` hook builds the model. See `ConditionalVAE.from_pretrained` for the arguments.
    """
    folder = local_folder(name_or_path)
    if folder is not None:
        config_file, weights_file = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    else:
        kwargs = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                      local_files_only=local_files_only, token=token, timeout=timeout)
        config_file = _hub_file(str(name_or_path), CONFIG_NAME, **kwargs)
        weights_file = _hub_file(str(name_or_path), WEIGHTS_NAME, **kwargs)
    config = _read_json(config_file)
    return cls._from_pretrained(  # type: ignore[attr-defined]
        _settings(config, config_file, cls), weights_file,
        format_version=config.get("format_version", 1), map_location=map_location, dtype=dtype)


def push_to_hub(model: Any, repo_id: str, *, commit_message: str = "Upload cvae model",
                private: bool | None = None, token: str | None = None, branch: str | None = None,
                model_card: str | None = None) -> str:
    """Save the model to a temporary folder and upload it as one commit.

    See `ConditionalVAE.push_to_hub` for the arguments.
    """
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, model_card=model_card)
        return _upload(tmp, repo_id, commit_message=commit_message, private=private, token=token,
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
        return _upload(tmp, repo_id, commit_message=commit_message, private=private, token=token,
                       branch=branch)


def _upload(folder: str, repo_id: str, *, commit_message: str, private: bool | None,
            token: str | None, branch: str | None) -> str:
    """Create the repo if needed and upload a folder as one commit; return the commit's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if branch:
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                               revision=branch)
    return str(commit)
