"""cvae: Conditional Variational Autoencoders in PyTorch.

Train a conditional VAE on any labelled images, generate any class on demand, and share
models on the Hugging Face Hub.

Example:
    ```python
    import cvae

    sevens = cvae.sample(7, 16)  # the bundled MNIST model, offline
    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    ```

The public names are imported on first use (PEP 562), so that `import cvae` and the
`cvae --help` command do not wait for torch; `from cvae import Trainer` works as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from . import logs as logs  # the `cvae` logger's console output, before any module logs
from .version import __version__ as __version__

# Public name -> the module that defines it.
_EXPORTS = {
    "Backbone": "backbones", "get_backbone": "backbones", "list_backbones": "backbones",
    "register_backbone": "backbones",
    "LabelledImages": "data", "list_datasets": "data", "load_dataset": "data",
    "register_dataset": "data",
    "sample": "generate",
    "list_pretrained": "hub",
    "make_grid": "images", "save_grid": "images",
    "Likelihood": "likelihoods", "get_likelihood": "likelihoods", "list_likelihoods": "likelihoods",
    "register_likelihood": "likelihoods",
    "VAELoss": "loss", "vae_loss": "loss",
    "ConditionalVAE": "model",
    "train_test_split": "splits",
    "Trainer": "trainer",
}

__all__ = [
    "Backbone",
    "ConditionalVAE",
    "LabelledImages",
    "Likelihood",
    "Trainer",
    "VAELoss",
    "get_backbone",
    "get_likelihood",
    "list_backbones",
    "list_datasets",
    "list_likelihoods",
    "list_pretrained",
    "load_dataset",
    "make_grid",
    "register_backbone",
    "register_dataset",
    "register_likelihood",
    "sample",
    "save_grid",
    "train_test_split",
    "vae_loss",
]

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from .backbones import Backbone, get_backbone, list_backbones, register_backbone
    from .data import LabelledImages, list_datasets, load_dataset, register_dataset
    from .generate import sample
    from .hub import list_pretrained
    from .images import make_grid, save_grid
    from .likelihoods import Likelihood, get_likelihood, list_likelihoods, register_likelihood
    from .loss import VAELoss, vae_loss
    from .model import ConditionalVAE
    from .splits import train_test_split
    from .trainer import Trainer


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # `cvae.metrics`, as before
    else:
        raise AttributeError(f"module 'cvae' has no attribute {name!r}")
    globals()[name] = value  # later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__", "logs"])
