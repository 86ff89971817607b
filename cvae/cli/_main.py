"""`main`: run the `cvae` command, one line for every error and never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cvae._checks import one_line
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `cvae` command with `argv` (default: `sys.argv[1:]`); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # for the record of the command in a trained model's card
    try:
        with to_console():  # the Trainer's epoch lines are this command's output
            args.func(args)
    except KeyboardInterrupt:
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
