"""How long a run trains, and on how large batches, when the user does not say.

An epoch count is the wrong unit for a default: ten epochs are 4,690 steps of MNIST and 40
steps of 600 images. A run the Trainer sizes itself (`epochs=None`) is measured in optimizer
steps instead: it trains at least `floor` steps, stops when the validation loss has not
improved for `patience` epochs (`EarlyStopping`), and never goes past `ceiling` steps or the
user's `max_minutes`. Without validation data it trains `floor` steps.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from cvae._checks import check_float, check_int, short
from cvae.data._labelled import batches
from cvae.data._sources import as_dataset
from cvae.training.callbacks import Callback
from cvae.training.early_stopping import EarlyStopping
from cvae.training.verdict import judge

__all__ = ["FLOOR_STEPS", "FLOOR_EPOCHS", "CEILING_STEPS", "CEILING_EPOCHS", "suited_batch_size",
           "decided_length", "Ceiling", "RunLength", "DEFAULT_BATCH_SIZE"]

logger = logging.getLogger("cvae.trainer")

FLOOR_STEPS = 1_000
"""The fewest optimizer steps of a run the Trainer sizes itself, however small the data."""
FLOOR_EPOCHS = 10
"""...and the fewest epochs: on MNIST, 4,690 steps, the length of 0.1.0's default run."""
CEILING_STEPS = 20_000
"""The most steps of such a run, however small the data..."""
CEILING_EPOCHS = 100
"""...or the most epochs where those are more steps: on MNIST, the tutorial's 100 epochs."""

DEFAULT_BATCH_SIZE = 128
"""The tutorial's batch size: a run of given epochs, and a large set, train with it."""
_SMALLEST_BATCH = 16
_STEPS_PER_EPOCH = 16  # what a small set's batch is sized for


def suited_batch_size(images: int) -> int:
    """The batch size for `images` training images: 128 (the tutorial's) down to 16.

    The power of two nearest to a sixteenth of the images, within those bounds: a set of a
    few hundred images gets epochs of about 16 steps rather than 2 to 4, so it takes as
    many steps in a few epochs as a large set takes in one.
    """
    nearest = 2 ** round(math.log2(max(images, 1) / _STEPS_PER_EPOCH))
    return min(DEFAULT_BATCH_SIZE, max(_SMALLEST_BATCH, nearest))


def decided_length(steps_per_epoch: int) -> tuple[int, int]:
    """`(floor, ceiling)` in optimizer steps for a run of `steps_per_epoch` steps an epoch."""
    floor = max(FLOOR_STEPS, FLOOR_EPOCHS * steps_per_epoch)
    return floor, max(floor, CEILING_STEPS, CEILING_EPOCHS * steps_per_epoch)


class Ceiling(Callback):
    """End the run before an epoch that would go past `max_steps` or `max_minutes`.

    Epochs are whole (a resumed run then computes as one never interrupted), so the run
    stops after the last epoch that fits: at least one runs. The minutes are those of the
    whole run, a resumed one's earlier epochs included. The Trainer adds it, in every process;
    `name` is what the stop reason calls `max_steps` ("the ceiling of").
    """

    def __init__(self, max_steps: int | None, max_minutes: float | None, name: str):
        self.max_steps, self.max_minutes, self.name = max_steps, max_minutes, name

    def on_train_start(self, trainer: Any) -> None:
        """Start the clock where the resumed epochs left it; a run already at its end stops."""
        self._start = time.perf_counter() - sum(r.get("seconds", 0.0) for r in trainer.history)
        if trainer.history:
            self._check(trainer, trainer.history[-1].get("seconds", 0.0))

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Stop if the next epoch would not fit."""
        self._check(trainer, time.perf_counter() - self._epoch_start)

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Note when the epoch started."""
        self._epoch_start = time.perf_counter()

    def _check(self, trainer: Any, epoch_seconds: float) -> None:
        if self.max_steps is not None and trainer.global_step + trainer.steps_per_epoch > self.max_steps:
            trainer.stop(f"the next epoch would go past {self.name} {self.max_steps:,} steps")
        elapsed = time.perf_counter() - self._start
        if self.max_minutes is not None and elapsed + epoch_seconds > 60 * self.max_minutes:
            trainer.stop(f"the next epoch would go past the ceiling of {self.max_minutes:g} minutes"
                         f" (max_minutes)")


@dataclasses.dataclass
class RunLength:
    """How long a run trains, decided once when the Trainer is built: `trainer.length`.

    Attributes:
        epochs: The epochs it was given, or `None`: the data decide.
        min_steps: The floor: early stopping waits for this many steps.
        max_steps: The ceiling in steps, if any.
        max_minutes: The ceiling in minutes, if any.
        stoppers: The run's `EarlyStopping` callbacks (the default one, or the user's).
    """

    epochs: int | None
    min_steps: int
    max_steps: int | None
    max_minutes: float | None
    stoppers: list[EarlyStopping]
    ceiling: str = "the ceiling of"  # what the stop reason calls `max_steps`

    @classmethod
    def decide(cls, epochs: int | None, steps_per_epoch: int, validated: bool, *, min_steps: int | None,
               max_steps: int | None, max_minutes: float | None, early_stopping: EarlyStopping | bool | None,
               callbacks: Sequence[Callback]) -> RunLength:
        """The length of a run of `steps_per_epoch` steps an epoch, as the Trainer's settings say.

        Raises:
            ValueError: If a setting is out of range, `max_steps` is below `min_steps`, or
                `early_stopping` is none of `True`, `False`, `None` or an `EarlyStopping`.
        """
        floor, ceiling = decided_length(steps_per_epoch)
        decided = epochs is None
        low = None if min_steps is None else check_int("min_steps", min_steps, 0)
        high = None if max_steps is None else check_int("max_steps", max_steps)
        minutes = None if max_minutes is None else check_float("max_minutes", max_minutes, above=True)
        # A bound the user gives moves the decided one it would cross; two given must agree.
        low = low if low is not None else min(floor if decided else 0, high or floor)
        high = high if high is not None else (max(ceiling, low) if decided else None)
        if high is not None and high < low:
            raise ValueError(f"max_steps (the ceiling, {high:,} steps) must be at least min_steps (the"
                             f" floor, {low:,} steps)")
        if early_stopping not in (None, True, False) and not isinstance(early_stopping, EarlyStopping):
            raise ValueError(f"early_stopping must be True, False, None or an EarlyStopping, got"
                             f" {short(early_stopping)}")
        stoppers = [c for c in callbacks if isinstance(c, EarlyStopping)]
        if isinstance(early_stopping, EarlyStopping):
            stoppers.append(early_stopping)
        elif early_stopping or (early_stopping is None and decided and validated):
            stoppers.append(EarlyStopping())
        if decided and not stoppers:  # nothing to stop on: the floor is the run's length
            return cls(epochs, low, min(low, high or low) or steps_per_epoch, minutes, stoppers,
                       "the length decided for the data without validation data to stop on,")
        return cls(epochs, low, high, minutes, stoppers)

    def duties(self) -> list[Callback]:
        """What the Trainer runs in every process to end the run: early stopping, then the ceilings."""
        return [*self.stoppers, Ceiling(self.max_steps, self.max_minutes, self.ceiling)]

    @property
    def best_weights(self) -> dict[str, torch.Tensor] | None:
        """The best epoch's weights, as early stopping keeps them (for checkpoints); else `None`."""
        return next((s.best_weights for s in self.stoppers if s.best_weights is not None), None)

    def plan(self, trainer: Any) -> str:
        """The run in one line: the data, the model, the batch and how long it trains."""
        if self.stoppers:
            length = (f"early stopping on {len(trainer.val_data):,} validation images, between"
                      f" {self.min_steps:,} and {self.max_steps:,} steps")
        else:
            length = f"{self.max_steps:,} steps (no validation data to stop on)"
        model = trainer.model
        return (f"{len(trainer.train_data):,} images {'×'.join(map(str, model.image_shape))},"
                f" {model.num_classes} classes: {_backbone(model.config)},"
                f" {model.config['likelihood']} likelihood,{_guided(model.config)}"
                f" batch {trainer.batch_size}, {length}")

    def before_validation(self, trainer: Any) -> None:
        """Where the validation images choose the weights, they fit the model's likelihood scale too.

        (`ConditionalVAE.calibrate`.) Only then: validation data given with a length in
        epochs may be the test set, which nothing is fitted to.
        """
        hook = getattr(trainer.model, "calibrate", None)
        if callable(hook) and any(stopper.monitor.startswith("val_") for stopper in self.stoppers):
            hook(batches(as_dataset(trainer.val_data), 1000))

    def finish(self, trainer: Any) -> None:
        """Give back the best weights, then say why the run stopped and how it did (`trainer.verdict`)."""
        if not trainer.should_stop:
            trainer.stop_reason = f"it ran the {self.epochs} epochs it was given"
        for stopper in self.stoppers:
            stopper.restore(trainer)
        if not trainer.history:
            return
        trainer.verdict = judge(trainer.history, trainer.kept_epoch, trainer.model.config.get("likelihood"))
        if not trainer.is_main_process:
            return
        if trainer.verbose and trainer.should_stop:  # not a run of the epochs it was given: say why
            kept = trainer.kept_epoch and f"; the weights of epoch {trainer.kept_epoch}, the best, were kept"
            logger.info(f"cvae: stopped after epoch {len(trainer.history)} ({trainer.global_step:,} steps):"
                        f" {trainer.stop_reason}{kept or ''}")
        # A warning where the model is worse than it could be, with or without `verbose`, as
        # the collapse warning is; the other verdicts are lines of the log.
        kind = trainer.verdict.kind
        if kind == "collapsed" or (kind == "overfitting" and not trainer.kept_epoch):
            logger.warning(f"cvae: {trainer.verdict}")
        elif trainer.verbose:
            logger.info(f"cvae: {trainer.verdict}")


def _backbone(config: dict[str, Any]) -> str:
    """`conv backbone`, `conv backbone with FiLM` (`ConvDecoder(film=True)`), `custom backbone`."""
    film = " with FiLM" if (config.get("backbone_kwargs") or {}).get("film") else ""
    return f"{config.get('backbone') or 'custom'} backbone{film}"


def _guided(config: dict[str, Any]) -> str:
    """The plan's words on condition dropout for guided sampling, where the model has both."""
    dropout, guidance = config.get("condition_dropout"), (config.get("sampling") or {}).get("guidance")
    if not (dropout and guidance):
        return ""
    return f" condition dropout {dropout:g} for guided samples,"
