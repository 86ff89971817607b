"""Helpers for tests that start processes or need torch's compiler.

A process that a test starts ends when the test does, whatever happens (`started`), and it
gets Ctrl-C as a user's terminal delivers it, even where the test suite itself was started
with SIGINT ignored (a background job of a non-interactive shell is): Python then starts
with Ctrl-C ignored too, and a test that sends it would wait forever.
"""

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest


@cache
def _compiler_missing() -> str:
    """Why torch cannot compile for the CPU here, or "" where it can."""
    from cvae.training._compiling import can_compile

    if can_compile("cpu"):
        return ""
    return "torch.compile needs a working C++ compiler for the CPU (g++ or $CXX), and none was found"


#: Skips a test that compiles where torch cannot, saying why; it runs everywhere else.
needs_compiler = pytest.mark.skipif(_compiler_missing() != "", reason=_compiler_missing() or "-")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python installs its KeyboardInterrupt on this


@contextmanager
def started(command: list[str], **kwargs) -> Iterator[subprocess.Popen]:
    """`subprocess.Popen(command, **kwargs)`, killed and reaped when the block ends.

    By default its output and errors are text pipes; `kwargs` may say otherwise.
    """
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **kwargs}
    process = subprocess.Popen(command, preexec_fn=_default_sigint, **options)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
