"""The verdict at the end of a run: still improving, overfitting, collapsed, or converged.

Read from the history alone, so that it can be given again for any saved run
(`judge(RunRecord.read(folder).epochs)`). The Trainer logs it when a run ends
(`trainer.verdict`), and `cvae train` writes it into the model card.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Verdict", "judge", "collapse_remedies", "VERDICTS"]

#: The verdicts, from the most to the least urgent; "too short" is a run of one epoch.
VERDICTS = ("collapsed", "overfitting", "still improving", "converged", "too short")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a run's history says about it.

    Attributes:
        kind: One of `VERDICTS`.
        message: One or two lines for the user: what was seen, by how much, and what to do.
    """

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def _tolerance(value: float) -> float:
    """A change in a loss that is more than noise: 0.2% of it, and at least 0.1 nats."""
    return max(0.1, 0.002 * abs(value))


def judge(history: Sequence[dict[str, Any]], kept_epoch: int | None = None,
          likelihood: str | None = None) -> Verdict:
    """The verdict on a run from its history (`Trainer.train`'s, or a `RunRecord`'s `epochs`).

    The held-out loss (`val_loss`) is judged where the history has it, the training loss
    otherwise (which cannot show overfitting). In order:

    - **collapsed**: the last epoch has no active latent unit (`active_units` 0), however
      short the run;
    - **overfitting**: the held-out loss ended more than a tolerance above its best, which
      came before the last tenth of the run;
    - **still improving**: it fell by more than the tolerance over the last tenth of the
      run's epochs (at least the last one);
    - **converged**: neither.

    The tolerance is 0.2% of the loss and at least 0.1 nats per image.

    Args:
        history: One dict per epoch, in order.
        kept_epoch: The epoch whose weights the model was given back at the end
            (`trainer.kept_epoch`), if not the last.
        likelihood: The model's likelihood, which the advice on a collapse takes into
            account (a Gaussian model is not told to use the Gaussian).
    """
    if not history:
        raise ValueError("there is no epoch to judge: the history is empty")
    key = "val_loss" if "val_loss" in history[-1] else "loss"
    what = "held-out loss" if key == "val_loss" else "training loss"
    values = [float(r[key]) for r in history]
    last = values[-1]
    back = max(1, math.ceil(len(values) / 10))
    fall = values[-1 - back] - last if len(values) > back else math.nan
    if history[-1].get("active_units") == 0:
        return _collapsed(history[-1], fall > _tolerance(last), likelihood)
    best_at = min(range(len(values)), key=values.__getitem__)
    best = values[best_at]
    kept = f"; the weights of epoch {kept_epoch}, the best, were kept" if kept_epoch else ""
    # A rise after a best in the last tenth of the run is noise on a falling curve, not overfitting.
    if key == "val_loss" and last - best > _tolerance(best) and best_at < len(values) - back:
        if kept_epoch:
            return Verdict("overfitting", (
                f"overfitting, stopped in time: the held-out loss rose by {last - best:.2f} nats per"
                f" image after its best ({best:.2f} at epoch {best_at + 1}){kept}"))
        return Verdict("overfitting", (
            f"overfitting: the held-out loss rose by {last - best:.2f} nats per image from its best"
            f" ({best:.2f} at epoch {best_at + 1}); the last epoch's weights are kept. Keep the"
            f" best ones with early stopping (cvae train without --epochs, or an EarlyStopping"
            f" callback)"))
    if math.isnan(fall):
        return Verdict("too short", "one epoch is too short to judge the run; train longer")
    if fall > _tolerance(last):
        return Verdict("still improving", (
            f"still improving: the {what} fell by {fall:.2f} nats per image"
            f" ({fall / abs(values[-1 - back]):.1%}) over the last {back} of {len(values)} epochs;"
            f" train longer (more epochs, or none given so that the held-out loss decides){kept}"))
    unseen = "" if key == "val_loss" else " (no held-out data to see overfitting)"
    return Verdict("converged", (
        f"converged: the {what} changed by {abs(fall):.2f} nats per image over the last {back} of"
        f" {len(values)} epochs{unseen}{kept}"))


COLLAPSE_IS_RIGHT = "unless the conditions alone fix each image: then it is right"
"""On the shapes demo (`scripts/train_shapes.py`: each image drawn from its shape, size, turn,
position and hue, all of them conditions) the latent code ends with 0.00 nats of KL while
the samples show 98.5% of their shapes as asked: nothing is left for the code to carry."""


def collapse_remedies(likelihood: str | None) -> str:
    """What to try against a posterior collapse of a model with `likelihood`.

    The Gaussian likelihood is not advised to a Gaussian model; a clipped gradient is.
    The verdict and `CollapseWarning` both give this advice, and say when a collapse is right.
    """
    remedies = ["free_bits (say 0.25 nats per unit; cvae train --free-bits)", "a KL warm-up (warmup_epochs)"]
    if likelihood == "gaussian":
        # On colourised Fashion-MNIST free bits and a KL warm-up left a Gaussian model
        # collapsed in its first steps; a clipped gradient let the code in, and the run
        # recognised 0.921 of real where it had 0.168 (experiments/colour-collapse/).
        remedies.append("max_grad_norm=100 (--max-grad-norm 100)")
    else:
        remedies.insert(0, "likelihood='gaussian' for images with grey levels")
    return f"{', '.join(remedies[:-1])} or {remedies[-1]}, {COLLAPSE_IS_RIGHT}"


def _collapsed(record: dict[str, Any], improving: bool, likelihood: str | None) -> Verdict:
    advice = ("the loss was still falling: train longer, the encoder may not have learned the"
              f" images yet ({COLLAPSE_IS_RIGHT})" if improving else f"try {collapse_remedies(likelihood)}")
    return Verdict("collapsed", (
        f"posterior collapse: at the end of the run no latent unit varies with the image (KL"
        f" {record['kl']:.2f} nats per image), so the samples of a class all look alike; {advice}"))
