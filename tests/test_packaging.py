"""The wheel that `pip install` builds carries the bundled weights and their cards."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_the_bundled_models(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path), str(REPO)], check=True,
                   capture_output=True)
    (wheel,) = tmp_path.glob("cvae-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("pretrained/mnist-mlp", "pretrained/mnist-conv", "classifiers/mnist-cnn"):
        for name in ("model.safetensors", "README.md"):
            assert f"cvae/{model}/{name}" in names
            size = zipfile.ZipFile(wheel).getinfo(f"cvae/{model}/{name}").file_size
            assert size == (REPO / "cvae" / model / name).stat().st_size
    assert {"cvae/pretrained/mnist-mlp/config.json", "cvae/pretrained/mnist-conv/config.json"} <= names
    assert "cvae/py.typed" in names  # type checkers read the annotations (PEP 561)
    assert not any(name.startswith(("tests/", "benchmarks/", "scripts/")) for name in names)
