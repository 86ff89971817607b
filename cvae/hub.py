"""Saving and loading models: local folders, bundled models and the Hugging Face Hub.

A model folder holds `config.json` (the constructor's settings and a format version),
`model.safetensors` (the weights) and `README.md` (the model card). Only safetensors are
ever read, so loading a model never runs code from a file. `huggingface_hub` and
`safetensors` are imported here, inside the functions that use them, so that
`import cvae` stays cheap.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .card import make_model_card

if TYPE_CHECKING:
    from .model import ConditionalVAE

__all__ = ["list_pretrained", "save_pretrained", "load_pretrained", "push_to_hub", "push_folder",
           "read_config", "local_folder", "FORMAT_VERSION"]

#: Version of the `config.json` layout that this release writes; it reads this and older.
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
BUNDLED_DIR = Path(__file__).parent / "pretrained"
# Keys that config.json carries besides the constructor's arguments.
_META_KEYS = ("format_version", "library", "library_version")


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


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename over `path`.

    A crash mid-write leaves the old file (if any) intact rather than a truncated one.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_pretrained(model: ConditionalVAE, save_directory: str | Path, *,
                    model_card: str | None = None) -> Path:
    """Write `config.json`, `model.safetensors` and `README.md` into `save_directory`.

    Args:
        model: The model to save.
        save_directory: The folder (created if missing).
        model_card: Markdown for `README.md`; if `None`, a generated card is written unless
            the folder already has one.

    Returns:
        The folder, as a `Path`.

    Raises:
        ValueError: If the model was built from encoder and decoder modules rather than a
            registered backbone, which `config.json` cannot name (nothing is written).
    """
    from safetensors.torch import save_file

    from . import __version__

    if model.config["backbone"] is None:
        raise ValueError(
            f"this model was built from {type(model.encoder).__name__} and"
            f" {type(model.decoder).__name__} modules, which config.json cannot name: register"
            f" them with cvae.register_backbone(name, {type(model.encoder).__name__},"
            f" {type(model.decoder).__name__}) and build the model with backbone=name to save it")
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"format_version": FORMAT_VERSION, "library": "cvae", "library_version": __version__,
              **model.config}
    state = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    _atomic_write(folder / WEIGHTS_NAME,
                  lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    _atomic_write(folder / CONFIG_NAME,
                  lambda p: p.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8"))
    if model_card is not None or not (folder / CARD_NAME).exists():
        card = model_card if model_card is not None else make_model_card(model)
        _atomic_write(folder / CARD_NAME, lambda p: p.write_text(card, encoding="utf-8"))
    return folder


def read_config(path: str | Path, cls: type | None = None) -> dict[str, Any]:
    """Read a model's `config.json` and return the constructor's arguments.

    Args:
        path: The `config.json` file.
        cls: The model class; if given, keys it does not accept are refused.

    Returns:
        The settings, ready for `cls(**settings)`.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not JSON, was written by a newer format, or has unknown keys.
    """
    path = Path(path)
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
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format_version {version!r}, but this cvae reads formats up to"
            f" {FORMAT_VERSION}: upgrade cvae (pip install -U cvae)"
        )
    settings = {k: v for k, v in config.items() if k not in _META_KEYS}
    if cls is not None:
        # Modules cannot come from JSON: configs name a registered backbone instead.
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "encoder", "decoder"}
        unknown = sorted(set(settings) - accepted)
        if unknown:
            raise ValueError(f"{path} has settings that {cls.__name__} does not take: {unknown};"
                             f" accepted: {sorted(accepted)}")
    return settings


def _load_weights(model: torch.nn.Module, path: Path, device: str) -> None:
    """Load safetensors weights into `model`, checking names and shapes against its config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the weights of a cvae model are in {WEIGHTS_NAME}")
    try:
        state = load_file(str(path), device=device)
    except SafetensorError as err:
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}): it is probably truncated or"
            f" corrupted; save it again, or download it again with force_download=True"
        ) from None
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(
            f"{CONFIG_NAME} does not match {path.name}: tensors missing from the weights:"
            f" {missing}; tensors the config does not build: {unexpected}"
        )
    for name, want in expected.items():  # in the model's order: the first layer that differs
        if state[name].shape != want.shape:
            raise ValueError(
                f"{CONFIG_NAME} does not match {path.name}: tensor {name!r} has shape"
                f" {tuple(state[name].shape)} in the weights, but the config builds {tuple(want.shape)}"
            )
    model.load_state_dict(state)


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


def load_pretrained(cls: type[ConditionalVAE], name_or_path: str | Path, *,
                    revision: str | None = None, cache_dir: str | Path | None = None,
                    force_download: bool = False, local_files_only: bool = False,
                    token: str | bool | None = None, map_location: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None, timeout: float = 10.0) -> ConditionalVAE:
    """Build `cls` from a folder, a bundled model's name or a Hub repo id, and load its weights.

    See `ConditionalVAE.from_pretrained` for the arguments.
    """
    folder = local_folder(name_or_path)
    if folder is not None:
        config_file, weights_file = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    else:
        kwargs = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                      local_files_only=local_files_only, token=token, timeout=timeout)
        config_file = _hub_file(str(name_or_path), CONFIG_NAME, **kwargs)
        weights_file = _hub_file(str(name_or_path), WEIGHTS_NAME, **kwargs)
    model = cls(**read_config(config_file, cls))
    _load_weights(model, weights_file, str(torch.device(map_location)))
    model.to(device=map_location, dtype=dtype)
    return model.eval()


def push_to_hub(model: ConditionalVAE, repo_id: str, *, commit_message: str = "Upload cvae model",
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
UPLOADED_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, "training_history.json")


def push_folder(folder: str | os.PathLike[str], repo_id: str, *,
                commit_message: str = "Upload cvae model", private: bool | None = None,
                token: str | None = None, branch: str | None = None) -> str:
    """Upload a model folder (as written by `save_pretrained` or `cvae train`) to the Hub.

    The folder is loaded first, so a folder that would not load is never uploaded; only
    `config.json`, `model.safetensors`, `README.md` and `training_history.json` go up (a
    card is generated if the folder has none).

    Args:
        folder: The model folder.
        repo_id: The Hub repository, `"org/name"` (created if missing).
        commit_message: The commit's message.
        private: Create the repository as private.
        token: Hub token, as in huggingface_hub.
        branch: Branch to push to (default: `main`).

    Returns:
        The URL of the commit.
    """
    from .model import ConditionalVAE

    folder = Path(folder)
    model = load_pretrained(ConditionalVAE, folder)  # refuses broken folders with a clear error
    with tempfile.TemporaryDirectory() as tmp:
        for name in UPLOADED_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, Path(tmp) / name)
        if not (folder / CARD_NAME).is_file():
            (Path(tmp) / CARD_NAME).write_text(make_model_card(model, name=repo_id), encoding="utf-8")
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
