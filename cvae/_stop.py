"""A stop that a signal handler asked for, for code whose callees may swallow its KeyboardInterrupt.

`cvae`'s commands raise KeyboardInterrupt on Ctrl-C, and also ask for a stop here: torch's
compiler can turn an interrupt that lands in its work into an error of its own (an
`InductorError` around a `TypeError`), which `compile="auto"` took for a compiler fault and
trained on without compiling. Code that recovers from errors asks `stop_asked()` first.
"""

from __future__ import annotations

import threading

__all__ = ["ask_stop", "clear_stop", "stop_asked"]

_asked = threading.Event()


def ask_stop() -> None:
    """Ask for a stop (a signal handler calls this)."""
    _asked.set()


def stop_asked() -> bool:
    """Whether a stop was asked for and not cleared."""
    return _asked.is_set()


def clear_stop() -> None:
    """Forget the stop (when the command that was asked to stop has ended)."""
    _asked.clear()
