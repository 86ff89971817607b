"""Data-parallel training with PyTorch's own engine: the process group that torchrun sets up.

`torchrun --nproc_per_node N train.py` starts N copies of a script and describes them in
environment variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, ...). The Trainer
calls `setup` to join that group; a plain `python train.py` runs alone, as before.
"""

from __future__ import annotations

import atexit
import os
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

from cvae._devices import check_device, default_device

if TYPE_CHECKING:
    from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["setup", "rank", "world_size", "is_main_process", "objective"]


def world_size() -> int:
    """How many processes train together: 1 unless a process group is running."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's index among those that train together (0 when alone)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True in the one process that writes checkpoints, models and logs (rank 0)."""
    return rank() == 0


def setup(device: str | torch.device | None) -> torch.device:
    """Join torchrun's process group, if this process was started by one, and pick a device.

    A process group that the caller has already started is used as it is. Under torchrun
    without one, it is started here (NCCL for CUDA, gloo for the CPU) and shut down when
    the interpreter exits.

    Args:
        device: The device asked for; `None` for CUDA when available, else the CPU. Under
            torchrun, a CUDA device without an index becomes `cuda:LOCAL_RANK`, so that
            each process drives its own GPU.

    Returns:
        The device this process trains on.

    Raises:
        ValueError: If the device is not one of this machine's.
    """
    device = check_device(device or default_device())
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not launched and not (dist.is_available() and dist.is_initialized()):
        return device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_shutdown)
    return device


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class _Objective(nn.Module):
    """The model's loss as a module's forward: what DistributedDataParallel can wrap."""

    def __init__(self, model: ConditionalVAE, free_bits: float):
        super().__init__()
        self.model, self.free_bits = model, free_bits

    def forward(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor,
                beta: float | torch.Tensor) -> torch.Tensor:
        return torch.stack(self.model.loss(x, y, noise=noise, beta=beta, free_bits=self.free_bits))


def objective(model: ConditionalVAE, free_bits: float, device: torch.device) -> nn.Module:
    """The module whose forward gives a batch's `[loss, reconstruction, kl]`, as the Trainer steps.

    Under torchrun it is wrapped in `DistributedDataParallel`, which copies rank 0's
    weights to the other processes here and averages gradients in the backward pass.
    """
    module = _Objective(model, free_bits)
    if world_size() == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=None if device.type == "cpu" else [device])
