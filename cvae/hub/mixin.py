"""`HubMixin`: `save_pretrained`, `from_pretrained` and `push_to_hub` for a model class.

The same names and arguments as huggingface_hub's `ModelHubMixin`, and the same shape:
the generic work (folders, config files, downloads, uploads) is done in `cvae.hub`, which
calls hooks that the model class provides (`_save_pretrained`, `_from_pretrained`,
`_model_card`), so the Hub layer never imports the model. The config comes from the
constructor (`cvae._config`). The Hub client is imported only when a method runs, so that
`import cvae` stays cheap, and only safetensors weights are ever read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from cvae._config import ConfigMixin
from cvae._devices import check_device
from cvae.hub import _pretrained as hub
from cvae.hub._card import make_model_card
from cvae.hub._layout import CHECKSUMS_FROM
from cvae.hub._safetensors import TensorFile
from cvae.hub._weights import check_tensors, creation_budget, load_weights, save_weights

__all__ = ["HubMixin"]

Model = TypeVar("Model", bound="HubMixin")


class HubMixin(ConfigMixin):
    """Saving to folders and the Hugging Face Hub, and loading from them (and bundled names).

    A class that uses it is a `torch.nn.Module` whose `__init__` is decorated with
    `register_to_config`; `cvae.hub` calls the three hooks below, which work
    for any such module and which a subclass may extend.
    """

    #: Tensors renamed by a format version: `{version: {old name: new name}}`; weights saved
    #: in an earlier format are read with the new names.
    renamed_tensors: ClassVar[dict[int, dict[str, str]]] = {}

    def _save_pretrained(self, folder: Path) -> None:
        """Hook: write the weights into `folder`; a subclass refuses here what it cannot save."""
        save_weights(self, folder / hub.WEIGHTS_NAME)  # type: ignore[arg-type]

    @classmethod
    def _from_pretrained(cls: type[Model], config: dict[str, Any], weights: TensorFile, *,
                         format_version: int, map_location: str | torch.device,
                         dtype: torch.dtype | None) -> Model:
        """Hook: build the model from its settings and load its weights, checking first.

        The model is built once on the meta device, where it costs nothing, under a budget
        set by the weights file's header, and compared with that header; only then is it
        built for real and the data read, from the file already open (see
        `cvae.hub._weights`). Formats from 2 on carry a checksum, which must be there.
        """
        map_location = check_device(map_location)
        header = weights.header
        rename = {old: new for version, names in cls.renamed_tensors.items()
                  if format_version < version for old, new in names.items()}
        with creation_budget(header):
            skeleton = cls.from_config(config)
        check_tensors(skeleton.state_dict(), header, rename=rename)  # type: ignore[attr-defined]
        with torch.device(map_location):
            model = cls.from_config(config)
        load_weights(model, weights, map_location, rename=rename,  # type: ignore[arg-type]
                     require_checksum=format_version >= CHECKSUMS_FROM)
        return model.to(dtype=dtype).eval()  # type: ignore[attr-defined]

    def _model_card(self, name: str | None = None) -> str:
        """Hook: the Markdown of a generated model card, loaded as `name`."""
        return make_model_card(self, name=name)  # type: ignore[arg-type]

    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        model_card: str | None = None,
        extra_files: Mapping[str, str] | None = None,
        push_to_hub: bool = False,
        repo_id: str | None = None,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write `config.json`, `model.safetensors` and a model card `README.md`, atomically.

        The folder is written beside the old one and swapped in at once, so a kill at any
        moment leaves the old model or the new one, whole; files of the old model that the
        new one does not write go with it (see `cvae.hub.save_pretrained`).

        Args:
            save_directory: The folder to write (created if missing).
            model_card: Markdown for `README.md`; by default a card is generated, unless the
                folder holds one for the same weights.
            extra_files: More text files to write with the model, `{name: text}`.
            push_to_hub: Also upload the folder to the Hugging Face Hub.
            repo_id: The Hub repository for `push_to_hub` (default: the folder's name).
            **push_to_hub_kwargs: Passed on to `push_to_hub`.

        Returns:
            The commit URL if pushed, else `None`.
        """
        hub.save_pretrained(self, save_directory, model_card=model_card, extra_files=extra_files)
        if push_to_hub:
            return self.push_to_hub(repo_id or Path(save_directory).name,
                                    model_card=model_card, **push_to_hub_kwargs)
        return None

    @classmethod
    def from_pretrained(
        cls: type[Model],
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        timeout: float = 10.0,
    ) -> Model:
        """Load a model from a folder, a bundled model's name, or a Hugging Face Hub repo.

        Only `config.json` and `model.safetensors` are read: weights are never unpickled.

        Args:
            pretrained_model_name_or_path: A folder written by `save_pretrained`, the name
                of a bundled model (see `cvae.list_pretrained()`), or a Hub repo id such as
                `"org/name"`.
            revision: Hub branch, tag or commit to load.
            cache_dir: Hub cache folder (default: huggingface_hub's).
            force_download: Download again even if the files are cached.
            local_files_only: Use only the Hub cache, never the network.
            token: Hub token, as in huggingface_hub.
            map_location: Device to load the weights onto.
            dtype: Optional floating-point dtype to cast the model to.
            timeout: Seconds to wait for the Hub to answer before giving up (or falling back
                to a cached copy).

        Returns:
            The model, in eval mode.

        Raises:
            OSError: If the model cannot be found or downloaded: an unknown repo or revision,
                a repo without `model.safetensors`, offline mode without a cached copy, or a
                Hub that is down, failing or silent. The message says which.
            ValueError: If the files are corrupted or the config does not match the weights.
        """
        return hub.load_pretrained(
            cls, pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir,
            force_download=force_download, local_files_only=local_files_only, token=token,
            map_location=map_location, dtype=dtype, timeout=timeout,
        )

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str = "Upload cvae model",
        private: bool | None = None,
        token: str | None = None,
        branch: str | None = None,
        model_card: str | None = None,
    ) -> str:
        """Upload the model to a Hugging Face Hub repository (created if missing).

        Args:
            repo_id: The repository, `"org/name"`.
            commit_message: The commit's message.
            private: Create the repository as private.
            token: Hub token, as in huggingface_hub.
            branch: Branch to push to (default: `main`).
            model_card: Markdown for `README.md` (default: a generated card).

        Returns:
            The URL of the commit.
        """
        return hub.push_to_hub(self, repo_id, commit_message=commit_message, private=private,
                               token=token, branch=branch, model_card=model_card)
