"""Training checkpoints: weights, optimizer state, random state and history, with no pickle.

A checkpoint is a folder `epoch-NNNN/` holding `state.safetensors` (every tensor: the
model's weights, the optimizer's state and the random generator's state, with a checksum)
and `trainer.json` (the epoch, the history, the optimizer's settings and the run's
fingerprint: the model's config, a digest of the data and the training settings). It is
written under a temporary name, flushed to disk and renamed into place, so a run killed at
any moment leaves only complete checkpoints behind; resuming reads one whole and checks
every part of it first (`cvae.training._checkpoint_read`), so a checkpoint damaged later
is skipped for the one before it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from cvae._checks import short
from cvae._files import folder_lock, fsync_folder, write_text
from cvae.hub._safetensors import save_tensors
from cvae.training._checkpoint_read import (
    META_NAME,
    STATE_NAME,
    Checkpoint,
    DamagedCheckpoint,
    check_fits,
    read_checkpoint,
)

__all__ = ["save_checkpoint", "latest_checkpoint", "latest", "read_fingerprint", "checkpoints", "open_run",
           "Checkpoint", "DamagedCheckpoint", "read_checkpoint"]

_PATTERN = re.compile(r"epoch-(\d+)")
logger = logging.getLogger(__name__)


def save_checkpoint(folder: str | os.PathLike[str], *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    history: list[dict[str, float]], keep: int = 2,
                    fingerprint: dict[str, Any] | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    best_weights: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the checkpoint of the epoch that `history` ends with, atomically.

    Args:
        folder: The checkpoints folder (created if missing).
        model: The model being trained.
        optimizer: Its optimizer.
        generator: The random generator of shuffling and noise.
        history: The epochs so far (the Trainer's history).
        keep: How many of the newest checkpoints to keep; older ones are deleted.
        fingerprint: What the run is (model config, data digest, settings), which resuming
            compares with its own.
        scheduler: The learning-rate scheduler, if any; its state must be JSON data.
        best_weights: The best epoch's weights, as early stopping keeps them, if any.

    Returns:
        The checkpoint's folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    epoch = len(history)
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    scalars: dict[str, Any] = {}
    for index, state in opt["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    tensors["generator"] = generator.get_state()
    tensors.update({f"best.{k}": v for k, v in (best_weights or {}).items()})
    meta = {"epoch": epoch, "history": history, "param_groups": opt["param_groups"],
            "optimizer_scalars": scalars, "fingerprint": fingerprint,
            "scheduler": None if scheduler is None else scheduler.state_dict()}
    final, tmp = folder / f"epoch-{epoch:04d}", folder / f".epoch-{epoch:04d}.tmp"
    for stale in folder.glob(".epoch-*.tmp"):  # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir()
    save_tensors(tensors, tmp / STATE_NAME)
    write_text(tmp / META_NAME, json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)  # the checkpoint appears whole, or not at all
    fsync_folder(folder)
    for old in checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(folder: str | os.PathLike[str]) -> list[Path]:
    """The checkpoints in `folder` with both their files, oldest first (none checked)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("epoch-*") if _PATTERN.fullmatch(p.name)
             and (p / STATE_NAME).is_file() and (p / META_NAME).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(folder: str | os.PathLike[str], *, model: torch.nn.Module | None = None,
                      optimizer: torch.optim.Optimizer | None = None,
                      generator: torch.Generator | None = None) -> Path | None:
    """The newest intact checkpoint in `folder`, or `None` if there is none.

    Every part of each is checked (see `cvae.training._checkpoint_read`), against the
    model, optimizer and generator where given; each newer one that is damaged is skipped,
    with a warning that names it and says why.
    """
    found = latest(folder, model=model, optimizer=optimizer, generator=generator)
    return None if found is None else found.path


def latest(folder: str | os.PathLike[str], **like: Any) -> Checkpoint | None:
    """The newest intact checkpoint in `folder`, read whole (see `latest_checkpoint`)."""
    for path in reversed(checkpoints(folder)):
        try:
            return read_checkpoint(path, **like)
        except DamagedCheckpoint as err:
            logger.warning(f"cvae: skipping the damaged checkpoint {path}: {err}")
    return None


def read_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The fingerprint a checkpoint was written with (`None` for checkpoints without one)."""
    return read_checkpoint(path).fingerprint


def open_run(folder: str | os.PathLike[str], fingerprint: dict[str, Any], *, resume: bool,
             allow_changes: bool = False, writer: bool = True, **like: Any) -> Checkpoint | None:
    """Check a checkpoint folder before the first epoch; return the checkpoint to resume from.

    Refuses, before any work: a folder that another run is training into, one that cannot
    be written, one that holds an earlier run's checkpoints when `resume` is False, and a
    checkpoint whose fingerprint differs from `fingerprint` (another model always; other
    data or settings unless `allow_changes`). Only the `writer` (rank 0 of several
    processes) checks the lock and the permissions. The checkpoint returned was read whole
    and checked against the run's `model`, `optimizer`, `generator` and `scheduler` (given
    in `like`); newer ones that failed were skipped, each with a warning saying why.

    Raises:
        BlockingIOError: If another process trains into the folder.
        OSError: If the folder cannot be created or written.
        ValueError: If the folder holds another run, or no intact checkpoint.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if writer:
            write_text(folder / ".cvae-write-test", "")
            (folder / ".cvae-write-test").unlink()
    except OSError as err:
        raise OSError(f"cannot write checkpoints to {folder}: {err.strerror or err}") from None
    if writer:
        with folder_lock(folder, what="training into"):
            pass  # held now by another run: refused before the first epoch
    found = checkpoints(folder)
    if found and not resume:
        raise ValueError(f"{folder} holds the checkpoints of an earlier run (up to"
                         f" {found[-1].name}); resume it (resume=True, cvae train --resume), or"
                         f" train into an empty folder")
    for path in reversed(found if resume else []):
        try:
            # Whole, then this run's: a checkpoint of another model is refused as one, not
            # skipped as damaged for its shapes.
            checkpoint = read_checkpoint(path)
            _check_fingerprint(checkpoint, fingerprint, allow_changes)
            check_fits(checkpoint, **like)
            return checkpoint
        except DamagedCheckpoint as err:
            logger.warning(f"cvae: skipping the damaged checkpoint {path}: {err}")
    if found:
        raise ValueError(f"no checkpoint in {folder} is intact, so the run cannot resume;"
                         f" move the folder away to start again")
    return None


def _check_fingerprint(checkpoint: Checkpoint, fingerprint: dict[str, Any], allow_changes: bool) -> None:
    """Refuse a checkpoint of another model, or of other data or settings unless allowed."""
    saved = checkpoint.fingerprint or {}
    changed = [f"{key}: {short(saved[key])} there, {short(value)} here"
               for key, value in fingerprint.items() if key in saved and saved[key] != value
               and key != "model"]
    old_model, model = saved.get("model") or {}, fingerprint.get("model") or {}
    # Settings the checkpoint does not record came with a later version, whose defaults keep
    # the earlier behaviour (as when an older model folder loads): they are not compared.
    other_model = [f"{key}: {short(old_model.get(key))} there, {short(model.get(key))} here"
                   for key in sorted(old_model)
                   if "model" in saved and old_model.get(key) != model.get(key)]
    changed = other_model or changed
    if other_model or (changed and not allow_changes):
        what = "another model" if other_model else "other data or settings"
        advice = ("resume with the model settings it was trained with, or use a new checkpoint"
                  " folder") if other_model else ("resume with the same ones, or pass"
                  " allow_changes=True (cvae train --allow-changes) to go on with the new ones")
        raise ValueError(f"the checkpoint {checkpoint.path} was made with {what}:"
                         f" {'; '.join(changed)}; {advice}")


@contextmanager
def restored_on_error(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                      generator: torch.Generator,
                      scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> Iterator[None]:
    """Copy, in memory, everything a training epoch changes; put it back if the block fails.

    On bad data or a NaN loss (`ValueError`, `TypeError`, `FloatingPointError`) the model,
    optimizer, generator and scheduler are restored, then the error goes on.
    """
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state, gen_state = copy.deepcopy(optimizer.state_dict()), generator.get_state()
    sched_state = None if scheduler is None else copy.deepcopy(scheduler.state_dict())
    try:
        yield
    except (ValueError, TypeError, FloatingPointError):
        model.load_state_dict(state)
        optimizer.load_state_dict(opt_state)
        generator.set_state(gen_state)
        if scheduler is not None:
            scheduler.load_state_dict(sched_state)
        raise
