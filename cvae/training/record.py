"""`RunRecord`: what a training run was, as `training_history.json` keeps it beside the model.

`cvae train` and the scripts that train the bundled models write the same record: how the
run was started, where and on what it ran, its settings and data, and every epoch of the
history. `cvae eval` reads it back (the data a run was measured on, its loss curves).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from typing import Any

import torch

__all__ = ["RunRecord"]


def machine_name(device: torch.device) -> str:
    """The machine a run trained on, in words: the GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_processor()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _processor() -> str:
    """The CPU's model name where Linux says it, else the architecture.

    CPUs of one architecture differ in speed, so a run's record names the model.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.machine()


@dataclasses.dataclass
class RunRecord:
    """A training run, as `training_history.json` records it.

    Attributes:
        epochs: The Trainer's history, one dict per epoch (see `Trainer.train`).
        command: The command that started the run, if it was one.
        seed: The run's seed.
        device: The device it trained on (`"cpu"`, `"cuda:0"`).
        machine: That machine in words (the GPU's name, or the CPU's architecture).
        python: The Python version.
        compiled: Whether the loss was compiled.
        settings: Trainer settings worth saying in a card (the lr, the schedule, ...).
        batch_size: The batch size (the Trainer's choice where the user gave none).
        stopped: Why the run stopped (`Trainer.stop_reason`).
        kept_epoch: The epoch whose weights early stopping gave back, if not the last.
        verdict: How the run did, in a line (`Trainer.verdict`), and `verdict_kind`, one
            of `cvae.training.verdict.VERDICTS`.
        data: What it trained and was measured on: `train` and `test` (their split and
            image counts) and, for `cvae train`, `held_out` (how to read the data again
            and hold out the same images, which `cvae eval` does).

    Example:
        ```python
        history = trainer.train()
        record = RunRecord.of(trainer, settings={"lr": 1e-3})
        model.save_pretrained("m", extra_files={"training_history.json": record.to_json()})
        RunRecord.read("m").minutes
        ```
    """

    epochs: list[dict[str, float]]
    command: str | None = None
    seed: int | None = None
    device: str | None = None
    machine: str | None = None
    python: str | None = None
    compiled: bool | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int | None = None
    stopped: str | None = None
    kept_epoch: int | None = None
    verdict: str | None = None
    verdict_kind: str | None = None

    @classmethod
    def of(cls, trainer: Any, *, command: str | None = None, settings: dict[str, Any] | None = None,
           data: dict[str, Any] | None = None) -> RunRecord:
        """The record of a `Trainer`'s run so far."""
        return cls(epochs=list(trainer.history), command=command, seed=trainer.seed,
                   device=str(trainer.device), machine=machine_name(trainer.device),
                   python=sys.version.split()[0], compiled=trainer.compiled,
                   settings=dict(settings or {}), data=dict(data or {}), batch_size=trainer.batch_size,
                   stopped=trainer.stop_reason, kept_epoch=trainer.kept_epoch,
                   verdict=None if trainer.verdict is None else trainer.verdict.message,
                   verdict_kind=None if trainer.verdict is None else trainer.verdict.kind)

    @property
    def minutes(self) -> float:
        """The minutes its epochs took, all together."""
        return round(sum(epoch.get("seconds", 0.0) for epoch in self.epochs) / 60, 2)

    def to_dict(self) -> dict[str, Any]:
        """`{"run": ..., "epochs": [...]}`, the layout of `training_history.json`."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in
                  ("epochs", "data")}
        return {"run": {**fields, **self.data, "minutes": self.minutes}, "epochs": self.epochs}

    def to_json(self) -> str:
        """The record as the text of `training_history.json`."""
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunRecord:
        """A record read back, also one written before every field was kept (they are `None`)."""
        run = dict(record.get("run", {}))
        run.pop("minutes", None)  # the epochs say it
        names = {f.name for f in dataclasses.fields(cls)} - {"epochs", "data"}
        known = {name: run.pop(name) for name in list(run) if name in names}
        return cls(epochs=list(record.get("epochs", [])), data=run, **known)

    @classmethod
    def read(cls, name_or_path: str | os.PathLike[str]) -> RunRecord | None:
        """The record beside a model folder or bundled model.

        `None` where there is none: a Hub repo id, a folder saved without one.
        """
        from cvae.hub import training_record

        record = training_record(name_or_path)
        return cls.from_dict(record) if record else None
