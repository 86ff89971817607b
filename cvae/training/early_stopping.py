"""`EarlyStopping`: end a run when the held-out loss stops improving, and keep its best weights.

As users know it from Keras (`EarlyStopping(restore_best_weights=True)`) and Lightning
(`EarlyStopping` with `ModelCheckpoint(save_best)`). The Trainer adds one by itself when
it decides the run's length (`Trainer(epochs=None)` with validation data); pass your own to
stop a run of fixed `epochs` early, or to change the patience.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from cvae._checks import check_float, check_int, short
from cvae.training.callbacks import Callback

__all__ = ["EarlyStopping", "DEFAULT_PATIENCE", "PATIENCE_STEPS"]

logger = logging.getLogger("cvae.trainer")

#: The fewest epochs without improvement that end a run by default (`EarlyStopping(patience=None)`).
DEFAULT_PATIENCE = 10
#: ...and the fewest steps they must span: on a small set the validation loss of an epoch
#: is noisy, and 10 epochs of 15 steps stopped photos at 4% from their best held-out loss.
PATIENCE_STEPS = 500

Trainer = Any  # the Trainer imports this module


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    The Trainer runs it in every process (so that all stop together under `torchrun`),
    before the epoch's checkpoint is written. When the run ends, the weights of the best epoch are put
    back (with `restore_best_weights`), and `trainer.kept_epoch` says which they are. A
    checkpoint holds the best weights too, so a resumed run keeps them.

    Args:
        patience: Epochs in a row without improvement that end the run; `None`: 10
            (`DEFAULT_PATIENCE`), or as many as span 500 optimizer steps (`PATIENCE_STEPS`)
            where those are more: 10 epochs of MNIST, 30 of 540 images at batch 32.
        min_delta: How much lower than the best so far `monitor` must be to count as an
            improvement (in its own unit: nats per image for the losses). 0 or more.
        monitor: The history's figure to watch: `"val_loss"` (the default: the validation
            loss, what training lowers) or another entry such as `"val_nelbo"`.
        restore_best_weights: Put back the best epoch's weights when the run ends.
        min_steps: Do not stop before this many optimizer steps; `None`: the Trainer's
            `min_steps` (the floor of a run it sizes itself, 0 for one of fixed `epochs`).

    Raises:
        ValueError: If `patience` is below 1 or `min_delta` below 0.

    Example:
        ```python
        stop = EarlyStopping(patience=5, min_delta=0.1)
        Trainer(model, train, val, epochs=200, callbacks=[stop]).train()
        stop.best_epoch  # the epoch whose weights the model now has
        ```
    """

    epochs: int
    """The patience of this run, in epochs (set when it starts)."""

    def __init__(self, patience: int | None = None, min_delta: float = 0.0, monitor: str = "val_loss",
                 restore_best_weights: bool = True, min_steps: int | None = None):
        self.patience = None if patience is None else check_int("patience", patience)
        self.min_delta = check_float("min_delta", min_delta)
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor names a figure of the history such as 'val_loss', got"
                             f" {short(monitor)}")
        self.monitor, self.restore_best_weights = monitor, bool(restore_best_weights)
        self.min_steps = None if min_steps is None else check_int("min_steps", min_steps, 0)
        self.best, self.best_epoch, self.wait = math.inf, 0, 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def check(self, trainer: Trainer) -> None:
        """Refuse, before any step, a monitor that the run cannot have.

        Raises:
            ValueError: If `monitor` is a validation figure and the Trainer has no
                validation data.
        """
        if self.monitor.startswith("val_") and trainer.val_data is None:
            raise ValueError(f"early stopping watches {self.monitor!r}, a figure of the validation"
                             f" data, and the Trainer has none: pass val_data (cvae train holds out"
                             f" part of the training images unless --no-validation), or give the"
                             f" run a length (epochs=) without early stopping")

    def on_train_start(self, trainer: Trainer) -> None:
        """Take up a resumed run: its best epoch from the history, its best weights from the checkpoint."""
        steps = math.ceil(PATIENCE_STEPS / trainer.steps_per_epoch)
        self.epochs = self.patience or max(DEFAULT_PATIENCE, steps)
        self.best, self.best_epoch, self.wait = math.inf, 0, 0
        for record in trainer.history:
            self._update(record)
        if trainer.history and self.restore_best_weights:
            self.best_weights = trainer.resumed_best_weights
        if self._should_stop(trainer):
            trainer.stop(self._reason())

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Compare the epoch with the best so far; keep its weights if it is the best."""
        if self.monitor not in record:
            raise ValueError(f"early stopping watches {self.monitor!r}, which the history does not"
                             f" have; it has {sorted(record)}")
        if self._update(record) and self.restore_best_weights:
            weights = trainer.model.state_dict()
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
        if self._should_stop(trainer):
            trainer.stop(self._reason())

    def _update(self, record: dict[str, Any]) -> bool:
        value = record.get(self.monitor)
        if value is not None and value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            return True
        self.wait += 1
        return False

    def _should_stop(self, trainer: Trainer) -> bool:
        floor = trainer.length.min_steps if self.min_steps is None else self.min_steps
        return self.wait >= self.epochs and trainer.global_step >= floor

    def _reason(self) -> str:
        what = {"val_loss": "the validation loss", "val_nelbo": "the validation negative ELBO"}.get(
            self.monitor, self.monitor)
        by = f" by more than {self.min_delta:g}" if self.min_delta else ""
        return f"{what} had not improved{by} for {self.wait} epochs"

    def restore(self, trainer: Trainer) -> None:
        """Put back the best epoch's weights, if they are not the model's already."""
        last = len(trainer.history)
        if not self.restore_best_weights or self.best_weights is None or self.best_epoch in (0, last):
            return
        trainer.model.load_state_dict(self.best_weights)
        trainer.kept_epoch = self.best_epoch
