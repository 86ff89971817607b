"""Compiling the training step: when the Trainer's `compile="auto"` does it, and what if it fails.

`torch.compile` fuses the step's small operations (casts, the loss's element-wise work) into
a few kernels, which pays where they are a large part of the step: the tutorial's model
on a CPU spends 42% of its step outside matrix products and Adam in the profile of
docs/benchmarks.md.
Compiling costs seconds at the start, so `"auto"` compiles runs long enough to repay them,
where torch can compile for the device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from cvae._checks import one_line
from cvae._stop import stop_asked

__all__ = ["AUTO_COMPILE_STEPS", "can_compile", "wants_compile", "Compiled"]

logger = logging.getLogger("cvae")

AUTO_COMPILE_STEPS = 20_000
"""The fewest optimisation steps in a run that `compile="auto"` compiles.

About 43 epochs of MNIST at batch 128. On a 2-core CPU, compiling saved the tutorial's
model 0.2 to 1.4 ms a step, and made the first epoch 2 to 14 s longer
(`benchmarks/train_speed.py`): over this many steps the saving repays the compilation.
"""


def can_compile(device: str | torch.device) -> bool:
    """Whether `torch.compile`'s default backend can build kernels for `device` here.

    On a CPU it needs a C++ compiler, on a CUDA GPU Triton; other devices are not tried.
    """
    import torch._dynamo

    if not torch._dynamo.is_inductor_supported():
        return False
    kind = torch.device(device).type
    if kind == "cuda":
        from torch.utils._triton import has_triton

        return has_triton()
    if kind == "cpu":
        from torch._inductor import cpp_builder

        try:
            cpp_builder.get_cpp_compiler()
        except Exception:  # torch's own error types for "no compiler" differ by platform
            return False
        return True
    return False


def wants_compile(setting: bool | str, device: str | torch.device, steps: int, processes: int,
                  fixed_shapes: bool) -> bool:
    """The Trainer's choice: whether to compile a run of `steps` optimisation steps.

    Args:
        setting: `True` (always), `False` (never) or `"auto"`: when the run has at least
            `AUTO_COMPILE_STEPS` steps, in one process, with `fixed_shapes`, on a device
            that `can_compile`.
        device: Where the run trains.
        steps: Optimisation steps in the whole run.
        processes: Processes training together (distributed runs are not compiled by `"auto"`).
        fixed_shapes: Whether the step's tensors have the same shapes in every full batch.
            Not so for a semi-supervised model, whose share of labelled images varies: its
            step would compile again for each new share.
    """
    if setting != "auto":
        return bool(setting)
    return (steps >= AUTO_COMPILE_STEPS and processes == 1 and fixed_shapes
            and can_compile(device))


class Compiled:
    """`fn` through `torch.compile`; with `fallback`, a failed compilation runs `fn` eagerly.

    A compilation that fails (no working compiler after all, an operation the compiler
    cannot handle) is logged once, and this step and every later one run `fn` as it is.
    An error of `fn` itself is raised again by the eager call, as without compiling; a
    failure while a stop is asked (`cvae._stop`: Ctrl-C in a command, which the compiler
    may have turned into its own error) is a KeyboardInterrupt.

    Args:
        fn: The function to compile.
        fallback: Fall back to `fn` on a failure (`compile="auto"`), rather than raise.
    """

    def __init__(self, fn: Callable[..., Any], fallback: bool):
        # dynamic=False: one graph for full batches, one more for the last, short one.
        self.fn, self.compiled, self.fallback = fn, torch.compile(fn, dynamic=False), fallback

    def __call__(self, *args: Any) -> Any:
        """`fn(*args)`, compiled unless compiling failed before."""
        if self.compiled is None:
            return self.fn(*args)
        try:
            return self.compiled(*args)
        except Exception as error:
            if stop_asked():
                raise KeyboardInterrupt from error
            if not self.fallback:
                raise
            self.compiled = None
            result = self.fn(*args)  # raises here if the fault is fn's, not the compiler's
            logger.warning(f"torch.compile failed ({type(error).__name__}: {one_line(error)});"
                           f" training goes on without compiling (compile=False skips it)")
            return result
