"""Reading a checkpoint whole, and checking every part of it before any is used.

A checkpoint is trusted only when all of it passes: `trainer.json` is JSON of the right
shape (the epoch, a history of that many epochs each with a finite loss, the optimizer's
settings in the kinds of values the optimizer has, its scalars, the fingerprint and the
scheduler's state as objects), and `state.safetensors`, read once from one open file,
has its checksum, its random generator's state, the model's tensors with the model's
names and shapes, the optimizer's tensors for parameters that exist, and no value that
is NaN or infinite. Any failure makes the checkpoint damaged (`DamagedCheckpoint`, with
the first reason), and resuming falls back to an older one; nothing was restored yet.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cvae._checks import parse_json, short
from cvae._files import read_regular
from cvae.hub._safetensors import TensorFile

__all__ = ["Checkpoint", "DamagedCheckpoint", "read_checkpoint", "check_fits", "STATE_NAME", "META_NAME"]

STATE_NAME = "state.safetensors"
META_NAME = "trainer.json"
_MAX_META = 256 * 2**20  # a history of a million epochs is far less
# Optimizer state that has its parameter's shape, in torch's optimizers.
_PARAMETER_SHAPED = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg",
                     "acc_delta", "sum", "grad_avg", "prev", "mu_product", "ax", "eta"}


class DamagedCheckpoint(ValueError):
    """A checkpoint that cannot be trusted; the message says why (one line)."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read whole and checked: what resuming restores.

    Attributes:
        path: Its folder.
        meta: `trainer.json`, checked.
        tensors: `state.safetensors`'s tensors, checked.
    """

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def history(self) -> list[dict[str, Any]]:
        """The epochs of the run up to this checkpoint."""
        return self.meta["history"]

    @property
    def fingerprint(self) -> dict[str, Any] | None:
        """What the run was (model config, data digest, settings), or `None` for old ones."""
        return self.meta.get("fingerprint")

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors named `prefix.NAME`, by `NAME`: `model`, `best` (early stopping's)."""
        return _part(self.tensors, prefix)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
        """Put the checkpoint's state into the run's objects (the scheduler's if it has one)."""
        state: dict[int, dict[str, Any]] = {}
        for key, value in self.part("optimizer").items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        for key, value in self.meta["optimizer_scalars"].items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": self.meta["param_groups"]})
        if scheduler is not None and self.meta.get("scheduler"):
            scheduler.load_state_dict(self.meta["scheduler"])
        model.load_state_dict(self.part("model"))
        generator.set_state(self.tensors["generator"])


def read_checkpoint(path: str | os.PathLike[str], *, model: torch.nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    generator: torch.Generator | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> Checkpoint:
    """Read a checkpoint once and check all of it; against the run's objects where given.

    Args:
        path: The checkpoint's folder (`epoch-NNNN`).
        model: The model it must fit (names, shapes), if known.
        optimizer: The optimizer its settings and state must fit, if known.
        generator: The generator whose state it holds, if known.
        scheduler: The scheduler whose state it may hold, if known.

    Raises:
        DamagedCheckpoint: Saying what is wrong, for the first part that fails.
    """
    path = Path(path)
    try:
        meta = _read_meta(path / META_NAME)
        with TensorFile(path / STATE_NAME) as file:
            tensors = file.read(require_checksum=True)
    except (OSError, ValueError, MemoryError) as err:
        raise DamagedCheckpoint(str(err).splitlines()[0]) from None
    _check_tensors(tensors)
    checkpoint = Checkpoint(path, meta, tensors)
    check_fits(checkpoint, model=model, optimizer=optimizer, generator=generator, scheduler=scheduler)
    return checkpoint


def check_fits(checkpoint: Checkpoint, *, model: torch.nn.Module | None = None,
               optimizer: torch.optim.Optimizer | None = None, generator: torch.Generator | None = None,
               scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> None:
    """Check a checkpoint read whole against the run's objects that are given.

    Raises:
        DamagedCheckpoint: If a tensor's name or shape, an optimizer setting, or the
            generator's or scheduler's state does not fit.
    """
    _check_model(checkpoint.tensors, model, generator)
    if optimizer is not None:
        _check_optimizer(checkpoint.meta, checkpoint.tensors, optimizer)
    mine, theirs = (scheduler.state_dict() if scheduler else None), checkpoint.meta.get("scheduler")
    if mine is not None and theirs and not all(key in theirs and _like(theirs[key], value)
                                               for key, value in mine.items()):
        raise DamagedCheckpoint(f"its scheduler state {short(theirs)} is not one of a"
                                f" {type(scheduler).__name__}")


def _read_meta(path: Path) -> dict[str, Any]:
    meta = parse_json(read_regular(path, limit=_MAX_META, too_large="far more than a run's"), META_NAME)
    if not isinstance(meta, dict) or not {"epoch", "history", "param_groups"} <= meta.keys():
        raise DamagedCheckpoint(f"{META_NAME} is not a checkpoint's: its epoch, history or optimizer"
                                f" settings are missing")
    history, epoch = meta["history"], meta["epoch"]
    if type(epoch) is not int or not isinstance(history, list) or epoch != len(history):
        raise DamagedCheckpoint(f"{META_NAME} says epoch {short(epoch)} but holds"
                                f" {len(history) if isinstance(history, list) else 'no'} epochs of history")
    for number, entry in enumerate(history, 1):
        if not isinstance(entry, dict) or entry.get("epoch") != number or not _finite(entry.get("loss")):
            raise DamagedCheckpoint(f"{META_NAME}'s history entry {number} is not an epoch's"
                                    f" record (its number and a finite loss): {short(entry)}")
    for key in ("fingerprint", "scheduler"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise DamagedCheckpoint(f"{META_NAME}'s {key} is {short(meta[key])}, not an object")
    if not isinstance(meta.get("optimizer_scalars", {}), dict):
        raise DamagedCheckpoint(f"{META_NAME}'s optimizer_scalars is not an object")
    meta.setdefault("optimizer_scalars", {})
    return meta


def _part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _finite(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_tensors(tensors: dict[str, torch.Tensor]) -> None:
    """What every checkpoint's tensors must be: known names, a generator state, finite values."""
    state = tensors.get("generator")
    if state is None or state.dtype != torch.uint8:
        raise DamagedCheckpoint(f"{STATE_NAME} lacks the random generator's state (a tensor"
                                f" 'generator' of bytes)")
    for name, tensor in tensors.items():
        if name.split(".")[0] not in ("model", "optimizer", "best", "generator"):
            raise DamagedCheckpoint(f"{STATE_NAME} holds tensor {short(name)}, which no checkpoint has")
        if name != "generator" and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DamagedCheckpoint(f"tensor {short(name)} holds NaN or infinite values")


def _check_model(tensors: dict[str, torch.Tensor], model: torch.nn.Module | None,
                 generator: torch.Generator | None) -> None:
    """The model's and early stopping's tensors against the model; the generator's state against it."""
    if generator is not None and tensors["generator"].shape != generator.get_state().shape:
        raise DamagedCheckpoint(f"its random generator's state is {len(tensors['generator'])} bytes,"
                                f" this generator's {len(generator.get_state())}")
    if model is None:
        return
    own = model.state_dict()
    for prefix in ("model", "best"):
        part = _part(tensors, prefix)
        if prefix == "best" and not part:
            continue
        for name in sorted(own.keys() | part.keys()):
            here, there = own.get(name), part.get(name)
            if here is None or there is None or here.shape != there.shape:
                shapes = [tuple(t.shape) if t is not None else "absent" for t in (there, here)]
                raise DamagedCheckpoint(f"tensor {short(f'{prefix}.{name}')} is {shapes[0]} there and"
                                        f" {shapes[1]} in the model")


def _check_optimizer(meta: dict[str, Any], tensors: dict[str, torch.Tensor],
                     optimizer: torch.optim.Optimizer) -> None:
    groups, saved = optimizer.state_dict()["param_groups"], meta["param_groups"]
    if not isinstance(saved, list) or len(saved) != len(groups):
        raise DamagedCheckpoint(f"its optimizer settings are {short(saved)}, not the"
                                f" {len(groups)} parameter group(s) of the optimizer")
    for number, (mine, theirs) in enumerate(zip(groups, saved)):
        if not isinstance(theirs, dict) or theirs.get("params") != mine["params"]:
            raise DamagedCheckpoint(f"its optimizer group {number} does not hold the optimizer's"
                                    f" parameters {short(mine['params'])}: {short(theirs)}")
        for key, value in mine.items():
            if key not in theirs or not _like(theirs[key], value):
                raise DamagedCheckpoint(f"its optimizer setting {key!r} is"
                                        f" {short(theirs.get(key, 'absent'))}, not a value like"
                                        f" {short(value)}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for key, value in meta["optimizer_scalars"].items():
        index, _, name = key.partition(".")
        if not (index.isdigit() and int(index) < len(params) and name) or not (
                _finite(value) or isinstance(value, (bool, str)) or value is None):
            raise DamagedCheckpoint(f"its optimizer scalar {short(key)} = {short(value)} is not one"
                                    f" of a parameter's")
    for key, value in _part(tensors, "optimizer").items():
        index, _, name = key.partition(".")
        key = f"optimizer.{key}"  # the tensor's name in the file, for the messages
        if not (index.isdigit() and int(index) < len(params) and name):
            raise DamagedCheckpoint(f"its optimizer tensor {short(key)} names no parameter")
        shape = params[int(index)].shape
        if name in _PARAMETER_SHAPED and value.shape != shape:
            raise DamagedCheckpoint(f"its optimizer tensor {short(key)} is {tuple(value.shape)},"
                                    f" but its parameter is {tuple(shape)}")


def _like(saved: Any, current: Any) -> bool:
    """Whether a JSON value can stand for an optimizer setting's value (its kind and length)."""
    if isinstance(current, bool) or current is None:
        return saved is None or isinstance(saved, bool)
    if isinstance(current, numbers.Real):
        return _finite(saved)
    if isinstance(current, (list, tuple)):
        return (isinstance(saved, list) and len(saved) == len(current)
                and all(_like(s, c) for s, c in zip(saved, current)))
    if isinstance(current, str):
        return isinstance(saved, str)
    return True  # a kind JSON cannot hold: the optimizer's own load decides
