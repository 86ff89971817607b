"""Shared fixtures. Data come from one setting: $CVAE_DATA, else ../shared/data beside the repo."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("CVAE_DATA", str(REPO.parent / "shared" / "data"))
# Tests never reach the Hub: anything not local must fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist (`-n N`), each worker takes its share of the cores, for itself and the
# processes it starts: N workers of all the cores each would fight over them.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))
    torch.set_num_threads(_share)

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


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The documentation site as `mkdocs build --strict` builds it (with the browser demo)."""
    pytest.importorskip("mkdocs")
    site = tmp_path_factory.mktemp("site")
    # Not --quiet: with it, strict mode never sees the warnings, and a broken site passes.
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                           cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr
    return site
