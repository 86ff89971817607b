"""Training checkpoints: weights, optimizer state, random state and history, with no pickle.

A checkpoint is a folder `epoch-NNNN/` holding `state.safetensors` (every tensor: the
model's weights, the optimizer's state and the random generator's state) and
`trainer.json` (the epoch, the history and the optimizer's settings). It is written under a
temporary name and renamed into place, so a run killed at any moment leaves only complete
checkpoints behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint"]

STATE_NAME = "state.safetensors"
META_NAME = "trainer.json"
_PATTERN = re.compile(r"epoch-(\d+)")


def save_checkpoint(folder: str | os.PathLike[str], *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    history: list[dict[str, float]], keep: int = 2) -> Path:
    """Write the checkpoint of the epoch that `history` ends with, atomically.

    Args:
        folder: The checkpoints folder (created if missing).
        model: The model being trained.
        optimizer: Its optimizer.
        generator: The random generator of shuffling and noise.
        history: The epochs so far (the Trainer's history).
        keep: How many of the newest checkpoints to keep; older ones are deleted.

    Returns:
        The checkpoint's folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    epoch = len(history)
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    scalars: dict[str, Any] = {}
    for index, state in opt["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{index}.{name}"] = value
    tensors["generator"] = generator.get_state()
    meta = {"epoch": epoch, "history": history, "param_groups": opt["param_groups"],
            "optimizer_scalars": scalars}
    final, tmp = folder / f"epoch-{epoch:04d}", folder / f".epoch-{epoch:04d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / STATE_NAME))
    (tmp / META_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)  # the checkpoint appears whole, or not at all
    for old in _checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first."""
    found = [p for p in folder.glob("epoch-*") if _PATTERN.fullmatch(p.name)
             and (p / STATE_NAME).is_file() and (p / META_NAME).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint in `folder`, or `None` if there is none."""
    folder = Path(folder)
    found = _checkpoints(folder) if folder.is_dir() else []
    return found[-1] if found else None


def load_checkpoint(path: str | os.PathLike[str], *, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, generator: torch.Generator
                    ) -> list[dict[str, float]]:
    """Restore a checkpoint into `model`, `optimizer` and `generator`; return the history.

    Raises:
        ValueError: If the checkpoint was written for another architecture.
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta = json.loads((path / META_NAME).read_text(encoding="utf-8"))
    tensors = load_file(str(path / STATE_NAME))
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
    return meta["history"]
