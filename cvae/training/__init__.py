"""The training layer: the `Trainer`, the engine it steps with, its callbacks and checkpoints.

The Trainer knows nothing about the objective: it minimises `model.loss`. Its engine owns
the device, mixed precision, compiling and data parallelism; checkpoints, logs and the
collapse warning are callbacks.
"""

from cvae._devices import native_bfloat16
from cvae.training._compiling import AUTO_COMPILE_STEPS
from cvae.training.callbacks import (
    Callback,
    CollapseWarning,
    CSVLogger,
    EpochLogger,
    ProgressBar,
    TensorBoardLogger,
)
from cvae.training.checkpoint import checkpoints, latest_checkpoint
from cvae.training.record import RunRecord
from cvae.training.trainer import Trainer

__all__ = ["AUTO_COMPILE_STEPS", "CSVLogger", "Callback", "CollapseWarning", "EpochLogger", "ProgressBar",
           "RunRecord", "TensorBoardLogger", "Trainer", "checkpoints", "latest_checkpoint", "native_bfloat16"]
