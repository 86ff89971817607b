"""Callbacks: code the `Trainer` calls as training goes, and the built-in ones.

A callback subclasses `Callback` and overrides the hooks it needs; the Trainer calls them in
the process that prints and writes (rank 0 under `torchrun`), in the order given:

    on_train_start -> (on_epoch_start -> on_step_end x steps -> on_validation_end
                       -> on_epoch_end) x epochs -> on_train_end

Built in: `EpochLogger` (the tutorial's epoch line, through the `cvae` logger),
`ProgressBar` (tqdm, with the running loss), `CSVLogger` and `TensorBoardLogger`; and what
the Trainer adds itself: `ActiveUnits` and `CollapseWarning` (posterior collapse), and
`ModelCheckpoint` (with a `checkpoint_dir`). The guide:
[Logging, callbacks and optimizers](logging.md).

Example:
    ```python
    from cvae.training import Callback, CSVLogger

    class PrintKL(Callback):
        def on_epoch_end(self, trainer, record):
            print(record["epoch"], record["kl"])

    Trainer(model, data, callbacks=[CSVLogger("runs/a/metrics.csv"), PrintKL()]).train()
    ```
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cvae._checks import check_int, short
from cvae._files import write_text
from cvae.training.verdict import collapse_remedies

logger = logging.getLogger("cvae.trainer")  # the Trainer's lines, wherever they are logged from

# The `cvae.Trainer` that calls the hooks: typed loosely, since the Trainer imports this module.
Trainer = Any

__all__ = ["Callback", "EpochLogger", "ProgressBar", "CollapseWarning", "CSVLogger", "TensorBoardLogger",
           "ActiveUnits", "ModelCheckpoint", "with_defaults"]


class Callback:
    """Base class of callbacks: every hook does nothing until overridden."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Called by `train()` before its first epoch (after a resumed run's history is read)."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called before the first step of epoch `epoch` (counted from 1)."""

    def on_step_end(self, trainer: Trainer, step: int, terms: torch.Tensor, images: int) -> None:
        """Called after each optimisation step.

        Args:
            trainer: The Trainer.
            step: The step's number in the whole run, counted from 1 (`trainer.global_step`).
            terms: `[loss, reconstruction, kl]` summed over this process's images of the
                batch, detached, on the training device. Reading them (`.tolist()`) waits
                for the device, so a callback that runs every step should read them rarely.
            images: How many images those sums are over.
        """

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Called after the validation data are evaluated, with `Trainer.evaluate`'s result."""

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Called once an epoch is in `trainer.history` (and its checkpoint written).

        Args:
            trainer: The Trainer.
            record: The epoch's entry of the history: `epoch`, `loss`, `reconstruction`,
                `kl`, `lr`, `active_units`, `seconds`, and the `val_` figures with
                validation data (see `Trainer.train`).
        """

    def on_train_end(self, trainer: Trainer) -> None:
        """Called when `train()` ends, also when it stops with an error: close files here."""


class EpochLogger(Callback):
    """The tutorial's line after each epoch, `====> Epoch: N Average loss: X`, at INFO level.

    It goes to the `cvae` logger (see `cvae.logs`), so it is printed on stdout unless the
    application configured logging itself. `Trainer(verbose=True)` (the default) adds it.
    """

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Log the epoch's average loss, and the validation loss when there is one."""
        line = f"====> Epoch: {record['epoch']} Average loss: {record['loss']:.4f}"
        if "val_loss" in record:
            line += f"  Validation loss: {record['val_loss']:.4f}"
        logger.info(line)


class ProgressBar(Callback):
    """A tqdm bar per epoch showing the running average loss and KL, left as the epoch's line.

    `tqdm.auto` draws a widget in notebooks and text in terminals. Where the output is
    neither (a log file, CI), the bar is hidden unless `enabled=True`: the epoch lines say
    enough there. `Trainer(progress=...)` adds it.

    Args:
        enabled: `None` shows the bar in terminals and notebooks only; `True` always;
            `False` never.
        **tqdm_kwargs: More settings for each epoch's `tqdm` bar (`file`, `mininterval`,
            `ncols`, ...).
    """

    def __init__(self, enabled: bool | None = None, **tqdm_kwargs: Any):
        self.enabled, self.tqdm_kwargs = enabled, {"dynamic_ncols": True, **tqdm_kwargs}
        self._bar: Any = None
        self._sums: torch.Tensor | None = None
        self._images = 0

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Open this epoch's bar."""
        from tqdm.auto import tqdm

        # disable=None is tqdm's own test: hidden where the output is not a terminal.
        of = f"/{trainer.epochs}" if trainer.epochs else ""  # a run the data size has no last epoch yet
        self._bar = tqdm(total=trainer.steps_per_epoch, desc=f"epoch {epoch}{of}",
                         disable=None if self.enabled is None else not self.enabled,
                         leave=True, **self.tqdm_kwargs)
        self._sums, self._images = None, 0

    def on_step_end(self, trainer: Trainer, step: int, terms: torch.Tensor, images: int) -> None:
        """Advance the bar; when it redraws, give it the averages so far."""
        if self._bar.disable:
            return
        self._sums = terms if self._sums is None else self._sums + terms  # stays on the device
        self._images += images
        if self._bar.update() and self._images:  # True when tqdm redrew: read the sums only then
            loss, _, kl = (self._sums / self._images).tolist()
            self._bar.set_postfix(loss=f"{loss:.2f}", kl=f"{kl:.2f}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Show the epoch's averages (and validation loss) in the bar, and leave it."""
        shown = {"loss": f"{record['loss']:.2f}", "kl": f"{record['kl']:.2f}"}
        if "val_loss" in record:
            shown["val_loss"] = f"{record['val_loss']:.2f}"
        self._bar.set_postfix(shown, refresh=False)
        self._close()

    def on_train_end(self, trainer: Trainer) -> None:
        """Close a bar that an error left open."""
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CollapseWarning(Callback):
    """Warn, once a run, as soon as the posterior has collapsed: no latent unit is active.

    The encoder then ignores the image (`cvae.evaluation.active_units` is 0, the KL near 0),
    and every sample of a class looks alike. It warns when two epochs in a row end so after
    the run's first `SETTLING_STEPS` optimizer steps: before that a model may not have
    learned the image yet (see `SETTLING_STEPS`). However short the run, the verdict at its
    end says whether it collapsed (`cvae.training.verdict.judge`). The Trainer adds it.
    """

    SETTLING_STEPS = 500
    """Steps before which a collapse is not yet a finding: with the conv backbone on 1,800
    MNIST digits shrunk to 8x8 (15 steps an epoch; `experiments/collapse/collapse.py --backbone conv`),
    4 of 20 latent units were active after 60 steps, 14 after 120 and 19 after 180."""

    def __init__(self) -> None:
        self.warned, self.collapsed = False, 0

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Count the epochs in a row without active units; warn as the class says."""
        self.collapsed = self.collapsed + 1 if record.get("active_units") == 0 else 0
        if self.collapsed >= 2 and trainer.global_step >= self.SETTLING_STEPS and not self.warned:
            self._warn(trainer, record)

    def _warn(self, trainer: Trainer, record: dict[str, float]) -> None:
        self.warned = True
        logger.warning(
            f"cvae: the posterior collapsed in epoch {record['epoch']}, after"
            f" {trainer.global_step} optimizer steps: no latent unit varies with the image"
            f" (KL {record['kl']:.2f} nats per image), so the samples of a class all look"
            f" alike. Try {collapse_remedies(trainer.model.likelihood.name)}; see the guide,"
            f" Evaluating a model")


class CSVLogger(Callback):
    """Write the training history to a CSV file, one row per epoch, after every epoch.

    The file always holds the whole history, rewritten atomically, so a resumed run's file
    starts with the epochs from before the interruption (they come from the checkpoint) and
    a crash never leaves half a row. Columns are the history's keys (see `Trainer.train`).

    Args:
        path: The CSV file.
        overwrite: Replace a file that already holds rows when a new run (not a resumed one)
            starts. Without it such a file is refused before the first epoch, so another
            run's log is never lost.
    """

    def __init__(self, path: str | os.PathLike[str], overwrite: bool = False):
        self.path, self.overwrite = Path(path), overwrite
        if self.path.is_dir():
            raise IsADirectoryError(f"CSVLogger needs a file name; {self.path} is a folder")

    def on_train_start(self, trainer: Trainer) -> None:
        """Refuse a file of another run; write the resumed epochs, if any."""
        if not trainer.history and not self.overwrite and self.path.is_file() and self.path.stat().st_size:
            raise FileExistsError(f"{self.path} already holds a training log; choose another file,"
                                  f" or pass CSVLogger(..., overwrite=True) to replace it")
        if trainer.history:
            self._write(trainer.history)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Rewrite the file with every epoch so far."""
        self._write(trainer.history)

    def _write(self, history: list[dict[str, float]]) -> None:
        columns = list(dict.fromkeys(key for record in history for key in record))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
        write_text(self.path, text.getvalue())


class TensorBoardLogger(Callback):
    """Write the loss curves for TensorBoard (`torch.utils.tensorboard`).

    Every epoch's figures go under `epoch/` (`epoch/loss`, `epoch/kl`, `epoch/val_loss`,
    `epoch/lr`, ...) and, every `log_every_n_steps` steps, the batch's loss per image under
    `step/`; the x-axis is the optimisation step. A resumed run hides what an interrupted
    one wrote after its checkpoint (TensorBoard's `purge_step`). Needs the `tensorboard`
    package: `pip install "torch-cvae[tensorboard]"`.

    Args:
        log_dir: The folder TensorBoard reads (`tensorboard --logdir LOG_DIR`).
        log_every_n_steps: Steps between per-step figures; 0 writes epochs only.
    """

    def __init__(self, log_dir: str | os.PathLike[str], log_every_n_steps: int = 50):
        self.log_dir = Path(log_dir)
        self.log_every_n_steps = check_int("log_every_n_steps", log_every_n_steps, 0)
        try:  # here, so that a missing package is named before any training
            import tensorboard  # noqa: F401
        except ImportError:
            raise ImportError('TensorBoardLogger needs the tensorboard package: pip install'
                              ' "torch-cvae[tensorboard]"') from None
        self._writer: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        """Open the event file, hiding events past a resumed run's checkpoint."""
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.log_dir), purge_step=trainer.global_step + 1
                                     if trainer.history else None)

    def on_step_end(self, trainer: Trainer, step: int, terms: torch.Tensor, images: int) -> None:
        """Every `log_every_n_steps` steps, the batch's figures per image."""
        if self.log_every_n_steps and step % self.log_every_n_steps == 0 and images:
            for name, value in zip(("loss", "reconstruction", "kl"), (terms / images).tolist()):
                self._writer.add_scalar(f"step/{name}", value, step)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """The epoch's figures, at the step it ended on."""
        for name, value in record.items():
            if name != "epoch":
                self._writer.add_scalar(f"epoch/{name}", value, trainer.global_step)
        self._writer.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        """Close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ActiveUnits(Callback):
    """Count the active latent units after each epoch, into the record (`active_units`).

    On the validation data, or without them on up to 1,000 training images
    (`cvae.evaluation.active_units`): 0 means the posterior collapsed, which
    `CollapseWarning` reads. The Trainer adds it, in every process.
    """

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Measure, where the data hold more images than the model has classes."""
        from cvae.evaluation.metrics import active_units

        probe = trainer.val_data if trainer.val_data is not None else trainer.probe
        if len(probe) > trainer.model.num_classes:
            record["active_units"] = active_units(trainer.model, probe)


class ModelCheckpoint(Callback):
    """Write a checkpoint after every `every` epochs and the last, keeping the two newest.

    With early stopping, it holds the best epoch's weights too.

    A checkpoint holds the weights, the optimizer's and scheduler's state, the random
    state and the history, in safetensors and JSON (`cvae.training.checkpoint`); a run
    resumed from it ends as one never interrupted. `Trainer(checkpoint_dir=...)` adds it.

    Args:
        folder: The checkpoints folder.
        every: Epochs between checkpoints.
    """

    def __init__(self, folder: str | os.PathLike[str], every: int = 1):
        self.folder, self.every = Path(folder), check_int("checkpoint_every", every)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        """Save the run as it stands, on the epochs it is asked for."""
        from cvae.training.checkpoint import save_checkpoint

        if record["epoch"] % self.every == 0 or record["epoch"] == trainer.epochs or trainer.should_stop:
            save_checkpoint(self.folder, model=trainer.model, optimizer=trainer.optimizer,
                            generator=trainer.generator, history=trainer.history,
                            fingerprint=trainer.fingerprint, scheduler=trainer.scheduler,
                            best_weights=trainer.length.best_weights)


def with_defaults(callbacks: Sequence[Callback], *, progress: bool | None, verbose: bool,
                  checkpoints: ModelCheckpoint | None = None) -> list[Callback]:
    """The Trainer's callbacks in the process that writes, in the order they are called.

    The checkpoint first, then the progress bar and epoch line as asked, the collapse
    warning, then yours.

    Raises:
        TypeError: If one of `callbacks` is not a `Callback`.
    """
    bad = [c for c in callbacks if not isinstance(c, Callback)]
    if bad:
        raise TypeError(f"callbacks must be cvae.training.Callback objects, got {short(bad[0])}")
    return [*([checkpoints] if checkpoints else []),
            *([ProgressBar(progress)] if progress is not False else []),
            *([EpochLogger()] if verbose else []), CollapseWarning(), *callbacks]
