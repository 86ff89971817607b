"""`Trainer`: the tutorial's training loop, for any `ConditionalVAE` and labelled data."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .data import LabelledData, LabelledImages, as_dataset, to_tensors
from .loss import vae_loss
from .model import ConditionalVAE

__all__ = ["Trainer"]


class Trainer:
    """Train a `ConditionalVAE` with the tutorial's recipe: Adam, `BCE(sum) + beta * KLD`.

    When `in_memory` is True (the default), the data set is read once into tensors on the
    training device and shuffled by index each epoch, so no epoch pays for a DataLoader or
    per-image transforms, and nothing waits on the device between steps.

    Args:
        model: The model to train (moved to `device`).
        train_data: A map-style dataset of `(image, label)` with images as `(C, H, W)`
            tensors in [0, 1], or a pair of tensors `(images, labels)`.
        val_data: Optional validation data, in the same forms; evaluated after each epoch.
        epochs: Number of passes over the training data.
        batch_size: Images per optimisation step.
        lr: Adam's learning rate.
        beta: Weight of the KL term (1.0 is the ELBO).
        device: Where to train; default `"cuda"` when available, else `"cpu"`.
        seed: Seed for shuffling and the noise in `z`; the same seed gives the same numbers
            on the CPU. `None` draws one from torch's global generator.
        in_memory: Hold the data as tensors on the device (fast). Set False for datasets
            too big for memory or with random augmentations, which are read through a
            `DataLoader` every epoch.
        num_workers: DataLoader workers when `in_memory` is False.
        progress: Show a progress bar; default: only when stderr is a terminal.
        verbose: Print the tutorial's `====> Epoch: N Average loss: X` line per epoch.
        compile: Compile the loss computation with `torch.compile` (forward and backward),
            with the same loss curve. It pays seconds of compilation for every new Trainer
            and needs a C++ compiler, so it is off by default; on a 2-core CPU its later
            epochs ran faster (see the benchmarks).
        mixed_precision: Run the forward pass under bfloat16 autocast. Fast on GPUs and
            CPUs with native bfloat16 (AMX, AVX-512 BF16); very slow on CPUs without it.
        checkpoint_dir: Where to write checkpoints (weights, optimizer and random state,
            history; safetensors and JSON), after every `checkpoint_every` epochs and the
            last. `None` writes none.
        checkpoint_every: Epochs between checkpoints.
        resume: Continue from the newest complete checkpoint in `checkpoint_dir`, if any:
            a run killed at any point and resumed ends with the same weights as one that
            was never interrupted (on the CPU, with the same seed).

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
        beta: float = 1.0,
        device: str | torch.device | None = None,
        seed: int | None = None,
        in_memory: bool = True,
        num_workers: int = 0,
        progress: bool | None = None,
        verbose: bool = True,
        compile: bool = False,
        mixed_precision: bool = False,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
    ):
        if epochs < 0 or batch_size < 1:
            raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.epochs, self.batch_size, self.beta = epochs, batch_size, beta
        self.in_memory, self.num_workers = in_memory, num_workers
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.verbose = verbose
        self.mixed_precision = mixed_precision
        # dynamic=False: one graph for full batches, one more for the last, short one.
        self._loss = torch.compile(self._terms, dynamic=False) if compile else self._terms
        self.seed = int(torch.randint(2**62, ()).item()) if seed is None else seed
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
        if resume:
            if self.checkpoint_dir is None:
                raise ValueError("resume=True needs a checkpoint_dir to resume from")
            latest = latest_checkpoint(self.checkpoint_dir)
            if latest is not None:
                self.history = load_checkpoint(latest, model=self.model, optimizer=self.optimizer,
                                               generator=self.generator)
                if verbose:
                    print(f"resuming from {latest} (epoch {len(self.history)})", flush=True)

    def _prepare(self, data: LabelledData, role: str) -> Dataset:
        """Check the data against the model and, in memory mode, move it to the device."""
        dataset = as_dataset(data)
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ValueError(f"the {role} data set is empty")
        if not self.in_memory:
            x, y = dataset[0]
            self._check(torch.as_tensor(x)[None], torch.as_tensor(y).reshape(1), role)
            return dataset
        tensors = to_tensors(dataset)
        self._check(tensors.images, tensors.labels, role)
        return LabelledImages(tensors.images.to(self.device, torch.float32),
                              tensors.labels.to(self.device), tensors.class_names)

    def _check(self, images: torch.Tensor, labels: torch.Tensor, role: str) -> None:
        model = self.model
        if tuple(images.shape[1:]) != model.image_shape:
            raise ValueError(f"{role} images have shape {tuple(images.shape[1:])}, but the model"
                             f" takes {model.image_shape} (C, H, W)")
        if not images.dtype.is_floating_point:
            raise TypeError(f"{role} images must be float tensors in [0, 1], got {images.dtype};"
                            f" divide uint8 images by 255")
        lo, hi = images.min().item(), images.max().item()
        if lo < 0 or hi > 1:
            raise ValueError(f"{role} images must lie in [0, 1] for the Bernoulli likelihood,"
                             f" got values from {lo:.3g} to {hi:.3g}; rescale them, for example"
                             f" with transforms.ToTensor() or x / 255")
        if labels.min().item() < 0 or labels.max().item() >= model.num_classes:
            raise ValueError(f"{role} labels run from {labels.min().item()} to"
                             f" {labels.max().item()}, but the model has classes"
                             f" 0..{model.num_classes - 1}")

    def _batches(self, dataset: Dataset, shuffle: bool, batch_size: int,
                 generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.in_memory:  # _prepare made it a LabelledImages on the device
            n = len(dataset)
            order = (torch.randperm(n, generator=generator, device=self.device) if shuffle
                     else torch.arange(n, device=self.device))
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                yield dataset.images[idx], dataset.labels[idx]
            return
        # DataLoader shuffling needs a CPU generator; seed it from ours.
        cpu_gen = torch.Generator().manual_seed(
            int(torch.randint(2**62, (), generator=generator, device=self.device)))
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=cpu_gen,
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda")
        for x, y in loader:
            yield (x.to(self.device, torch.float32, non_blocking=True),
                   torch.as_tensor(y).to(self.device, non_blocking=True))

    def _progress(self, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False,
                    dynamic_ncols=True)

    def train(self) -> list[dict[str, float]]:
        """Run the remaining epochs and return the history, one dict per epoch.

        Each entry has `epoch`, `loss`, `reconstruction` and `kl` (averages per training
        image, as the tutorial reports them), `seconds`, and with validation data
        `val_loss`, `val_reconstruction` and `val_kl`.
        """
        model, n = self.model, len(self.train_data)  # type: ignore[arg-type]
        steps = math.ceil(n / self.batch_size)
        for epoch in range(len(self.history) + 1, self.epochs + 1):
            start = time.perf_counter()
            model.train()
            # Summed on the device, read once per epoch: no host sync per step.
            sums = torch.zeros(3, device=self.device)
            with self._progress(steps, f"epoch {epoch}/{self.epochs}") as bar:
                for x, y in self._batches(self.train_data, True, self.batch_size,
                                          self.generator):
                    # Drawn here, not inside the model, so that a compiled step stays
                    # free of generator objects; the draws are the same either way.
                    noise = torch.randn((len(x), model.latent_dim), generator=self.generator,
                                        device=self.device)
                    terms = self._loss(x, y, noise)
                    self.optimizer.zero_grad(set_to_none=True)
                    terms[0].backward()
                    self.optimizer.step()
                    sums += terms.detach()
                    bar.update()
            loss, bce, kld = (sums / n).tolist()
            if not math.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} in epoch {epoch}; lower the"
                                         f" learning rate or check the data")
            record = {"epoch": epoch, "loss": loss, "reconstruction": bce, "kl": kld}
            if self.val_data is not None:
                val = self.evaluate(self.val_data)
                record.update({f"val_{key}": value for key, value in val.items()})
            record["seconds"] = time.perf_counter() - start
            self.history.append(record)
            if self.checkpoint_dir is not None and (
                    epoch % self.checkpoint_every == 0 or epoch == self.epochs):
                save_checkpoint(self.checkpoint_dir, model=model, optimizer=self.optimizer,
                                generator=self.generator, history=self.history)
            if self.verbose:
                line = f"====> Epoch: {epoch} Average loss: {loss:.4f}"
                if self.val_data is not None:
                    line += f"  Validation loss: {record['val_loss']:.4f}"
                print(line, flush=True)
        return self.history

    def _terms(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The loss and its two terms for one batch, stacked: `[loss, reconstruction, kl]`."""
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.mixed_precision):
            logits, mu, logvar = self.model(x, y, noise=noise, return_logits=True)
        terms = vae_loss(logits.float(), x, mu.float(), logvar.float(), self.beta, logits=True)
        return torch.stack(terms)

    @torch.inference_mode()
    def evaluate(self, data: LabelledData, batch_size: int = 1000) -> dict[str, float]:
        """Average loss per image, and its two terms, on `data` (one draw of `z` per image).

        The draws use a generator seeded from the Trainer's seed, so the figure is the same
        each time for the same model.

        Args:
            data: Labelled data, in any form the Trainer accepts.
            batch_size: Images evaluated at a time.

        Returns:
            `{"loss": ..., "reconstruction": ..., "kl": ...}`, each in nats per image.
        """
        if data is not self.train_data and data is not self.val_data:
            data = self._prepare(data, "evaluation")
        self.model.eval()
        generator = torch.Generator(self.device).manual_seed(self.seed + 1)
        sums = torch.zeros(3, device=self.device)
        for x, y in self._batches(data, False, batch_size, generator):
            logits, mu, logvar = self.model(x, y, generator=generator, return_logits=True)
            sums += torch.stack(vae_loss(logits, x, mu, logvar, self.beta, logits=True))
        loss, bce, kld = (sums / len(data)).tolist()  # type: ignore[arg-type]
        return {"loss": loss, "reconstruction": bce, "kl": kld}
