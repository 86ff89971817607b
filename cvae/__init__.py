"""cvae: Conditional Variational Autoencoders in PyTorch.

Train a conditional VAE on any labelled images, generate any class on demand, and share
models on the Hugging Face Hub.

Example:
    ```python
    import cvae

    sevens = cvae.sample(7, 16)  # the bundled MNIST model, offline
    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    ```

The package is in layers, each a subpackage: `cvae.models`, `cvae.data`, `cvae.training`,
`cvae.hub`, `cvae.evaluation` and `cvae.cli`. The names here are the public face; they are
imported on first use (PEP 562), so that `import cvae` and `cvae --help` do not wait for
torch, and `from cvae import Trainer` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cvae import _moved
from cvae import logs as logs  # the `cvae` logger's console output, before any module logs
from cvae.version import __version__ as __version__

# Public name -> the module that defines it.
_EXPORTS = {
    "Backbone": "cvae.models", "get_backbone": "cvae.models", "list_backbones": "cvae.models",
    "register_backbone": "cvae.models", "Likelihood": "cvae.models", "get_likelihood": "cvae.models",
    "list_likelihoods": "cvae.models", "register_likelihood": "cvae.models", "VAELoss": "cvae.models",
    "vae_loss": "cvae.models", "ConditionalVAE": "cvae.models",
    "LabelledImages": "cvae.data", "list_datasets": "cvae.data", "load_dataset": "cvae.data",
    "register_dataset": "cvae.data", "train_test_split": "cvae.data",
    "Trainer": "cvae.training", "EarlyStopping": "cvae.training",
    "list_pretrained": "cvae.hub",
    "sample": "cvae._generate",
    "make_grid": "cvae.images", "save_grid": "cvae.images",
    "augment": "cvae.augmentation", "Datasheet": "cvae.augmentation",
}

__all__ = [
    "Backbone",
    "ConditionalVAE",
    "Datasheet",
    "EarlyStopping",
    "LabelledImages",
    "Likelihood",
    "Trainer",
    "VAELoss",
    "augment",
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
    from cvae._generate import sample
    from cvae.augmentation import Datasheet, augment
    from cvae.data import LabelledImages, list_datasets, load_dataset, register_dataset, train_test_split
    from cvae.hub import list_pretrained
    from cvae.images import make_grid, save_grid
    from cvae.models import (
        Backbone,
        ConditionalVAE,
        Likelihood,
        VAELoss,
        get_backbone,
        get_likelihood,
        list_backbones,
        list_likelihoods,
        register_backbone,
        register_likelihood,
        vae_loss,
    )
    from cvae.training import EarlyStopping, Trainer

_moved.install()  # the flat modules of 0.1.0 (`cvae.metrics`), found where they went, with a warning


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _moved.SUBPACKAGES or name in _moved.MOVED:
        value = importlib.import_module(f"cvae.{name}")  # `cvae.models`, and `cvae.metrics` as before
    else:
        raise AttributeError(f"module 'cvae' has no attribute {name!r}")
    globals()[name] = value  # later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__", "logs"])
