"""`Trainer`: the tutorial's training loop, for any `ConditionalVAE` and labelled data."""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from cvae._checks import check_float, check_int, short
from cvae._devices import check_step_fits
from cvae._files import folder_lock
from cvae.data._labelled import Batches, LabelledData, data_digest
from cvae.data._sources import as_dataset
from cvae.evaluation.metrics import elbo
from cvae.models.conditional_vae import ConditionalVAE
from cvae.training._engine import Engine
from cvae.training._feed import first, prepare, shuffled_batches
from cvae.training._length import DEFAULT_BATCH_SIZE, RunLength, suited_batch_size
from cvae.training._optim import (
    Scheduler,
    Scheduling,
    cosine_schedule,
    describe,
    make_optimizer,
    make_scheduler,
)
from cvae.training.callbacks import ActiveUnits, Callback, ModelCheckpoint, with_defaults
from cvae.training.checkpoint import latest_checkpoint, open_run, restored_on_error
from cvae.training.early_stopping import EarlyStopping
from cvae.training.verdict import Verdict

__all__ = ["Trainer"]

logger = logging.getLogger("cvae.trainer")  # the Trainer's lines, as docs/logging.md names them


def _check_choices(lr_schedule: str, compile: bool | str, resume: bool,
                   checkpoint_dir: str | os.PathLike[str] | None) -> None:
    """Refuse the Trainer's settings that take one of a few values, or go with another."""
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {short(lr_schedule)}")
    if compile not in (True, False, "auto"):
        raise ValueError(f"compile must be True, False or 'auto', got {short(compile)}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir to resume from")


class Trainer:
    """Train a `ConditionalVAE` with the tutorial's recipe: Adam on the model's own loss.

    The loss is `model.loss` (the tutorial's `BCE(sum) + beta * KLD` by default), for every
    likelihood and backbone. The data are held on the device and shuffled by index, so no
    epoch pays for a DataLoader, and nothing waits on the device between steps.

    Args:
        model: The model to train (moved to `device`).
        train_data: A map-style dataset of `(image, label)` with images as `(C, H, W)`
            tensors in [0, 1], a pair of tensors `(images, labels)`, or a Hugging Face
            `datasets.Dataset`. Its class names become the model's if it has none.
        val_data: Optional validation data, in the same forms; evaluated after each epoch,
            and what early stopping watches.
        epochs: Number of passes over the training data. `None` (the default): the data
            decide. With `val_data`, the run trains at least `min_steps` steps, stops when
            the validation loss has not improved for `EarlyStopping`'s patience, never goes
            past `max_steps`, and ends with the best epoch's weights; without, it trains
            `min_steps` steps. A number keeps 0.1.0's run of exactly that many epochs.
        batch_size: Images per optimisation step; `None`: 128 (the tutorial's) for a run of
            given `epochs`; when the data decide the length, 128 too, or for fewer than 2,048
            training images the power of two nearest to a sixteenth of them, at least 16
            (`cvae.training._length.suited_batch_size`).
        min_steps: The floor: early stopping waits for this many optimizer steps. `None`:
            for a run the data size, 1,000 steps or 10 epochs, the more (on MNIST, the 4,690
            steps of 0.1.0's default run); for `epochs=N`, 0.
        max_steps: The ceiling: the run stops before an epoch that would go past it. `None`:
            for a run the data size, 20,000 steps or 100 epochs, the more; none for `epochs=N`.
        max_minutes: A wall-clock ceiling: the run stops before an epoch that would go past
            this many minutes (a resumed run's earlier epochs count). `None`: none.
        early_stopping: An `EarlyStopping` to end the run with (also given in `callbacks`);
            `True` for the default one, `False` for none. `None` (the default): the default
            one when `epochs` is `None` and there are `val_data`.
        lr: The default Adam's learning rate (1e-3, the tutorial's, when not given).
        lr_schedule: `"constant"` (the tutorial's) or `"cosine"`: from the optimizer's
            learning rate down to 0 along a half cosine over all the epochs, updated every
            step (Loshchilov and Hutter 2017). For other schedules, pass a `scheduler`.
        optimizer: Your own optimizer, built on the model's parameters (say
            `torch.optim.AdamW(model.parameters(), lr=2e-3)`); default: the tutorial's Adam.
            Parameters it leaves out are not trained.
        scheduler: A `torch.optim.lr_scheduler` scheduler on the Trainer's optimizer, or a
            function that builds one from it (`lambda opt: StepLR(opt, 10)`: the way to
            schedule the default Adam). Stepped after every epoch, or every step (see
            `scheduler_interval`); `ReduceLROnPlateau` is given the validation loss, or the
            training loss without validation data. Its state goes into checkpoints.
        scheduler_interval: `"epoch"` (the default) or `"step"` (`OneCycleLR`, say).
        max_grad_norm: Clip the gradients' total norm to this before each step
            (`torch.nn.utils.clip_grad_norm_`); `None` (the default) does not clip.
        beta: Weight of the KL term (1.0 is the ELBO).
        warmup_epochs: Raise the KL weight from 0 to `beta` over this many epochs, step by
            step, against early posterior collapse (Bowman et al. 2016); the reported loss
            uses the weight of each step. 0 turns it off.
        free_bits: Nats per latent unit that the KL term does not charge for (Kingma et al.
            2016; see `vae_loss`), against posterior collapse; the reported loss is the
            objective, the reported `kl` the true KL. 0 (the default) is the ELBO.
        device: Where to train; default `"cuda"` when available, else `"cpu"`.
        seed: Seed for shuffling and the noise in `z` (the same numbers on the CPU for the
            same seed); `None` draws one from torch's global generator.
        in_memory: Hold the data as tensors on the device (fast); False reads them with a
            `DataLoader` (`num_workers` workers), for data too big or with augmentations.
        num_workers: DataLoader workers when `in_memory` is False.
        progress: Show a bar per epoch with the running loss and KL (`callbacks.ProgressBar`);
            `None` (the default): in terminals and notebooks, not in logs.
        verbose: Log the tutorial's `====> Epoch: N Average loss: X` after each epoch (an
            `EpochLogger`, INFO on the `cvae` logger: stdout unless logging is configured).
        callbacks: `cvae.training.Callback`s to call at each step, validation and epoch
            (`CSVLogger`, `TensorBoardLogger` or your own), after the progress bar and the
            epoch line; in the main process only.
        compile: Compile the loss with `torch.compile`: the same loss curve, faster steps
            where per-operation overhead is a large part of them (small models such as the
            tutorial's; see the benchmarks), after seconds of compiling. `"auto"` (the default)
            compiles runs of at least `cvae.training.AUTO_COMPILE_STEPS` steps in one
            process where torch can (a C++ compiler on a CPU, Triton on a GPU), except for
            semi-supervised models, and goes on without if compiling fails; `True` always
            compiles, `False` never (see `compiled`).
        mixed_precision: Run the forward pass under bfloat16 autocast (the loss is summed
            in float32). `"auto"` (the default) does on CPUs with native bfloat16 (AMX,
            AVX-512 BF16), faster to the same loss curve, not on GPUs or other CPUs (see
            `cvae.training.native_bfloat16`). `False` keeps float32; `True` forces bfloat16.
        checkpoint_dir: Where to write checkpoints (safetensors and JSON) after every
            `checkpoint_every` epochs and the last; `None` writes none.
        checkpoint_every: Epochs between checkpoints.
        resume: Continue from the newest intact checkpoint in `checkpoint_dir`, if any (a
            damaged newer one is skipped with a warning): a run killed at any point and
            resumed ends with the weights of one never interrupted (on the CPU, same seed).
            Without it, a `checkpoint_dir` that holds checkpoints is refused.
        allow_changes: With `resume`, go on from a checkpoint made with other data or
            settings (batch size, optimizer, beta, ...), which is refused otherwise, naming
            what differs. A checkpoint of another model is always refused.

    `compiled` says whether the loss is compiled (with `compile="auto"`, from the run's
    length and the device). When `train()` ends, `stop_reason` says why, `kept_epoch` which
    epoch's weights early stopping gave back (`None`: the last epoch's), and `verdict` how
    the run did (`cvae.training.verdict.judge`): all three are logged. `length` holds the
    run's floor, ceilings and early stopping as they were decided.

    Under `torchrun` the same script trains with `DistributedDataParallel`: `batch_size` is
    the global batch, losses, weights and history match one process with the same seed (up
    to rounding), and only rank 0 (`is_main_process`) logs, calls callbacks and writes.

    Example:
        ```python
        train, val = train_test_split(load_dataset("path/to/folder"), 0.1)
        trainer = Trainer(ConditionalVAE.from_data(train), train, val)  # the data decide
        history = trainer.train()
        trainer.kept_epoch, trainer.verdict  # the epoch it kept; "converged", say
        ```
    """

    should_stop: bool = False
    """Whether the run ends after this epoch (`stop()` sets it)."""
    stop_reason: str | None = None
    """Why the run stopped, once `train()` has ended."""
    kept_epoch: int | None = None
    """The epoch whose weights early stopping gave back at the end; `None`: the last epoch's."""
    verdict: Verdict | None = None
    """How the run did, once `train()` has ended (`cvae.training.verdict.judge`)."""
    resumed_best_weights: dict[str, torch.Tensor] | None = None
    """The best weights that the checkpoint a run resumed from holds, for its early stopping."""

    def __init__(
        self,
        model: ConditionalVAE,
        train_data: LabelledData,
        val_data: LabelledData | None = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        lr_schedule: str = "constant",
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Scheduler | Callable[[torch.optim.Optimizer], Scheduler] | None = None,
        scheduler_interval: str = "epoch",
        max_grad_norm: float | None = None,
        beta: float = 1.0,
        warmup_epochs: float = 0,
        free_bits: float = 0.0,
        device: str | torch.device | None = None,
        seed: int | None = None,
        in_memory: bool = True,
        num_workers: int = 0,
        progress: bool | None = None,
        verbose: bool = True,
        callbacks: Sequence[Callback] = (),
        compile: bool | str = "auto",
        mixed_precision: bool | str = "auto",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        allow_changes: bool = False,
        early_stopping: EarlyStopping | bool | None = None,
        min_steps: int | None = None,
        max_steps: int | None = None,
        max_minutes: float | None = None,
    ):
        self._take_numbers(epochs, batch_size, beta, free_bits, warmup_epochs, max_grad_norm, num_workers)
        self.in_memory = in_memory
        _check_choices(lr_schedule, compile, resume, checkpoint_dir)
        checkpoint_every = check_int("checkpoint_every", checkpoint_every)
        seed = None if seed is None else check_int("seed", seed, 0)
        self.engine = Engine(device, mixed_precision)
        self.model = model.to(self.device)
        self._take_optimizer(optimizer, lr, lr_schedule, scheduler, scheduler_interval, checkpoint_dir)
        self.seed = self.engine.shared_seed() if seed is None else seed
        self.generator = torch.Generator(self.device).manual_seed(self.seed)
        self._take_data(train_data, val_data)
        checkpoints = None if checkpoint_dir is None else ModelCheckpoint(checkpoint_dir, checkpoint_every)
        callbacks = with_defaults(callbacks, progress=progress, verbose=verbose, checkpoints=checkpoints)
        self._take_callbacks(callbacks, early_stopping, min_steps=min_steps, max_steps=max_steps,
                             max_minutes=max_minutes)
        self.global_step = 0
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.history: list[dict[str, float]] = []
        if self.checkpoint_dir is not None:
            self._open_run(resume, allow_changes, verbose)
        self.verbose = verbose
        # From the whole run's steps, so that a resumed run computes as the uninterrupted one.
        self.engine.prepare(self.model, self.free_bits, compile, self.length.min_steps if self.epochs is None
                            else self.epochs * self.steps_per_epoch)

    def _take_numbers(self, epochs: int | None, batch_size: int | None, beta: float, free_bits: float,
                      warmup_epochs: float, max_grad_norm: float | None, num_workers: int) -> None:
        """The numeric settings, each checked: refused, naming it, if out of range."""
        self.epochs = None if epochs is None else check_int("epochs", epochs, 0)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size)
        self.beta, self.free_bits = check_float("beta", beta), check_float("free_bits", free_bits)
        self.warmup_epochs = check_float("warmup_epochs", warmup_epochs)
        self.max_grad_norm = None if max_grad_norm is None else check_float("max_grad_norm", max_grad_norm,
                                                                            above=True)
        self.num_workers = check_int("num_workers", num_workers, 0)

    def _take_optimizer(self, optimizer: torch.optim.Optimizer | None, lr: float | None, lr_schedule: str,
                        scheduler: Scheduler | Callable[[torch.optim.Optimizer], Scheduler] | None,
                        interval: str, checkpoint_dir: str | os.PathLike[str] | None) -> None:
        """The optimizer and scheduler, the user's or the tutorial's Adam, checked."""
        lr = None if lr is None else check_float("lr", lr, above=True)
        self.optimizer = make_optimizer(self.model, optimizer, lr, self.device)
        self.lr = self.optimizer.defaults["lr"] if optimizer is None else None
        self.lr_schedule, self.scheduler_interval = lr_schedule, interval
        self.scheduler = make_scheduler(scheduler, self.optimizer, interval, lr_schedule,
                                        checkpoints=checkpoint_dir is not None)
        if lr_schedule == "cosine" and self.epochs is None:
            raise ValueError("lr_schedule='cosine' decays over the whole run, so it needs the run's"
                             " length: give epochs (cvae train --epochs), or keep the constant rate")
        # The rates the run starts from: the cosine schedule's tops, and what a resumed run
        # goes on with when no scheduler owns them.
        self._base_lrs = [group["lr"] for group in self.optimizer.param_groups]

    def _take_data(self, train_data: LabelledData, val_data: LabelledData | None) -> None:
        """The data, checked against the model and held on the device: refused before any work."""
        self.train_data = self._prepare(train_data, "training")
        self.val_data = None if val_data is None else self._prepare(val_data, "validation")
        if self.batch_size is None:  # a run of given epochs keeps 0.1.0's batch, the tutorial's
            self.batch_size = (suited_batch_size(len(self.train_data)) if self.epochs is None  # type: ignore[arg-type]
                               else DEFAULT_BATCH_SIZE)
        if self.batch_size < self.world_size:
            raise ValueError(f"batch_size is the global batch, split between {self.world_size}"
                             f" processes; it must be at least {self.world_size}, got {self.batch_size}")
        check_step_fits(self.model, min(self.batch_size, len(self.train_data)),  # type: ignore[arg-type]
                        torch.zeros(1, *self.model.image_shape, device=self.device, dtype=self.model.dtype),
                        self.model._zero_labels(1, self.device))
        # Without validation data, active units are counted on up to 1,000 training images.
        self.probe = first(self.train_data, 1000)

    def _take_callbacks(self, callbacks: list[Callback], early_stopping: EarlyStopping | bool | None,
                        **bounds: Any) -> None:
        """The callbacks, and the run's length (`RunLength`) with its early stopping, checked."""
        self.length = RunLength.decide(self.epochs, self.steps_per_epoch, self.val_data is not None,
                                       early_stopping=early_stopping, callbacks=callbacks, **bounds)
        for stopper in self.length.stoppers:
            stopper.check(self)
        # Early stopping runs in every process, with the duties; the rest in the main one only.
        own = [c for c in callbacks if not isinstance(c, EarlyStopping)]
        self.callbacks = own if self.is_main_process else []

    def _open_run(self, resume: bool, allow_changes: bool, verbose: bool) -> None:
        """Refuse a checkpoint folder that holds another run; with `resume`, go on from it."""
        latest = open_run(self.checkpoint_dir, self.fingerprint, resume=resume,  # type: ignore[arg-type]
                          allow_changes=allow_changes, writer=self.is_main_process, model=self.model,
                          optimizer=self.optimizer, generator=self.generator, scheduler=self.scheduler)
        if not latest:
            return
        latest.restore(self.model, self.optimizer, self.generator, self.scheduler)
        self.history = latest.history
        self.resumed_best_weights = latest.part("best") or None
        if self.scheduler is None:  # the settings of now, not the checkpoint's
            for group, base in zip(self.optimizer.param_groups, self._base_lrs):
                group["lr"] = base
        if verbose and self.is_main_process:
            logger.info(f"resuming from {latest.path} (epoch {len(self.history)})")

    @property
    def is_main_process(self) -> bool:
        """True in the process that prints and writes (rank 0; the only one when alone)."""
        return self.engine.is_main_process

    @property
    def device(self) -> torch.device:
        """Where the run trains (its engine's device)."""
        return self.engine.device

    @property
    def rank(self) -> int:
        """This process's index among those that train together (0 when alone)."""
        return self.engine.rank

    @property
    def world_size(self) -> int:
        """How many processes train together (1 when alone)."""
        return self.engine.world_size

    @property
    def mixed_precision(self) -> bool:
        """Whether the forward pass runs under bfloat16 autocast (the engine's choice)."""
        return self.engine.mixed_precision

    @property
    def compiled(self) -> bool:
        """Whether the loss is compiled (with `compile="auto"`, from the run's length and device)."""
        return self.engine.compiled

    @property
    def steps_per_epoch(self) -> int:
        """Optimisation steps in an epoch: the training images over the batch size, rounded up."""
        return math.ceil(len(self.train_data) / self.batch_size)  # type: ignore[arg-type, operator]

    def stop(self, reason: str) -> None:
        """End the run after this epoch (callbacks call it); the first reason given is kept."""
        if not self.should_stop:
            self.should_stop, self.stop_reason = True, reason

    @functools.cached_property
    def fingerprint(self) -> dict[str, Any]:
        """What this run is, as its checkpoints record it: resuming compares it with theirs."""
        return {"model": self.model.config, "data": data_digest(self.train_data),
                "batch_size": self.batch_size, "lr": self.lr, "lr_schedule": self.lr_schedule,
                "beta": self.beta, "warmup_epochs": self.warmup_epochs,
                "max_grad_norm": self.max_grad_norm, "free_bits": self.free_bits,
                **describe(self.optimizer if self.lr is None else None,  # lr None: yours
                           self.scheduler, self.scheduler_interval)}

    def _prepare(self, data: LabelledData, role: str) -> Dataset:
        return prepare(data, self.model, role, self.device if self.in_memory else None)

    def train(self) -> list[dict[str, float]]:
        """Run the remaining epochs and return the history, one dict per epoch.

        Each entry has `epoch`, `loss`, `reconstruction` and `kl` (averages per training
        image, as the tutorial reports them), `lr` (the learning rate of the epoch's last
        step, of the first parameter group), with validation data `val_loss`,
        `val_nelbo`, `val_reconstruction` and `val_kl` (see `evaluate`), `active_units`
        (`cvae.evaluation.active_units` on the validation data, or on up to 1,000 training
        images: 0 means the posterior collapsed) and `seconds`. When the run ends (the
        best weights kept), a model with `after_training(batches)` gets the training data
        (a `ConditionalVAE` with `prior="fitted"` fits its prior to their codes).

        Raises:
            FloatingPointError: If the loss became NaN or infinite. The message names the
                epoch and the first bad step; the model, optimizer and scheduler are put back
                as they were at the start of that epoch, and the checkpoints already written stay.
            ValueError: If a batch read from a data set that is not held in memory is bad
                (a label outside the classes, say); the model is put back likewise.
            BlockingIOError: If another process trains into the same checkpoint folder.
        """
        # One run at a time in a checkpoint folder: another refuses, before its first epoch.
        hold = (folder_lock(self.checkpoint_dir, what="training into")
                if self.checkpoint_dir is not None and self.is_main_process else nullcontext())
        with hold:
            self.global_step = len(self.history) * self.steps_per_epoch
            schedule = self.scheduler
            if self.lr_schedule == "cosine":  # from where the run is: a resumed one goes on its curve
                schedule = cosine_schedule(self.optimizer, self._base_lrs, self.global_step,
                                           self.epochs * self.steps_per_epoch)
            interval = "step" if self.lr_schedule == "cosine" else self.scheduler_interval
            # In every process, and before the record of an epoch is final: the callbacks
            # read what they add, and the checkpoint holds the scheduler they stepped.
            self._duties = [ActiveUnits(), Scheduling(schedule, interval), *self.length.duties()]
            self.should_stop, self.stop_reason, self.kept_epoch = False, None, None
            try:
                self._call("on_train_start")
                if self.verbose and self.is_main_process and self.epochs is None:  # what the data decided
                    logger.info(f"cvae: {self.length.plan(self)}")
                while not self.should_stop and (self.epochs is None or len(self.history) < self.epochs):
                    self._train_epoch(len(self.history) + 1)
                self.length.finish(self)
                self._after_training()
                return self.history
            except BaseException:
                self.global_step = len(self.history) * self.steps_per_epoch  # the failed epoch's undone
                raise
            finally:
                self._call("on_train_end")

    def _after_training(self) -> None:
        """The model's own last step, on the training data, its best weights kept.

        A model may define `after_training(batches)` (a `ConditionalVAE` built with
        `prior="fitted"` fits its prior there); every process calls it on all the data.
        """
        hook = getattr(self.model, "after_training", None)
        if callable(hook) and self.history:
            hook(Batches(as_dataset(self.train_data), 1000))

    def _call(self, hook: str, *args: Any, duties: bool = True) -> None:
        for callback in [*(self._duties if duties else []), *self.callbacks]:
            getattr(callback, hook)(self, *args)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, int], epoch: int,
                      step: int) -> torch.Tensor:
        """One optimisation step on a batch; return its `[loss, reconstruction, kl]`, detached.

        Args:
            batch: `(x, y, m)`: this process's images and labels of the batch, on the
                device, and the whole batch's size (as `shuffled_batches` yields them).
            epoch: The epoch, counted from 1 (for the KL warm-up).
            step: The step within the epoch, counted from 0.
        """
        x, y, m = batch
        # Drawn here for the whole batch, not inside the model: a compiled step stays free
        # of generator objects, and under DDP each image gets the noise it would get in a
        # single process. The model says how many normals an image needs (`noise_dim`).
        width = getattr(self.model, "noise_dim", self.model.latent_dim)
        noise = torch.randn((m, width), generator=self.generator,
                            device=self.device)[self.rank::self.world_size]
        terms = self.engine.loss(x, y, noise, self._beta(epoch, step))
        self.optimizer.zero_grad(set_to_none=True)
        self.engine.backward(terms[0])
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self._lr = self.optimizer.param_groups[0]["lr"]  # what the epoch's record reports
        self.optimizer.step()
        self.global_step += 1
        return terms.detach()

    def _train_epoch(self, epoch: int) -> None:
        start = time.perf_counter()
        self.model.train()
        self._call("on_epoch_start", epoch)
        # Kept on the device and read once per epoch, so no step waits for the host.
        terms_of_steps: list[torch.Tensor] = []
        with restored_on_error(self.model, self.optimizer, self.generator, self.scheduler):
            batches = shuffled_batches(self.train_data, self.model, self.batch_size, self.generator,
                                       in_memory=self.in_memory, rank=self.rank,
                                       world_size=self.world_size, num_workers=self.num_workers)
            for step, batch in enumerate(batches):
                terms_of_steps.append(self.training_step(batch, epoch, step))
                self._call("on_step_end", self.global_step, terms_of_steps[-1], len(batch[0]))
            stats = self.engine.total(terms_of_steps)
            bad = self.engine.first_bad_step(stats)
            if bad is not None:
                self._fail(epoch, bad + 1, stats[bad, 0].item())
        loss, bce, kld = (stats.sum(0) / len(self.train_data)).tolist()  # type: ignore[arg-type]
        record = {"epoch": epoch, "loss": loss, "reconstruction": bce, "kl": kld, "lr": self._lr}
        if self.val_data is not None:
            self.length.before_validation(self)
            val = self.evaluate(self.val_data)
            self._call("on_validation_end", val)
            record.update({f"val_{key}": value for key, value in val.items()})
        for duty in self._duties:
            duty.on_epoch_end(self, record)
        record["seconds"] = time.perf_counter() - start
        self.history.append(record)
        self._call("on_epoch_end", record, duties=False)

    def _fail(self, epoch: int, step: int, value: float) -> None:
        kept = self.checkpoint_dir and latest_checkpoint(self.checkpoint_dir, model=self.model,
                                                         optimizer=self.optimizer, generator=self.generator)
        where = f"; the last good checkpoint, {kept}, is kept (resume=True goes on from it)" if kept else ""
        raise FloatingPointError(
            f"the loss became {value} in epoch {epoch}, at step {step} of {self.steps_per_epoch}; the"
            f" model is back to where it was after epoch {epoch - 1}{where}. Lower the learning rate"
            f" or check the data for extreme values")

    def _beta(self, epoch: int, step: int) -> float | torch.Tensor:
        if not self.warmup_epochs:
            return self.beta
        done = ((epoch - 1) * self.steps_per_epoch + step + 1) / (self.warmup_epochs * self.steps_per_epoch)
        # A tensor, so that a compiled step does not recompile for every new value.
        return torch.tensor(self.beta * min(1.0, done), device=self.device)

    def evaluate(self, data: LabelledData, batch_size: int = 1000) -> dict[str, float]:
        """The negative ELBO per image and its terms on `data`, as `cvae.evaluation.elbo` gives it.

        One draw of `z` per image, from a generator seeded from the Trainer's seed, so the
        figure is the same each time for the same model; `loss` weights the KL by `beta`,
        as the training loss does.

        Args:
            data: Labelled data, in any form the Trainer accepts.
            batch_size: Images evaluated at a time.

        Returns:
            `{"loss": ..., "nelbo": ..., "reconstruction": ..., "kl": ...}`, each in nats
            per image.
        """
        if data is not self.train_data and data is not self.val_data:
            data = self._prepare(data, "evaluation")
        # Every process evaluates all of `data` on its own: no collective call that would
        # wait forever if only rank 0 evaluates.
        generator = torch.Generator(self.device).manual_seed(self.seed + 1)
        terms = elbo(self.model, data, batch_size, generator)
        return {"loss": terms["reconstruction"] + self.beta * terms["kl"], **terms}

