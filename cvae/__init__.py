"""cvae: Conditional Variational Autoencoders in PyTorch.

Train a conditional VAE on any labelled images, generate any class on demand, and share
models on the Hugging Face Hub.

Example:
    >>> import cvae
    >>> sevens = cvae.sample(7, 16)                     # bundled MNIST model, offline
    >>> model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
"""

__version__ = "0.1.0"

from .backbones import Backbone, get_backbone, list_backbones, register_backbone
from .data import LabelledImages, load_dataset
from .generate import make_grid, sample, save_grid
from .hub import list_pretrained
from .loss import VAELoss, vae_loss
from .model import ConditionalVAE
from .trainer import Trainer

__all__ = [
    "Backbone",
    "ConditionalVAE",
    "LabelledImages",
    "Trainer",
    "VAELoss",
    "get_backbone",
    "list_backbones",
    "list_pretrained",
    "load_dataset",
    "make_grid",
    "register_backbone",
    "sample",
    "save_grid",
    "vae_loss",
]
