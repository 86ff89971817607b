"""`Engine`: where and how the Trainer's steps run, so that the Trainer's loop need not know.

It owns what lucidrains' Trainer gets from Hugging Face's `Accelerator`: the device, the
processes that train together under `torchrun` (the model wrapped in
`DistributedDataParallel`, the figures summed over processes), bfloat16 autocast where the
CPU has it natively, and `torch.compile` of the loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from cvae._devices import use_bfloat16
from cvae.training._compiling import Compiled, wants_compile
from cvae.training._distributed import objective, rank, setup, world_size

if TYPE_CHECKING:
    from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["Engine"]


class Engine:
    """The device, processes, precision and compiling of a run.

    Args:
        device: Where to train; `None` for CUDA when available, else the CPU (under
            torchrun, each process's own GPU).
        mixed_precision: `"auto"`, `True` or `False`, as the Trainer takes it.
    """

    def __init__(self, device: str | torch.device | None, mixed_precision: bool | str):
        self.device = setup(device)
        self.rank, self.world_size = rank(), world_size()
        self.mixed_precision = use_bfloat16(mixed_precision, self.device)
        self.compiled = False

    @property
    def is_main_process(self) -> bool:
        """True in the process that prints and writes (rank 0; the only one when alone)."""
        return self.rank == 0

    def shared_seed(self) -> int:
        """A seed drawn from torch's global generator, the same in every process."""
        drawn = torch.randint(2**62, (), device=self.device)
        if self.world_size > 1:  # every process must shuffle and draw noise alike
            torch.distributed.broadcast(drawn, src=0)
        return int(drawn.item())

    def prepare(self, model: ConditionalVAE, free_bits: float, compile: bool | str, steps: int) -> None:
        """Make `loss` step `model`: wrapped for data parallelism, compiled as `compile` says.

        Args:
            model: The model, on this engine's device, with the weights the run starts from
                (under torchrun, rank 0's are copied to the other processes here).
            free_bits: As `model.loss` takes it.
            compile: `True`, `False` or `"auto"` (see `cvae.training.AUTO_COMPILE_STEPS`).
            steps: Optimisation steps in the whole run: `"auto"` compiles long runs only.
        """
        self.compiled = wants_compile(compile, self.device, steps, self.world_size,
                                      fixed_shapes=model.classifier is None)
        self._objective = objective(model, free_bits, self.device)
        self._loss = Compiled(self._terms, fallback=compile == "auto") if self.compiled else self._terms

    def _terms(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor,
               beta: float | torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.mixed_precision):
            return self._objective(x, y, noise, beta)

    def loss(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor,
             beta: float | torch.Tensor) -> torch.Tensor:
        """A batch's `[loss, reconstruction, kl]`, summed over this process's images."""
        return self._loss(x, y, noise, beta)

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of the whole batch's loss, whatever the number of processes."""
        # DDP averages gradients over processes; the loss is a sum over images, so scaling
        # it by their number gives the gradient of the whole batch.
        (loss * self.world_size if self.world_size > 1 else loss).backward()

    def total(self, terms_of_steps: list[torch.Tensor]) -> torch.Tensor:
        """Each step's terms `(steps, 3)`, summed over the processes."""
        stats = torch.stack(terms_of_steps)
        if self.world_size > 1:
            torch.distributed.all_reduce(stats)
        return stats

    @staticmethod
    def first_bad_step(stats: torch.Tensor) -> int | None:
        """The NaN guard: the index of the first step whose loss is not finite, or `None`."""
        bad = (~torch.isfinite(stats[:, 0])).nonzero()
        return int(bad[0]) if len(bad) else None
