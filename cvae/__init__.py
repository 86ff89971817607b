"""cvae: Conditional Variational Autoencoders in PyTorch.

Train a conditional VAE on any labelled images, generate any class on demand, and share
models on the Hugging Face Hub.

Example:
    ```python
    import cvae

    sevens = cvae.sample(7, 16)  # the bundled MNIST model, offline
    model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
    ```
"""

from . import logs as logs  # the `cvae` logger's console output, before any module logs
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
from .version import __version__ as __version__

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
