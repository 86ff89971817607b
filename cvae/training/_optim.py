"""The Trainer's optimizer and learning-rate schedule: the tutorial's Adam, or the user's own.

The checks here run when the Trainer is built, so a wrong optimizer or schedule is refused
before any training, with what was wrong and what is accepted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from cvae._checks import short
from cvae.training.callbacks import Callback

__all__ = ["DEFAULT_LR", "Scheduler", "make_optimizer", "make_scheduler", "describe", "cosine_schedule",
           "Scheduling"]

#: The default Adam's learning rate, the tutorial's (`Trainer(lr=None)`).
DEFAULT_LR = 1e-3
# Every torch scheduler, ReduceLROnPlateau included.
Scheduler = torch.optim.lr_scheduler.LRScheduler
SCHEDULER_INTERVALS = ("epoch", "step")


def make_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer | None, lr: float | None,
                   device: torch.device) -> torch.optim.Optimizer:
    """The user's optimizer, checked against the model, or the tutorial's Adam at `lr`.

    Raises:
        TypeError: If `optimizer` is not a `torch.optim.Optimizer`.
        ValueError: If it updates tensors that are not the model's, or `lr` is given too.
    """
    if optimizer is None:
        # The fused kernel does Adam's whole update in one pass over the parameters: the
        # same arithmetic as the default in far fewer kernel launches, which on a CPU is a
        # large share of an MLP's step.
        return torch.optim.Adam(model.parameters(), lr=DEFAULT_LR if lr is None else lr,
                                fused=device.type in ("cpu", "cuda"))
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer built on the model's"
                        f" parameters, got {short(optimizer)}")
    if lr is not None:
        raise ValueError("lr sets the learning rate of the default Adam; the optimizer you gave"
                         " has its own (set it there)")
    own = {id(p) for p in model.parameters()}
    foreign = sum(id(p) not in own for g in optimizer.param_groups for p in g["params"])
    if foreign:
        raise ValueError(f"the optimizer updates {foreign} tensor(s) that are not parameters of the"
                         f" model being trained; build it on this model: optimizer=torch.optim."
                         f"{type(optimizer).__name__}(model.parameters(), ...)")
    return optimizer


def make_scheduler(scheduler: Scheduler | Callable[[torch.optim.Optimizer], Scheduler] | None,
                   optimizer: torch.optim.Optimizer, interval: str, lr_schedule: str,
                   checkpoints: bool) -> Scheduler | None:
    """The user's scheduler (built by calling it with `optimizer` if it is a function), checked.

    Raises:
        TypeError: If it is not a torch scheduler.
        ValueError: If it schedules another optimizer, clashes with `lr_schedule`, is a
            plateau scheduler stepped per step, or (with `checkpoints`) holds state that a
            checkpoint cannot store as JSON.
    """
    if interval not in SCHEDULER_INTERVALS:
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {short(interval)}")
    if scheduler is None:
        return None
    if lr_schedule != "constant":
        raise ValueError(f"lr_schedule={lr_schedule!r} and a scheduler both set the learning rate;"
                         f" give one of them")
    if callable(scheduler) and not isinstance(scheduler, Scheduler):
        scheduler = scheduler(optimizer)
    if not isinstance(scheduler, Scheduler):
        raise TypeError(f"scheduler must be a torch.optim.lr_scheduler scheduler, or a function that"
                        f" builds one from the optimizer, got {short(scheduler)}")
    if scheduler.optimizer is not optimizer:
        raise ValueError("the scheduler is built on another optimizer than the Trainer's; pass a"
                         " function instead, scheduler=lambda opt: StepLR(opt, ...), and the"
                         " Trainer builds it on its own")
    if interval == "step" and isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError("ReduceLROnPlateau watches the loss of whole epochs: use"
                         " scheduler_interval='epoch'")
    if checkpoints:
        try:
            json.dumps(scheduler.state_dict())
        except (TypeError, ValueError) as err:
            raise ValueError(f"the scheduler's state cannot be stored in a checkpoint as JSON"
                             f" ({err}); train without checkpoint_dir, or use another"
                             f" scheduler") from None
    return scheduler


def describe(optimizer: torch.optim.Optimizer | None, scheduler: Scheduler | None,
             interval: str) -> dict[str, Any]:
    """The optimizer's and scheduler's settings as JSON data, for a run's fingerprint."""
    def jsonable(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    return {"optimizer": None if optimizer is None else jsonable(
                {"class": type(optimizer).__name__, **optimizer.defaults}),
            "scheduler": None if scheduler is None else jsonable(
                {"class": type(scheduler).__name__, "interval": interval})}


def cosine_schedule(optimizer: torch.optim.Optimizer, base_lrs: list[float], start: int,
                    total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """`lr_schedule="cosine"` as a scheduler: from `base_lrs` down to 0 along a half cosine.

    Stepped after every optimisation step, it gives step `k` of the run (counted from 0)
    `base * (1 + cos(pi * k / total)) / 2` (Loshchilov and Hutter 2017). It starts at step
    `start`: a resumed run follows the curve of the uninterrupted one, from the step alone.
    """
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = group["initial_lr"] = base
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * (start + step) / total)))


class Scheduling(Callback):
    """Step the run's learning-rate scheduler: after each step, or after each epoch.

    One mechanism for every schedule: the user's scheduler and `lr_schedule="cosine"`. A
    `ReduceLROnPlateau` is given the validation loss, or the training loss without
    validation data. The Trainer runs it in every process, before the other callbacks.

    Args:
        scheduler: The scheduler, or `None` (no schedule: the callback does nothing).
        interval: `"step"` or `"epoch"`.
    """

    def __init__(self, scheduler: Scheduler | None, interval: str):
        self.scheduler, self.interval = scheduler, interval

    def on_step_end(self, trainer: Any, step: int, terms: torch.Tensor, images: int) -> None:
        """Step a per-step scheduler."""
        if self.scheduler is not None and self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer: Any, record: dict[str, float]) -> None:
        """Step a per-epoch scheduler, with the loss it watches if it is a plateau scheduler."""
        if self.scheduler is None or self.interval != "epoch":
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(record.get("val_loss", record["loss"]))
        else:
            self.scheduler.step()
