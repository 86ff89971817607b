"""Does the Gaussian's scale explain the small-data panel's gap to the oracle?

One model of a panel set, trained as the panel trains it, but with the Gaussian's scale left
as training sets it (the running average of the training batches' error, as before
`ConditionalVAE.calibrate`): after every epoch the held-out negative ELBO is measured with
that scale ("run"), with the scale refitted to the validation images ("valfit") and to the
training images in eval mode ("trainfit"), each also on the validation images; the scale is
put back after each. Then, for each, the best epoch on the held-out images (the oracle) and
the epoch that the validation images would choose.

    CVAE_DATA=../shared/data python experiments/held-out-scale/study.py fashion-300

Run on the code of commit 9000637 (before `calibrate`); on later code the Trainer fits the
scale to the validation images itself, and "run" is "valfit".
"""

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import small_data  # noqa: E402  (the panel's sets)

from cvae import ConditionalVAE, Trainer  # noqa: E402
from cvae.data import VALIDATION_FRACTION, train_test_split  # noqa: E402
from cvae.training import Callback  # noqa: E402


@torch.no_grad()
def mse(model, data):
    """The mean squared error of `data`'s images decoded from one seeded draw of their posterior."""
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(5)
    mu, logvar = model.encode(data.images, data.labels)
    z = mu + torch.randn(mu.shape, generator=g) * (0.5 * logvar).exp()
    error = (data.images - model.decode(z, data.labels)).pow(2).mean().item()
    model.train(was)
    return error


class Probe(Callback):
    def __init__(self, model, fit, val, held_out):
        self.model, self.fit, self.val, self.held_out, self.rows = model, fit, val, held_out, []

    def on_epoch_end(self, trainer, record):
        scale = self.model.likelihood.log_scale.data.clone()
        row = {"epoch": record["epoch"], "val": record.get("val_nelbo"),
               "run": trainer.evaluate(self.held_out)["nelbo"], "scale": scale.exp()[0].item()}
        for key, data in (("valfit", self.val), ("trainfit", self.fit)):
            fitted = math.sqrt(mse(self.model, data))
            self.model.likelihood.log_scale.data.fill_(math.log(fitted))
            row[key] = trainer.evaluate(self.held_out)["nelbo"]
            row[key + "_scale"] = fitted
            row[key + "_val"] = trainer.evaluate(self.val)["nelbo"]
        self.model.likelihood.log_scale.data.copy_(scale)
        self.rows.append(row)


def main(name):
    train, held_out = small_data.sets()[name]()
    fit, val = train_test_split(train, VALIDATION_FRACTION, 0)
    torch.manual_seed(0)
    model = ConditionalVAE.from_data(fit)
    probe = Probe(model, fit, val, held_out)
    trainer = Trainer(model, fit, val, seed=0, verbose=False, progress=False, callbacks=[probe])
    trainer.train()
    print(name, "kept", trainer.kept_epoch, "epochs", len(trainer.history),
          "final held", trainer.evaluate(held_out)["nelbo"])
    for row in probe.rows:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    for key in ("run", "valfit", "trainfit"):
        best = min(probe.rows, key=lambda r: r[key])
        chosen = min(probe.rows, key=lambda r: r["val" if key == "run" else key + "_val"])
        print(key, "oracle best", round(best[key], 1), "at", best["epoch"], "| chosen by val",
              round(chosen[key], 1), "at", chosen["epoch"])


if __name__ == "__main__":
    main(sys.argv[1])
