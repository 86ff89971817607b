"""A module put in eval mode for a block, and back in the mode it was in after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def in_eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block `module` is in eval mode; after it, in train mode again if it was.

    For the passes a model makes over data outside training (fitting its prior or its code
    shift, calibrating its scale, classifying): no dropout, no batch-norm statistics moved,
    and a caller that was training goes on training, even when the block raises.
    """
    training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(training)
