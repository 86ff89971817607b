"""Shared fixtures. Data come from one setting: $CVAE_DATA, else ../shared/data beside the repo."""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("CVAE_DATA", str(REPO.parent / "shared" / "data"))
# Tests never reach the Hub: anything not local must fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import cvae  # noqa: E402  (after the environment is set)


@pytest.fixture(scope="session")
def mnist_train() -> cvae.LabelledImages:
    return cvae.load_dataset("mnist", train=True, download=False)


@pytest.fixture(scope="session")
def mnist_test() -> cvae.LabelledImages:
    return cvae.load_dataset("mnist", train=False, download=False)


@pytest.fixture(scope="session")
def mnist_small(mnist_train) -> cvae.LabelledImages:
    """The first 2,000 training images: enough to see the loss fall in a second or two."""
    return cvae.LabelledImages(mnist_train.images[:2000], mnist_train.labels[:2000],
                               mnist_train.class_names)


@pytest.fixture
def tiny_model() -> cvae.ConditionalVAE:
    torch.manual_seed(0)
    return cvae.ConditionalVAE(image_shape=(3, 8, 6), num_classes=5, latent_dim=4,
                               backbone_kwargs={"hidden_dims": [32, 16]})
