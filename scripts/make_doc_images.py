"""Make the pictures in docs/images/: run the tutorial page's code, plot the bundled
`mnist-mlp` model (needs matplotlib), run the transfer and interpolation commands that the
latent-space guide shows and the likelihoods guide's runs of `experiments/collapse/collapse.py`. (The
demo's screenshot comes from `scripts/build_demo.py --screenshot`.) From the repository's root:

    CVAE_DATA=../shared/data python scripts/make_doc_images.py
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cvae
from cvae.evaluation.plots import plot_latent_space, plot_loss_curves, plot_samples
from cvae.hub import BUNDLED_DIR
from cvae.hub._layout import HISTORY_NAME

DOCS = Path(__file__).resolve().parents[1] / "docs"
OUT = DOCS / "images"

# The tutorial, top to bottom, as a reader would run it; its grid goes on its page.
code = "\n".join(re.findall(r"```python\n(.*?)```", (DOCS / "tutorial.md").read_text(), re.DOTALL))
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-c", code], cwd=tmp, check=True)
    shutil.copy(Path(tmp) / "digits.png", OUT / "tutorial-digits.png")
print("wrote docs/images/tutorial-digits.png")

model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
history = json.loads((BUNDLED_DIR / "mnist-mlp" / HISTORY_NAME).read_text())["epochs"]
test = cvae.load_dataset("mnist", train=False)
for path in (plot_samples(model, OUT / "samples.png", seed=0),
             plot_loss_curves(history, OUT / "loss_curves.png"),
             plot_latent_space(model, test, OUT / "latent_space.png")):
    print(f"wrote {path.relative_to(DOCS.parent)}")

# The latent-space guide's pictures, made by the commands it shows.
MLP = ["--model", "mnist-mlp"]
for command in (["transfer", *MLP, "--index", "0", "1", "2", "3", "-o", str(OUT / "transfer.png")],
                ["interpolate", *MLP, "--index", "0", "1", "--steps", "10", "-o",
                 str(OUT / "interpolation.png"), "--gif", str(OUT / "interpolation.gif")],
                ["interpolate", *MLP, "--classes", "1", "7", "--seed", "3", "--steps", "10", "-o",
                 str(OUT / "class-interpolation.png")]):
    subprocess.run([sys.executable, "-m", "cvae.cli", *command], check=True)

# The likelihoods guide's pictures: a small grey data set with the chosen likelihood and the BCE.
for likelihood in ("auto", "bernoulli"):
    subprocess.run([sys.executable, str(DOCS.parent / "benchmarks" / "collapse.py"), "--epochs", "10",
                    "--images", "6000", "--likelihood", likelihood, "--grid",
                    str(OUT / f"small-data-{likelihood}.png")], check=True)
