"""The training layer: the `Trainer`, the engine it steps with, its callbacks and checkpoints.

The Trainer knows nothing about the objective: it minimises `model.loss`. Its engine owns
the device, mixed precision, compiling and data parallelism; checkpoints, logs, early
stopping and the collapse warning are callbacks; how long a run trains when the user does
not say is `_length`'s, and the verdict at its end `verdict`'s.
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
from cvae.training.early_stopping import EarlyStopping
from cvae.training.record import RunRecord
from cvae.training.trainer import Trainer
from cvae.training.verdict import Verdict, judge

__all__ = ["AUTO_COMPILE_STEPS", "CSVLogger", "Callback", "CollapseWarning", "EarlyStopping", "EpochLogger",
           "ProgressBar", "RunRecord", "TensorBoardLogger", "Trainer", "Verdict", "checkpoints", "judge",
           "latest_checkpoint", "native_bfloat16"]
