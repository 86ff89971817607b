"""The wheel that `pip install` builds carries the bundled weights and their cards."""

import re
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
    (wheel,) = tmp_path.glob("torch_cvae-*.whl")  # on PyPI, "cvae" is another project
    names = set(zipfile.ZipFile(wheel).namelist())
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    assert "\nName: torch-cvae\n" in zipfile.ZipFile(wheel).read(metadata).decode()
    for model in ("pretrained/mnist-mlp", "pretrained/mnist-conv", "classifiers/mnist-cnn"):
        for name in ("model.safetensors", "README.md"):
            assert f"cvae/{model}/{name}" in names
            size = zipfile.ZipFile(wheel).getinfo(f"cvae/{model}/{name}").file_size
            assert size == (REPO / "cvae" / model / name).stat().st_size
    assert {"cvae/pretrained/mnist-mlp/config.json", "cvae/pretrained/mnist-conv/config.json"} <= names
    assert "cvae/py.typed" in names  # type checkers read the annotations (PEP 561)
    assert not any(name.startswith(("tests/", "benchmarks/", "scripts/")) for name in names)


def test_every_install_hint_names_our_distribution():
    """`pip install cvae` or `cvae[extra]` would fetch an unrelated PyPI project."""
    wrong = re.compile(r"""pip install (-U )?["']?cvae\b|pypi\.org/project/cvae/""")
    texts = [*(REPO / "cvae").rglob("*.py"), *(REPO / "cvae").rglob("README.md"),
             *(REPO / "docs").glob("*.md"), REPO / "README.md"]
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in texts
             for m in wrong.finditer(p.read_text(encoding="utf-8"))]
    assert found == []
    assert 'name = "torch-cvae"' in (REPO / "pyproject.toml").read_text()
