"""Writing files and folders so that a crash, a kill or a power cut leaves the old or the new.

Never half of each, whatever the instant:

- `atomic_write`: one file, through a temporary file, flushed to disk, renamed into place.
- `staged_folder`: a whole folder (a saved model), written beside it, flushed, then
  swapped with the old one in one step (`renameat2(RENAME_EXCHANGE)` on Linux; two renames
  elsewhere). Entries of the old folder that the new one does not replace (a `checkpoints/`
  folder, notes of the user's) are carried over by hard links, so nothing is copied or
  lost; files that belonged to the old version and not to the new are left behind with it.
- `folder_lock`: one writer at a time for a folder; others wait, or are refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

__all__ = ["atomic_write", "write_text", "staged_folder", "folder_lock", "fsync_folder"]


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

    Args:
        path: The file to write; its folder is created if missing.
        write: Writes the content to the path it is given (the temporary file).

    Returns:
        `path`, as a `Path`. It gets the usual permissions (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        _flush(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_folder(path.parent)
    return path


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
    folder.parent.mkdir(parents=True, exist_ok=True)
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
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; a model is saved as a folder")
    with folder_lock(folder, wait=wait, what="saving to"):
        _recover(folder)
        stage = folder.with_name(f".{folder.name}.cvae-{secrets.token_hex(4)}")
        os.mkdir(stage)
        try:
            yield stage
            mode = _default_mode()
            for path in stage.iterdir():
                if path.is_file():
                    os.chmod(path, mode)
                    _flush(path)
            if folder.is_dir():
                for entry in folder.iterdir():
                    if entry.name not in owned and not (stage / entry.name).exists():
                        _carry(entry, stage / entry.name)
            fsync_folder(stage)
            if not folder.exists():
                os.rename(stage, folder)
            elif not _exchange(stage, folder):
                old = folder.with_name(f".{folder.name}.cvae-old-{secrets.token_hex(4)}")
                os.rename(folder, old)  # the one instant without the folder, where no exchange
                os.rename(stage, folder)
                stage = old
            fsync_folder(folder.parent)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
