"""Training checkpoints: weights, optimizer state, random state and history, with no pickle.

A checkpoint is a folder `epoch-NNNN/` holding `state.safetensors` (every tensor: the
model's weights, the optimizer's state and the random generator's state, with a checksum)
and `trainer.json` (the epoch, the history, the optimizer's settings and the run's
fingerprint: the model's config, a digest of the data and the training settings). It is
written under a temporary name, flushed to disk and renamed into place, so a run killed at
any moment leaves only complete checkpoints behind; `latest_checkpoint` also checks them,
so a checkpoint damaged later is skipped for the one before it.
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
from cvae.hub._weights import load_tensors, read_header, save_tensors

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "checkpoint_problem",
           "read_fingerprint", "read_best_weights", "checkpoints", "open_run"]

STATE_NAME = "state.safetensors"
META_NAME = "trainer.json"
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


def _meta(path: Path) -> dict[str, Any]:
    meta = json.loads((path / META_NAME).read_text(encoding="utf-8"))
    if (not isinstance(meta, dict) or not {"epoch", "history", "param_groups"} <= meta.keys()
            or not isinstance(meta["history"], list) or meta["epoch"] != len(meta["history"])
            or not all(isinstance(h, dict) for h in meta["history"])):
        raise ValueError(f"{META_NAME} is not a checkpoint's: its epoch, history or optimizer"
                         f" settings are missing or disagree")
    return meta


def checkpoint_problem(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with a checkpoint, or `None` if it reads whole and its weights are finite."""
    path = Path(path)
    try:
        _meta(path)
        tensors = load_tensors(read_header(path / STATE_NAME))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return str(err).splitlines()[0]
    bad = [k for k, v in tensors.items() if k.startswith("model.") and not torch.isfinite(v).all()]
    return f"tensor {bad[0][len('model.'):]!r} holds NaN or infinite values" if bad else None


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """The newest intact checkpoint in `folder`, or `None` if there is none.

    Each newer one that is damaged (truncated, altered, unreadable, or with weights that
    are not finite) is skipped, with a warning that names it and says why.
    """
    for path in reversed(checkpoints(folder)):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning(f"cvae: skipping the damaged checkpoint {path}: {problem}")
    return None


def read_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The fingerprint a checkpoint was written with (`None` for checkpoints without one)."""
    return _meta(Path(path)).get("fingerprint")


def read_best_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor] | None:
    """The best epoch's weights that a checkpoint holds (`EarlyStopping`'s), or `None`."""
    tensors = load_tensors(read_header(Path(path) / STATE_NAME))
    best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
    return best or None


def load_checkpoint(path: str | os.PathLike[str], *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
                    ) -> list[dict[str, float]]:
    """Restore a checkpoint into `model`, `optimizer`, `generator` and `scheduler`; return the history.

    A scheduler is restored when the checkpoint holds one's state (it does when the run
    had one); otherwise it starts afresh.

    Raises:
        ValueError: If the checkpoint is damaged or was written for another architecture.
    """
    path = Path(path)
    meta = _meta(path)
    tensors = load_tensors(read_header(path / STATE_NAME))
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    own = model.state_dict()
    for name in sorted(own.keys() | weights.keys()):
        here, there = own.get(name), weights.get(name)
        if here is None or there is None or here.shape != there.shape:
            shapes = [tuple(t.shape) if t is not None else "absent" for t in (there, here)]
            raise ValueError(f"the checkpoint {path} is of another model: tensor {name!r} is"
                             f" {shapes[0]} there and {shapes[1]} here; resume with the model"
                             f" settings it was trained with, or use a new checkpoint folder")
    model.load_state_dict(weights)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            index, name = key[len("optimizer."):].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["optimizer_scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    generator.set_state(tensors["generator"])
    if scheduler is not None and meta.get("scheduler"):
        scheduler.load_state_dict(meta["scheduler"])
    return meta["history"]


def open_run(folder: str | os.PathLike[str], fingerprint: dict[str, Any], *, resume: bool,
             allow_changes: bool = False, writer: bool = True) -> Path | None:
    """Check a checkpoint folder before the first epoch; return the checkpoint to resume from.

    Refuses, before any work: a folder that another run is training into, one that cannot
    be written, one that holds an earlier run's checkpoints when `resume` is False, and a
    checkpoint whose fingerprint differs from `fingerprint` (another model always; other
    data or settings unless `allow_changes`). Only the `writer` (rank 0 of several
    processes) checks the lock and the permissions.

    Raises:
        BlockingIOError: If another process trains into the folder.
        OSError: If the folder cannot be created or written.
        ValueError: If the folder holds another run.
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
    latest = latest_checkpoint(folder) if resume else None
    if latest is None:
        if found:
            raise ValueError(f"no checkpoint in {folder} is intact, so the run cannot resume;"
                             f" move the folder away to start again")
        return None
    saved = read_fingerprint(latest) or {}
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
        raise ValueError(f"the checkpoint {latest} was made with {what}: {'; '.join(changed)};"
                         f" {advice}")
    return latest


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
