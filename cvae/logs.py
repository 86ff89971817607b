"""The `cvae` logger: the library talks through `logging`, and prints like the tutorial by default.

Every module logs to a child of `logging.getLogger("cvae")`, whose level is INFO so that the
Trainer's epoch line (the tutorial's `====> Epoch: N Average loss: X`) is shown by default.
Until the application configures logging itself (any handler on the root logger, as
`logging.basicConfig` adds), a console handler writes the messages as they are: INFO to
stdout, where the tutorial printed them, warnings and errors to stderr. Once it has, the
records go to its handlers alone, so nothing is shown twice; records always propagate.

To silence the epoch lines: `Trainer(verbose=False)`, or
`logging.getLogger("cvae").setLevel(logging.WARNING)`. The `cvae` command shows its messages
on the console whatever logging is configured (`to_console`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["logger", "to_console"]

logger = logging.getLogger("cvae")


class _Console(logging.StreamHandler):
    """Plain messages on stdout (INFO) or stderr (warnings), while no root handler exists."""

    forced = 0  # blocks of `to_console` in progress

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers and not _Console.forced:  # the application's take over
            return
        # Looked up at each record, so redirection (notebooks, contextlib) is followed.
        self.stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        super().emit(record)


if not any(isinstance(h, _Console) for h in logger.handlers):  # once, even if reloaded
    logger.addHandler(_Console())
    if logger.level == logging.NOTSET:  # an application's own setting wins
        logger.setLevel(logging.INFO)


@contextmanager
def to_console() -> Iterator[None]:
    """Within the block, show cvae's messages on the console even where logging is configured.

    What the `cvae` command does: its epoch lines are its output. The records still reach
    the application's handlers too.
    """
    _Console.forced += 1
    try:
        yield
    finally:
        _Console.forced -= 1
