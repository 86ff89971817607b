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

__all__ = ["Scheduler", "make_optimizer", "make_scheduler", "describe", "cosine"]

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
        return torch.optim.Adam(model.parameters(), lr=1e-3 if lr is None else lr,
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


def cosine(base: float, done: float) -> float:
    """The learning rate `done` (0 to 1) of the way along a half cosine from `base` to 0."""
    return base * 0.5 * (1 + math.cos(math.pi * done))
