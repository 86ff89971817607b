"""Writing files and folders so that a crash, a kill or a power cut leaves the old or the new.

Never half of each, whatever the instant, and never over what is not a file of ours.
Every output of the library and the `cvae` command goes through here:

- `output_path`: where a write to a path goes. A symlink is followed, and its target is
  what gets replaced; a regular file keeps its permissions; a stream the user names
  (stdout, a terminal, a pipe, `/dev/null`) is written through; a folder, a socket or any
  other device is refused: renaming a file over `/dev/full` replaced the device itself.
- `atomic_write`: one file, through a temporary file, flushed to disk, renamed into place.
- `staged_folder`: a whole folder (a saved model), written beside it, flushed, then
  swapped with the old one in one step (`renameat2(RENAME_EXCHANGE)` on Linux; two renames
  elsewhere). Entries of the old folder that the new one does not replace (a `checkpoints/`
  folder, notes of the user's) are carried over by hard links, so nothing is copied or
  lost; files that belonged to the old version and not to the new are left behind with it.
  A symlinked folder is saved through (its target gets the model), and the folder and the
  files it had keep their permissions (a private folder stays private).
- `folder_lock`: one writer at a time for a folder; others wait, or are refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from cvae._checks import expand_path

__all__ = ["Output", "output_path", "atomic_write", "write_text", "staged_folder", "folder_lock",
           "fsync_folder", "make_parent", "open_regular", "read_regular"]


@dataclass(frozen=True)
class Output:
    """Where a write goes: `path` replaced atomically, or written through if `stream`.

    Attributes:
        path: The file to replace (a symlink's target), or the stream to write into.
        stream: True for a stream the user named (stdout, a terminal, a pipe, the null
            device), which is written through instead of replaced.
        mode: The permissions the file gets: an existing file's own, else the usual ones.
    """

    path: Path
    stream: bool
    mode: int


def _is_console(found: os.stat_result) -> bool:
    """Whether `found` is this process's stdout or stderr (a terminal, a pipe, a redirect)."""
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            other = os.fstat(fd)
            if (found.st_dev, found.st_ino) == (other.st_dev, other.st_ino):
                return True
    return False


def _is_stream_device(found: os.stat_result) -> bool:
    """Whether a character device is one a user writes output to: null, or a terminal."""
    with contextlib.suppress(OSError):
        if found.st_rdev == os.stat(os.devnull).st_rdev:  # the null device, wherever its node is
            return True
    major = os.major(found.st_rdev)
    return major in (4, 5) or 136 <= major <= 143  # Linux's terminals: ttyN, tty, pts/N


def output_path(path: str | os.PathLike[str]) -> Output:
    """Decide where a write to `path` goes, refusing what must not be replaced.

    Raises:
        ValueError: If `path` is empty, or names a device, a socket or a folder: cvae writes
            files, stdout, a terminal, a pipe or the null device, nothing else.
    """
    given = expand_path(path, "the output path")
    try:
        found = os.stat(given)  # through symlinks (/dev/stdout is one, to /proc/self/fd/1)
    except FileNotFoundError:
        # New, or a symlink to a file not made yet: the file is made where the link points.
        return Output(Path(os.path.realpath(given)), False, _default_mode())
    except OSError as err:
        raise ValueError(f"cannot write {given}: {err.strerror or err}") from None
    mode = found.st_mode
    if stat.S_ISREG(mode):
        # Redirected stdout (`-o /dev/stdout > out.json`) is written into, not replaced.
        return Output(Path(os.path.realpath(given)), _is_console(found), stat.S_IMODE(mode))
    if stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and (_is_console(found) or _is_stream_device(found))):
        return Output(given, True, stat.S_IMODE(mode))
    kind = ("a folder" if stat.S_ISDIR(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a device")
    raise ValueError(f"{given} is {kind}, not a file: cvae writes to files (or to stdout, a"
                     f" terminal, a pipe or {os.devnull}); give a file name")


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new names, renames) to disk, where the system allows it."""
    with contextlib.suppress(OSError):  # some file systems cannot open folders for this
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _flush(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write through a temporary file in the same folder, flush it, then rename it over `path`.

    Where `path` leads is decided by `output_path`: a symlink's target is replaced, a
    file keeps its permissions (a new one gets 0666 less the umask), a stream the user
    named is written through, and a device, socket or folder is refused before `write`
    runs.

    Args:
        path: The file to write; its folder is created if missing.
        write: Writes the content to the path it is given (a temporary file that ends
            with `path`'s suffix, so that writers which tell the format by it can).

    Returns:
        `path`, as a `Path` (`~` expanded).

    Raises:
        ValueError: If `path` must not be replaced (see `output_path`).
    """
    out = output_path(path)
    if out.stream:
        _write_through(out.path, write)
        return expand_path(path)
    target = out.path
    make_parent(target, path)
    tmp = target.with_name(f".{target.stem}.cvae-{secrets.token_hex(4)}.tmp{target.suffix}")
    try:
        write(tmp)
        _flush(tmp)
        os.chmod(tmp, out.mode)
        os.replace(tmp, target)
    except OSError as err:  # named by the file asked for, not by the temporary one
        raise type(err)(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_folder(target.parent)
    return expand_path(path)


def make_parent(target: Path, given: str | os.PathLike[str]) -> None:
    """Create the folder that `target` goes in, or say in one line why it cannot be."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cannot write {given}: {target.parent}, or a folder above it,"
                                 f" is a file") from None
    except OSError as err:
        raise type(err)(f"cannot write {given}: cannot create the folder {target.parent}"
                        f" ({err.strerror or err})") from None


def open_regular(path: str | os.PathLike[str], *, dir_fd: int | None = None,
                 missing: str | None = None) -> int:
    """Open a file for reading, refusing anything but a regular file before reading a byte.

    Opened without blocking: a FIFO named like a model's file would otherwise wait forever.

    Args:
        path: The file; only its name is used if `dir_fd` is given.
        dir_fd: An open folder to open it in.
        missing: The message for a file that does not exist (default: the system's).

    Returns:
        The open file descriptor (the caller closes it).

    Raises:
        FileNotFoundError: If it is missing, or is not a regular file (a folder, a FIFO, a
            device), each said in its own words.
    """
    name = Path(path).name if dir_fd is not None else path
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    except FileNotFoundError:
        if missing is None:
            raise
        raise FileNotFoundError(missing) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(f"{path} is not a regular file (a folder, a FIFO or a device);"
                                f" cvae reads files")
    return fd


def read_regular(path: str | os.PathLike[str], *, limit: int, too_large: str, dir_fd: int | None = None,
                 missing: str | None = None) -> bytes:
    """The bytes of a small regular file, from one open file; refused past `limit` before reading.

    Args:
        path: The file.
        limit: The most bytes such a file has.
        too_large: Why a larger one is refused, after "PATH is N bytes; ".
        dir_fd: An open folder to open it in (see `open_regular`).
        missing: The message for a file that does not exist (see `open_regular`).

    Raises:
        FileNotFoundError: As `open_regular`.
        ValueError: If the file is larger than `limit`.
    """
    with os.fdopen(open_regular(path, dir_fd=dir_fd, missing=missing), "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise ValueError(f"{path} is {size:,} bytes; {too_large}")
        return file.read()


def _write_through(stream: Path, write: Callable[[Path], object]) -> None:
    """Write into a stream (stdout, a pipe, the null device): appended, never replaced."""
    import sys

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / f"output{stream.suffix}"
        write(tmp)
        for console in (sys.stdout, sys.stderr):  # what was printed comes first
            with contextlib.suppress(Exception):
                console.flush()
        try:
            with open(tmp, "rb") as source, open(stream, "ab") as sink:
                shutil.copyfileobj(source, sink)
        except OSError as err:
            raise type(err)(f"cannot write {stream}: {err.strerror or err}") from None


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` as UTF-8 to `path`, atomically (see `atomic_write`)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, wait: float = 0.0,
                what: str = "writing to") -> Iterator[None]:
    """Hold the lock of `folder` (a `.NAME.lock` file beside it) while the block runs.

    Args:
        folder: The folder to lock; it need not exist yet.
        wait: Seconds to wait for another holder to finish; 0 refuses at once.
        what: What the holder does, for the message.

    Raises:
        BlockingIOError: If another process holds the lock after `wait` seconds.
    """
    import fcntl

    folder = Path(folder)
    make_parent(folder, folder)
    path = folder.with_name(f".{folder.name}.lock")
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise BlockingIOError(f"another process is {what} {folder} (it holds"
                                      f" {path.name}); wait for it to finish, or use another"
                                      f" folder") from None
            time.sleep(0.05)
            continue
        # The holder before us may have removed the file as we opened it: then lock anew.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux's renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _carry(source: Path, target: Path) -> None:
    """Give `target` the entries of `source`, by hard links where the file system allows."""
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        target.mkdir()
        for entry in source.iterdir():
            _carry(entry, target / entry.name)
    else:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _is_cwd(folder: Path) -> bool:
    try:
        return os.path.samefile(folder, os.getcwd())
    except OSError:
        return False


def _keep_modes(folder: Path, stage: Path) -> None:
    """Give the new files the old ones' permissions, and flush them to disk.

    Each file gets the mode of the file it replaces (a new one 0666 less the umask), so
    that the files of a folder the user made private stay private.
    """
    for path in stage.iterdir():
        if path.is_file():
            old = folder / path.name
            os.chmod(path, stat.S_IMODE(old.stat().st_mode) if old.is_file() else _default_mode())
            _flush(path)


def _recover(folder: Path) -> None:
    """Clear what a killed writer left beside `folder`.

    A writer killed between the two renames of a save without an exchange left no folder:
    then the old version goes back first.
    """
    debris = sorted(p for p in folder.parent.glob(f".{folder.name}.cvae-*") if p.is_dir())
    old = [p for p in debris if p.name.startswith(f".{folder.name}.cvae-old-")]
    if old and not folder.exists():
        os.rename(old[0], folder)
        debris.remove(old[0])
    for path in debris:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike[str], owned: Collection[str], *,
                  wait: float = 30.0) -> Iterator[Path]:
    """Write a new version of `folder` in a staging folder, then swap it in whole.

    The block writes the new files into the staging folder it is given. When it ends
    without an error, the entries of the old folder whose names are not in `owned` and not
    written anew are carried over, everything is flushed to disk, and the two folders are
    swapped; then the old one is removed. If the block raises, the staging folder is
    removed and `folder` is as it was. Concurrent writers of one folder take turns.

    Args:
        folder: The folder to write (created if missing).
        owned: Names that belong to a version: an old one that the block does not write
            is not carried over (it described the old version).
        wait: Seconds to wait for another writer of `folder`.

    Yields:
        The staging folder.

    Raises:
        NotADirectoryError: If `folder` is a file, or another thing that is not a folder.
    """
    given = expand_path(folder, "the folder to save to")
    folder = Path(os.path.realpath(given))  # a symlinked folder: its target gets the model
    if os.path.lexists(folder) and not folder.is_dir():
        raise NotADirectoryError(f"{given} is {'a file' if folder.is_file() else 'not a folder'};"
                                 f" a model is saved as a folder")
    with folder_lock(folder, wait=wait, what="saving to"):
        _recover(folder)
        stage = folder.with_name(f".{folder.name}.cvae-{secrets.token_hex(4)}")
        os.mkdir(stage)
        try:
            yield stage
            _keep_modes(folder, stage)
            if folder.is_dir():
                for entry in folder.iterdir():
                    if entry.name not in owned and not (stage / entry.name).exists():
                        _carry(entry, stage / entry.name)
                os.chmod(stage, stat.S_IMODE(os.stat(folder).st_mode))  # after carrying into it
            fsync_folder(stage)
            here = _is_cwd(folder)
            if not folder.exists():
                os.rename(stage, folder)
            elif not _exchange(stage, folder):
                old = folder.with_name(f".{folder.name}.cvae-old-{secrets.token_hex(4)}")
                os.rename(folder, old)  # the one instant without the folder, where no exchange
                os.rename(stage, folder)
                stage = old
            if here:  # saved into the working folder: work on in the new one, not the removed one
                os.chdir(folder)
            fsync_folder(folder.parent)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
