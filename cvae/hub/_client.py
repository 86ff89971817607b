"""Talking to the Hugging Face Hub: one file down, one folder up, every failure in one line.

`huggingface_hub` is imported inside the functions, so that `import cvae` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from cvae._checks import short
from cvae.hub._layout import CONFIG_NAME, WEIGHTS_NAME, list_pretrained

__all__ = ["hub_file", "upload_folder", "check_repo_id"]


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
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"asking the Hub at {endpoint} failed ({name}: {short(first, 200)})"


def hub_file(repo_id: str, filename: str, *, revision: str | None, cache_dir: str | Path | None,
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

    where = short(repo_id) + (f" at revision {short(revision)}" if revision else "")
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
        raise OSError(f"revision {short(revision)} does not exist in {short(repo_id)}") from None
    except RepositoryNotFoundError:
        # Some servers (mirrors) answer "repository not found" for a missing file or
        # revision too: ask again for what must exist, to say which it is.
        if filename != CONFIG_NAME and _exists(repo_id, CONFIG_NAME, revision, token, timeout):
            raise OSError(_missing(where, filename)) from None
        if revision and _exists(repo_id, CONFIG_NAME, None, token, timeout):
            raise OSError(f"revision {short(revision)} does not exist in {short(repo_id)}") from None
        raise OSError(f"{short(repo_id)} is not a local folder, a bundled model ({list_pretrained()})"
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


def check_repo_id(repo_id: str) -> None:
    """Refuse what cannot be a Hub repo id, before any request, without echoing all of it."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ValueError(f"{short(repo_id)} is not a folder here, a bundled model"
                         f" ({', '.join(list_pretrained())}) or a Hub repo id (org/name: letters,"
                         f" digits, '-', '_' and '.', at most 96 characters)") from None


def upload_folder(folder: str, repo_id: str, *, commit_message: str, private: bool | None,
            token: str | None, branch: str | None) -> str:
    """Create the repo if needed and upload a folder as one commit; return the commit's URL."""
    from huggingface_hub import HfApi, constants

    check_repo_id(repo_id)
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if branch:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder,
                                   commit_message=commit_message, revision=branch)
    except Exception as err:  # the client's errors are of many kinds: say it in one line
        raise OSError(f"cannot push to {short(repo_id)}:"
                      f" {_unreachable(err, constants.ENDPOINT, 10.0)}") from None
    return str(commit)
