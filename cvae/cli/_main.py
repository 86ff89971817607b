"""`main`: run the `cvae` command, one line for every error and never a traceback."""

from __future__ import annotations

import _thread
import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cvae._checks import one_line
from cvae._stop import ask_stop, clear_stop
from cvae.cli._parser import build_parser
from cvae.logs import to_console


def _resume_hint(args: argparse.Namespace) -> str:
    """For an interrupted `cvae train`: the checkpoint it keeps, and how to go on from it."""
    if args.command != "train":
        return ""
    from cvae.cli._train import CHECKPOINTS
    from cvae.training.checkpoint import latest_checkpoint

    kept = latest_checkpoint(os.path.join(args.output, CHECKPOINTS))  # an intact one
    if kept is None:
        return ""
    return (f"; {kept} is kept: run the same command with --resume to go on from it"
            f" (--overwrite starts again)")


def _on_interrupt(command: str) -> Callable[[int, Any], None]:
    """A SIGINT handler: raise KeyboardInterrupt, and stop the process if nothing handles it.

    torch's compiler waits on its C++ builds in a way that can swallow the KeyboardInterrupt
    (the run then went on, and Ctrl-C during the first compilation was lost). If `main` has
    not handled it within `_GRACE` seconds, the process says so and exits with 130: every
    file the library writes is replaced atomically, so stopping at any instant is safe.
    """
    def handler(signum: int, frame: Any) -> None:
        def stop() -> None:
            print(f"cvae {command}: interrupted", file=sys.stderr, flush=True)
            os._exit(130)

        timer = threading.Timer(_GRACE, stop)
        timer.daemon = True
        timer.start()
        _watchdogs.append(timer)
        ask_stop()  # seen by code that could swallow the KeyboardInterrupt (cvae._stop)
        raise KeyboardInterrupt

    return handler


def _redeliver_interrupts(previous: Callable[[Any], Any]) -> Callable[[Any], None]:
    """A `sys.unraisablehook` that delivers again a KeyboardInterrupt Python dropped.

    Python prints and drops an exception raised where it cannot propagate: a Ctrl-C that
    lands inside a weakref callback (torch's compiler keeps many) became a traceback, and the
    run went on until the watchdog stopped it. Raised again as a fresh SIGINT, it reaches
    `main` at the next statement and stops the command the usual way.
    """
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # From a bare thread: called here, interrupt_main would run the handler inside
            # this hook, and threading.Thread.start waits (the handler would run in the wait).
            _thread.start_new_thread(_thread.interrupt_main, (signal.SIGINT,))
        else:
            previous(unraisable)

    return hook


_GRACE = 10.0  # seconds from Ctrl-C to a forced stop, where nothing handled it
_watchdogs: list[threading.Timer] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `cvae` command with `argv` (default: `sys.argv[1:]`); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # for the record of the command in a trained model's card
    if threading.current_thread() is not threading.main_thread():  # signals go to the main one
        return _run(args)
    previous, previous_hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    signal.signal(signal.SIGINT, _on_interrupt(args.command))
    sys.unraisablehook = _redeliver_interrupts(previous_hook)
    try:
        return _run(args)
    finally:  # a caller's own handlers (pytest's, say) back, and no forced stop pending
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        for timer in _watchdogs:
            timer.cancel()
        _watchdogs.clear()
        clear_stop()


def _run(args: argparse.Namespace) -> int:
    """The command, its errors made one line and an exit code."""
    try:
        with to_console():  # the Trainer's epoch lines are this command's output
            args.func(args)
    except KeyboardInterrupt:
        for timer in _watchdogs:  # handled: no forced stop while the hint is looked up
            timer.cancel()
        print(f"cvae {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped (`cvae eval ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        return 141
    except Exception as err:
        # One line, never a traceback (CVAE_DEBUG=1 shows it, for a bug report). What the
        # library refuses says itself what was wrong; anything else is named by its type.
        if os.environ.get("CVAE_DEBUG"):
            raise
        expected = (ValueError, TypeError, KeyError, OSError, ImportError, FloatingPointError,
                    MemoryError)
        message = err.args[0] if type(err) is KeyError and err.args else str(err)  # unquoted
        message = one_line(message)  # one line, with the advice that follows a newline
        if not isinstance(err, expected):
            message = f"{type(err).__name__}: {message}"
        print(f"cvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0
