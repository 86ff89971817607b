"""Make the evaluation guide's pictures of sampling settings, with the default bundled model.

`docs/images/sampling-sweep.png` is the curve in `mnist-conv`'s folder, which its sweep
drew (`scripts/train_mnist_conv.py` gives the command; the table beside it in the guide, and
in the model's card, is that command's output); `docs/images/sampling-settings.png` holds
one row of samples per setting, the same latent codes in every row, two of each digit: the
model's own distribution, its recommended setting, and guidance 1. From the repository's root:

    python scripts/make_sampling_images.py
"""

import shutil
from pathlib import Path

import torch

import cvae
from cvae.hub._layout import BUNDLED_DIR
from cvae.images import save_grid

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"

shutil.copy(BUNDLED_DIR / "mnist-conv" / "sweep.png", OUT / "sampling-sweep.png")
print("wrote docs/images/sampling-sweep.png")

model = cvae.ConditionalVAE.from_pretrained("mnist-conv")
# Every part given, since `sample` fills a part left out with the model's recommended value.
SETTINGS = [model.SAMPLING, model.sampling, {**model.SAMPLING, "guidance": 1.0}]
labels = torch.arange(10).repeat_interleave(2)
rows = [model.sample(labels, 1, generator=torch.Generator().manual_seed(0), mixed_precision=False,
                     **setting) for setting in SETTINGS]
save_grid(torch.cat(rows), OUT / "sampling-settings.png", nrow=len(labels), scale=2,
          description="mnist-conv samples; rows: " + "; ".join(
              ", ".join(f"{k} {v:g}" for k, v in s.items()) for s in SETTINGS))
print("wrote docs/images/sampling-settings.png")
