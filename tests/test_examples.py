"""Every script in examples/ runs, in a quick mode where it trains."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ARGS = {"train_on_tensors.py": ["--epochs", "1", "--limit", "1000", "-o", "run"],
        "sample_digits.py": ["-o", "digits.png"],
        "train_fashion_mnist.py": ["--epochs", "1", "--limit", "512", "-o", "run"],
        "custom_backbone.py": ["--epochs", "1", "--limit", "1000", "-o", "run"]}


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script, tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / script), *ARGS[script]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout
    if script == "custom_backbone.py":
        assert "reloaded weights identical: True" in out.stdout
