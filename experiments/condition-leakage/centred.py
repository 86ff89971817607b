"""A trained `mnist-morpho` model, centred after training (`centre_codes`): the same images, what leaks?

Loads a model trained without `centre_codes` (the default is the bundled one; the one before
commit this study came with is in its README), builds its centred twin with the same weights
(`ConditionalVAE(centre_codes=True)`), fits the twin's code shift and prior to all 60,000
training digits as the Trainer does when training ends, and prints for both: how far the
images decoded from each test image's own code differ (they should not), the held-out
negative ELBO and its KL term (the same draws of `z`), and what the library's probes read
from the codes (`latent_leakage`, linear and MLP, 10,000 training and 10,000 test codes).
Usage, from the repository's root:

    CVAE_DATA=../shared/data python experiments/condition-leakage/centred.py [MODEL]
"""

import argparse
import sys
from pathlib import Path

import torch

import cvae
from cvae.data._labelled import Batches
from cvae.data._sources import as_dataset
from cvae.evaluation import elbo, latent_leakage
from cvae.evaluation.conditions import _table

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]
from train_morpho_mnist import morpho_mnist  # noqa: E402


def centred_twin(model: cvae.ConditionalVAE, train) -> cvae.ConditionalVAE:
    """The same weights, built with `centre_codes`, its shift and prior fitted to `train`."""
    twin = cvae.ConditionalVAE.from_config({**model.config, "centre_codes": True})
    twin.load_state_dict(model.state_dict(), strict=False)  # all but the shift, which starts at 0
    # The shift, then the prior (on the centred codes), as the Trainer fits them when training ends.
    twin.after_training(Batches(as_dataset(train), 1000))
    return twin.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="mnist-morpho")
    args = parser.parse_args()
    train, test = morpho_mnist(True), morpho_mnist(False)
    model = cvae.ConditionalVAE.from_pretrained(args.model).eval()
    if model.config.get("centre_codes"):
        sys.exit(f"{args.model} is centred already: give a model trained without centre_codes")
    twin = centred_twin(model, train)
    data, table = _table(model, test, None)
    with torch.no_grad():
        x, y = data.images[:2000], table[:2000]
        images = [m.decode(m.encode(x, y)[0], y) for m in (model, twin)]
    apart = (images[0] - images[1]).abs().max()
    print(f"images from each test digit's own code: largest difference {apart:.1e}")
    print("| model | held-out negative ELBO | KL | digit read: linear, MLP (chance) |"
          " thickness R^2: linear, MLP | slant R^2: linear, MLP |")
    print("| --- | ---: | ---: | --- | --- | --- |")
    for name, m in (("as trained", model), ("centred", twin)):
        bound = elbo(m, test, generator=torch.Generator().manual_seed(0))
        read = [latent_leakage(m, train, test, probe=probe) for probe in ("linear", "mlp")]
        digit = f"{read[0]['digit']['accuracy']:.1%}, {read[1]['digit']['accuracy']:.1%}"
        parts = [f"{read[0][p]['r2']:.3f}, {read[1][p]['r2']:.3f}" for p in ("thickness", "slant")]
        chance = read[0]["digit"]["chance"]
        print(f"| {name} | {bound['nelbo']:.2f} | {bound['kl']:.2f} | {digit} ({chance:.1%})"
              f" | {parts[0]} | {parts[1]} |", flush=True)


if __name__ == "__main__":
    main()
