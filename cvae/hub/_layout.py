"""The layout of a model folder: its file names, its format version, and the bundled models."""

from __future__ import annotations

from pathlib import Path

__all__ = ["FORMAT_VERSION", "CHECKSUMS_FROM", "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "HISTORY_NAME",
           "METRICS_NAME", "BUNDLED_DIR", "list_pretrained"]

#: Version of the `config.json` layout that this release writes; it reads this and older.
#: 2: the Gaussian likelihood's scale is `likelihood.log_scale` in the weights (was `log_scale`).
FORMAT_VERSION = 2
#: The first format whose weights files all carry a checksum: one of these without it was
#: altered, and is refused. (Format 1, cvae 0.1.0's, had none.)
CHECKSUMS_FROM = 2
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: The training run and its epochs, as `cvae train` writes them beside the model.
HISTORY_NAME = "training_history.json"
#: The same epochs as a CSV file that `cvae train` rewrites after each one, to watch a run.
METRICS_NAME = "metrics.csv"
BUNDLED_DIR = Path(__file__).parents[1] / "pretrained"  # cvae/pretrained


def list_pretrained() -> list[str]:
    """Names of the pretrained models that ship with the package.

    Each loads offline with `ConditionalVAE.from_pretrained(name)`.
    """
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / CONFIG_NAME).is_file())
