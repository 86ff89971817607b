"""Make the evaluation guide's pictures of sampling settings, with the default bundled model.

`docs/images/sampling-sweep.png` is the curve that `cvae eval mnist-conv --sweep` draws over
the grid below (the table beside it in the guide, and in the model's card, is that command's
output); `docs/images/sampling-settings.png` holds one row of samples per setting, the same
latent codes in every row, two of each digit. From the repository's root:

    CVAE_DATA=../shared/data python scripts/make_sampling_images.py
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import cvae
from cvae.images import save_grid

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
# The model's own distribution, its recommended setting, and guidance: every part given,
# since `sample` fills a part left out with the model's recommended value.
SETTINGS = [{"temperature": 1.0, "sharpness": 1.0, "guidance": 0.0},
            {"temperature": 1.0, "sharpness": 2.0, "guidance": 0.0},
            {"temperature": 1.0, "sharpness": 1.0, "guidance": 1.0}]
GRID = ["--temperature", "1", "0.8", "--sharpness", "1", "1.5", "2", "--guidance", "0", "0.25", "0.5", "1"]

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "cvae.cli", "eval", "mnist-conv", "--sweep", *GRID, "-o",
                    str(Path(tmp) / "sweep.json")], check=True)
    shutil.copy(Path(tmp) / "sweep-sweep.png", OUT / "sampling-sweep.png")
print("wrote docs/images/sampling-sweep.png")

model = cvae.ConditionalVAE.from_pretrained("mnist-conv")
labels = torch.arange(10).repeat_interleave(2)
rows = [model.sample(labels, 1, generator=torch.Generator().manual_seed(0), mixed_precision=False,
                     **setting) for setting in SETTINGS]
save_grid(torch.cat(rows), OUT / "sampling-settings.png", nrow=len(labels), scale=2,
          description="mnist-conv samples; rows: " + "; ".join(
              ", ".join(f"{k} {v:g}" for k, v in s.items()) for s in SETTINGS))
print("wrote docs/images/sampling-settings.png")
