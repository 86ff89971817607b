"""`Trainer`: the tutorial's training loop, for any `ConditionalVAE` and labelled data."""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .checkpoint import latest_checkpoint, load_checkpoint, open_run, restored_on_error, save_checkpoint
from .config import check_float, check_int, short
from .devices import use_bfloat16
from .distributed import rank, setup, world_size
from .files import folder_lock
from .labelled import LabelledData, LabelledImages, class_names_of, data_digest, to_tensors
from .metrics import elbo
from .model import ConditionalVAE
from .sources import as_dataset

__all__ = ["Trainer"]


class _Objective(nn.Module):
    """The model's loss as a module's forward: what DistributedDataParallel can wrap."""

    def __init__(self, model: ConditionalVAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor,
                beta: float | torch.Tensor) -> torch.Tensor:
        return torch.stack(self.model.loss(x, y, noise=noise, beta=beta))


class Trainer:
    """Train a `ConditionalVAE` with the tutorial's recipe: Adam on the model's own loss.

    The loss is `model.loss` (the tutorial's `BCE(sum) + beta * KLD` for the default
    likelihood), so the Trainer works the same for every likelihood and backbone. The data
    are held on the device and shuffled by index (`in_memory`), so no epoch pays for a
    DataLoader or per-image transforms, and nothing waits on the device between steps.

    Args:
        model: The model to train (moved to `device`).
        train_data: A map-style dataset of `(image, label)` with images as `(C, H, W)`
            tensors in [0, 1], a pair of tensors `(images, labels)`, or a Hugging Face
            `datasets.Dataset`. Its class names become the model's if it has none.
        val_data: Optional validation data, in the same forms; evaluated after each epoch.
        epochs: Number of passes over the training data.
        batch_size: Images per optimisation step.
        lr: Adam's learning rate.
        lr_schedule: `"constant"` (the tutorial's) or `"cosine"`: from `lr` down to 0 along a
            half cosine over all the epochs, updated every step (Loshchilov and Hutter 2017).
        beta: Weight of the KL term (1.0 is the ELBO).
        warmup_epochs: Raise the KL weight from 0 to `beta` over this many epochs, step by
            step, against early posterior collapse (Bowman et al. 2016); the reported loss
            uses the weight of each step. 0 turns it off.
        device: Where to train; default `"cuda"` when available, else `"cpu"`.
        seed: Seed for shuffling and the noise in `z` (the same numbers on the CPU for the
            same seed); `None` draws one from torch's global generator.
        in_memory: Hold the data as tensors on the device (fast). Set False for datasets
            too big for memory or with random augmentations, read by a `DataLoader`.
        num_workers: DataLoader workers when `in_memory` is False.
        progress: Show a progress bar; default: only when stderr is a terminal.
        verbose: Print the tutorial's `====> Epoch: N Average loss: X` line per epoch.
        compile: Compile the loss with `torch.compile` (same loss curve); it costs seconds
            per new Trainer and needs a C++ compiler, so it is off by default.
        mixed_precision: Run the forward pass under bfloat16 autocast (the loss is still
            summed in float32). `"auto"` (the default) does on CPUs that compute in
            bfloat16 natively (AMX, AVX-512 BF16), where it trains faster to the same loss
            curve; not on GPUs, where these small models wait on kernel launches, nor on
            other CPUs, which emulate bfloat16 (several times slower). See
            `cvae.devices.use_bfloat16`. `False` keeps float32; `True` forces bfloat16.
        checkpoint_dir: Where to write checkpoints (weights, optimizer and random state,
            history; safetensors and JSON), after every `checkpoint_every` epochs and the
            last. `None` writes none.
        checkpoint_every: Epochs between checkpoints.
        resume: Continue from the newest intact checkpoint in `checkpoint_dir`, if any:
            a run killed at any point and resumed ends with the same weights as one that
            was never interrupted (on the CPU, with the same seed). A damaged newer
            checkpoint is skipped with a warning. Without `resume`, a `checkpoint_dir` that
            holds checkpoints is refused: a folder belongs to one run.
        allow_changes: With `resume`, go on from a checkpoint made with other data or
            training settings (batch size, learning rate, schedule, beta, warm-up), with the
            new ones; without it such a checkpoint is refused, naming what differs. A
            checkpoint of another model is always refused.

    Started by `torchrun --nproc_per_node N`, the same script trains with
    `DistributedDataParallel`: `batch_size` is the global batch, each image is seen once per
    epoch, losses, weights and history match one process with the same seed (up to
    rounding, coarser in bfloat16), and only rank 0 (`is_main_process`) prints and writes checkpoints.

    Example:
        ```python
        trainer = Trainer(ConditionalVAE(), load_dataset("mnist"), epochs=10)
        history = trainer.train()
        history[-1]["loss"]  # average loss per training image in the last epoch
        ```
    """

    def __init__(
        self,
        model: ConditionalVAE,
        train_data: LabelledData,
        val_data: LabelledData | None = None,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        beta: float = 1.0,
        warmup_epochs: float = 0,
        device: str | torch.device | None = None,
        seed: int | None = None,
        in_memory: bool = True,
        num_workers: int = 0,
        progress: bool | None = None,
        verbose: bool = True,
        compile: bool = False,
        mixed_precision: bool | str = "auto",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        allow_changes: bool = False,
    ):
        epochs, batch_size = check_int("epochs", epochs, 0), check_int("batch_size", batch_size)
        lr, beta = check_float("lr", lr, above=True), check_float("beta", beta)
        warmup_epochs = check_float("warmup_epochs", warmup_epochs)
        checkpoint_every = check_int("checkpoint_every", checkpoint_every)
        num_workers = check_int("num_workers", num_workers, 0)
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {short(lr_schedule)}")
        if seed is not None:
            seed = check_int("seed", seed, 0)
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs a checkpoint_dir to resume from")
        self.device = setup(device)
        self.rank, self.world_size = rank(), world_size()
        if batch_size < self.world_size:
            raise ValueError(f"batch_size is the global batch, split between {self.world_size}"
                             f" processes; it must be at least {self.world_size}, got {batch_size}")
        self.model = model.to(self.device)
        self.epochs, self.batch_size, self.beta = epochs, batch_size, beta
        self.lr, self.lr_schedule = lr, lr_schedule
        self.warmup_epochs = warmup_epochs
        self.in_memory, self.num_workers = in_memory, num_workers
        self.progress = (sys.stderr.isatty() if progress is None else progress) and self.is_main_process
        self.verbose = verbose and self.is_main_process
        self.mixed_precision = use_bfloat16(mixed_precision, self.device)
        # dynamic=False: one graph for full batches, one more for the last, short one.
        self._loss = torch.compile(self._terms, dynamic=False) if compile else self._terms
        if seed is None:
            drawn = torch.randint(2**62, (), device=self.device)
            if self.world_size > 1:  # every process must shuffle and draw noise alike
                torch.distributed.broadcast(drawn, src=0)
            seed = int(drawn.item())
        self.seed = seed
        self.generator = torch.Generator(self.device).manual_seed(self.seed)
        # The fused kernel does Adam's whole update in one pass over the parameters: the
        # same arithmetic as the default in far fewer kernel launches, which on a CPU is a
        # large share of an MLP's step.
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr,
                                          fused=self.device.type in ("cpu", "cuda"))
        self.train_data = self._prepare(train_data, "training")
        self.val_data = None if val_data is None else self._prepare(val_data, "validation")
        self.history: list[dict[str, float]] = []
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        latest = self.checkpoint_dir and open_run(self.checkpoint_dir, self.fingerprint, resume=resume,
                                                  allow_changes=allow_changes, writer=self.is_main_process)
        if latest:
            self.history = load_checkpoint(latest, model=self.model, optimizer=self.optimizer,
                                           generator=self.generator)
            for group in self.optimizer.param_groups:  # the settings of now, not the checkpoint's
                group["lr"] = lr
            if self.verbose:
                print(f"resuming from {latest} (epoch {len(self.history)})", flush=True)
        # DDP copies rank 0's weights to the others here, and averages gradients in backward.
        self._objective: nn.Module = _Objective(self.model)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self._objective = DistributedDataParallel(
                self._objective, device_ids=None if self.device.type == "cpu" else [self.device])

    @property
    def is_main_process(self) -> bool:
        """True in the process that prints and writes (rank 0; the only one when alone)."""
        return self.rank == 0

    @functools.cached_property
    def fingerprint(self) -> dict[str, Any]:
        """What this run is, as its checkpoints record it: resuming compares it with theirs."""
        return {"model": self.model.config, "data": data_digest(self.train_data),
                "batch_size": self.batch_size, "lr": self.lr, "lr_schedule": self.lr_schedule,
                "beta": self.beta, "warmup_epochs": self.warmup_epochs}

    def _prepare(self, data: LabelledData, role: str) -> Dataset:
        """Check the data against the model and, in memory mode, move it to the device."""
        dataset = as_dataset(data)
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ValueError(f"the {role} data set is empty")
        self.model.match_classes(class_names_of(dataset), role)  # fills the names of a new model
        if not self.in_memory:
            x, y = dataset[0]
            self.model.check_data(torch.as_tensor(x)[None], torch.as_tensor(y).reshape(1), role)
            return dataset
        tensors = to_tensors(dataset)
        self.model.check_data(tensors.images, tensors.labels, role)
        return LabelledImages(tensors.images.to(self.device, torch.float32),
                              tensors.labels.to(self.device), tensors.class_names)

    def _batches(self, dataset: Dataset, shuffle: bool, batch_size: int,
                 generator: torch.Generator, shard: bool = True
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """Yield `(x, y, m)`: this process's share of each batch, and the whole batch's size.

        Every process draws the same order from the same generator and takes every
        `world_size`-th image of each batch, so each image is seen once per epoch.
        """
        n = len(dataset)  # type: ignore[arg-type]
        r, w = (self.rank, self.world_size) if shard else (0, 1)
        order = (torch.randperm(n, generator=generator, device=self.device) if shuffle
                 else torch.arange(n, device=self.device))
        starts = range(0, n, batch_size)
        if self.in_memory:  # _prepare made it a LabelledImages on the device
            for start in starts:
                idx = order[start:start + batch_size][r::w]
                yield dataset.images[idx], dataset.labels[idx], min(batch_size, n - start)
            return
        shares = [order[start:start + batch_size][r::w].tolist() for start in starts]
        loader = iter(DataLoader(dataset, batch_sampler=[s for s in shares if s],
                                 num_workers=self.num_workers,
                                 pin_memory=self.device.type == "cuda"))
        for start, share in zip(starts, shares):
            # A process whose share of a short last batch is empty still takes part in
            # the step (DDP's gradient exchange needs every process), with no images.
            x, y = next(loader) if share else (torch.empty(0, *self.model.image_shape),
                                               torch.empty(0, dtype=torch.long))
            if share:  # read only now, so checked only now: before the step that would use it
                self.model.check_data(torch.as_tensor(x), torch.as_tensor(y),
                                      f"the batch from item {start}:")
            yield (x.to(self.device, torch.float32, non_blocking=True),
                   torch.as_tensor(y).to(self.device, non_blocking=True),
                   min(batch_size, n - start))

    def _progress(self, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False,
                    dynamic_ncols=True)

    def train(self) -> list[dict[str, float]]:
        """Run the remaining epochs and return the history, one dict per epoch.

        Each entry has `epoch`, `loss`, `reconstruction` and `kl` (averages per training
        image, as the tutorial reports them), `seconds`, and with validation data
        `val_loss`, `val_nelbo`, `val_reconstruction` and `val_kl` (see `evaluate`).

        Raises:
            FloatingPointError: If the loss became NaN or infinite. The message names the
                epoch and the first bad step; the model and optimizer are put back as they
                were at the start of that epoch, and the checkpoints already written stay.
            ValueError: If a batch read from a data set that is not held in memory is bad
                (a label outside the classes, say); the model is put back likewise.
            BlockingIOError: If another process trains into the same checkpoint folder.
        """
        # One run at a time in a checkpoint folder: another refuses, before its first epoch.
        hold = (folder_lock(self.checkpoint_dir, what="training into")
                if self.checkpoint_dir is not None and self.is_main_process else nullcontext())
        with hold:
            return self._train()

    def _train(self) -> list[dict[str, float]]:
        model, n = self.model, len(self.train_data)  # type: ignore[arg-type]
        steps = math.ceil(n / self.batch_size)
        for epoch in range(len(self.history) + 1, self.epochs + 1):
            start = time.perf_counter()
            self.model.train()
            # Kept on the device and read once per epoch, so no step waits for the host.
            terms_of_steps: list[torch.Tensor] = []
            with self._progress(steps, f"epoch {epoch}/{self.epochs}") as bar, \
                    restored_on_error(self.model, self.optimizer, self.generator):
                batches = self._batches(self.train_data, True, self.batch_size, self.generator)
                for step, (x, y, m) in enumerate(batches):
                    # Drawn here for the whole batch, not inside the model: a compiled step
                    # stays free of generator objects, and under DDP each image gets the
                    # noise it would get in a single process.
                    noise = torch.randn((m, model.latent_dim), generator=self.generator,
                                        device=self.device)[self.rank::self.world_size]
                    if self.lr_schedule == "cosine":
                        self._set_lr(epoch, step, steps)
                    terms = self._loss(x, y, noise, self._beta(epoch, step, steps))
                    self.optimizer.zero_grad(set_to_none=True)
                    # DDP averages gradients over processes; the loss is a sum over images,
                    # so scaling it by their number gives the gradient of the whole batch.
                    (terms[0] * self.world_size if self.world_size > 1 else terms[0]).backward()
                    self.optimizer.step()
                    terms_of_steps.append(terms.detach())
                    bar.update()
                stats = torch.stack(terms_of_steps)  # (steps, 3)
                if self.world_size > 1:
                    torch.distributed.all_reduce(stats)
                bad = (~torch.isfinite(stats[:, 0])).nonzero()
                if len(bad):
                    self._fail(epoch, int(bad[0]) + 1, steps, stats[int(bad[0]), 0].item())
            loss, bce, kld = (stats.sum(0) / n).tolist()
            record = {"epoch": epoch, "loss": loss, "reconstruction": bce, "kl": kld}
            if self.val_data is not None:
                val = self.evaluate(self.val_data)
                record.update({f"val_{key}": value for key, value in val.items()})
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            if self.checkpoint_dir is not None and self.is_main_process and (
                    epoch % self.checkpoint_every == 0 or epoch == self.epochs):
                save_checkpoint(self.checkpoint_dir, model=model, optimizer=self.optimizer,
                                generator=self.generator, history=self.history,
                                fingerprint=self.fingerprint)
            if self.verbose:
                line = f"====> Epoch: {epoch} Average loss: {loss:.4f}"
                if self.val_data is not None:
                    line += f"  Validation loss: {record['val_loss']:.4f}"
                print(line, flush=True)
        return self.history

    def _fail(self, epoch: int, step: int, steps: int, value: float) -> None:
        kept = self.checkpoint_dir and latest_checkpoint(self.checkpoint_dir)
        where = f"; the last good checkpoint, {kept}, is kept (resume=True goes on from it)" if kept else ""
        raise FloatingPointError(
            f"the loss became {value} in epoch {epoch}, at step {step} of {steps}; the model is"
            f" back to where it was after epoch {epoch - 1}{where}. Lower the learning rate or"
            f" check the data for extreme values")

    def _set_lr(self, epoch: int, step: int, steps: int) -> None:
        # From the epoch and step alone, so that a resumed run follows the same curve.
        done = ((epoch - 1) * steps + step) / (self.epochs * steps)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * 0.5 * (1 + math.cos(math.pi * done))

    def _beta(self, epoch: int, step: int, steps: int) -> float | torch.Tensor:
        if not self.warmup_epochs:
            return self.beta
        done = ((epoch - 1) * steps + step + 1) / (self.warmup_epochs * steps)
        # A tensor, so that a compiled step does not recompile for every new value.
        return torch.tensor(self.beta * min(1.0, done), device=self.device)

    def _terms(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor,
               beta: float | torch.Tensor) -> torch.Tensor:
        """The loss and its two terms for one batch, stacked: `[loss, reconstruction, kl]`."""
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.mixed_precision):
            return self._objective(x, y, noise, beta)

    def evaluate(self, data: LabelledData, batch_size: int = 1000) -> dict[str, float]:
        """The negative ELBO per image and its terms on `data`, as `cvae.metrics.elbo` gives it.

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

