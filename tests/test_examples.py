"""Every script in examples/ runs, in a quick mode where it trains."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cvae

pytestmark = pytest.mark.slow  # each example in its own process

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


def test_the_script_that_trains_mnist_conv_runs_in_quick_mode(tmp_path):
    script = EXAMPLES.parent / "scripts" / "train_mnist_conv.py"
    out = subprocess.run([sys.executable, str(script), "--epochs", "1", "--limit", "256", "--seed", "3",
                          "--trainer", '{"lr": 0.0005}', "--eval-limit", "100",
                          "-o", str(tmp_path / "model"), "--checkpoints", str(tmp_path / "checkpoints")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    model = cvae.ConditionalVAE.from_pretrained(tmp_path / "model")
    weights = (tmp_path / "model" / "model.safetensors").stat().st_size
    assert weights <= 25e6 and f"{sum(p.numel() for p in model.parameters()):,} parameters" in out.stdout
    bundled = cvae.ConditionalVAE.from_pretrained("mnist-conv").config  # the script's recipe
    assert model.config["backbone"] == "conv" and model.latent_dim == bundled["latent_dim"]
    assert model.config["backbone_kwargs"] == bundled["backbone_kwargs"]
    card = (tmp_path / "model" / "README.md").read_text()
    assert "scripts/train_mnist_conv.py" in card and "IWAE bound" in card
    # The card says what was run, not the recipe's defaults: the command, lr, warm-up and seed.
    assert (f"train_mnist_conv.py --epochs 1 --seed 3 --limit 256 --trainer '{{\"lr\": 0.0005}}'"
            f" --output {tmp_path / 'model'}") in card
    assert "Adam (lr 0.0005, cosine to 0), KL warm-up over 1 epoch, batch 128, 1 epoch on" in card
    assert "seed 3" in card and "lr 1e-3" not in card


def test_the_mnist_conv_script_passes_its_trainer_settings_on(tmp_path):
    # how the designs in docs/benchmarks.md were trained with other Trainer settings
    script = EXAMPLES.parent / "scripts" / "train_mnist_conv.py"
    out = subprocess.run([sys.executable, str(script), "--epochs", "1", "--limit", "256", "--train-only",
                          "--trainer", '{"free_bits": 0.01, "batch_size": 64}',
                          "--recipe", '{"channels": [8], "hidden_dim": 16}', "-o", str(tmp_path / "model"),
                          "--checkpoints", str(tmp_path / "checkpoints")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    saved = json.loads((tmp_path / "checkpoints" / "epoch-0001" / "trainer.json").read_text())["fingerprint"]
    assert (saved["free_bits"], saved["batch_size"], saved["lr_schedule"]) == (0.01, 64, "cosine")
    assert saved["model"]["backbone_kwargs"]["channels"] == [8]
    run = json.loads((tmp_path / "model" / "training_history.json").read_text())["run"]
    assert run["settings"] == {"lr": 1e-3, "lr_schedule": "cosine", "warmup_epochs": 1,
                               "free_bits": 0.01, "batch_size": 64}
    assert """--trainer '{"free_bits": 0.01, "batch_size": 64}'""" in run["command"]
