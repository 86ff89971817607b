"""The safetensors format, as cvae writes and reads it: a checksum in, one open file out.

Writing stores the SHA-256 of the data in the header's metadata (`CHECKSUM_KEY`).
Reading goes through one open file (`TensorFile`): the header first, checked alone so
that a caller can refuse before the data cost anything, then the data from the same open
file, verified against the checksum. Opening the file once is what makes a read
consistent while another process saves: a save renames a new file into place, and an
open file keeps the version it opened, where a second open could see the next one.
Only safetensors are ever read, so loading never runs code from a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import torch

from cvae._devices import check_fits
from cvae._files import atomic_write, open_regular

__all__ = ["CHECKSUM_KEY", "Header", "TensorFile", "read_header", "save_tensors"]

#: The header metadata key of the SHA-256 of a file's data, written by `save_tensors`.
CHECKSUM_KEY = "cvae.sha256"
_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
           "I8": torch.int8, "U8": torch.uint8, "I16": torch.int16, "U16": torch.uint16,
           "I32": torch.int32, "U32": torch.uint32, "I64": torch.int64, "U64": torch.uint64,
           "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
           "C64": torch.complex64}
_WIDTHS = {name: torch.empty((), dtype=dtype).element_size() for name, dtype in _DTYPES.items()}
#: The dtypes that weights may have.
FLOATS = ("F16", "BF16", "F32", "F64")
_MAX_HEADER = 100_000_000  # safetensors' own limit on the header's size


@dataclass(frozen=True)
class Header:
    """What a safetensors file says of itself, read without its data.

    Attributes:
        path: The file.
        tensors: Tensor name -> `(dtype, shape)`, as the header names them (`"F32"`, ...).
        metadata: The header's string metadata (`CHECKSUM_KEY` among it, if written here).
        data_start: Where the data begin in the file.
        offsets: Tensor name -> `(begin, end)` of its bytes, from `data_start`.
    """

    path: Path
    tensors: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str]
    data_start: int
    offsets: dict[str, tuple[int, int]]

    @property
    def numel(self) -> int:
        """How many values the file holds, over all its tensors."""
        return sum(math.prod(shape) for _, shape in self.tensors.values())

    @property
    def nbytes(self) -> int:
        """How many bytes of data the file holds."""
        return max((end for _, end in self.offsets.values()), default=0)


def corrupt(path: Path, why: str) -> ValueError:
    """The error for a file that is not a readable safetensors file, saying why."""
    return ValueError(f"{path} is not a readable safetensors file ({why}): it is probably"
                      f" truncated or corrupted; save it again, or download it again with"
                      f" force_download=True")


def _parse_header(file: object, path: Path, size: int) -> Header:
    read = file.read  # type: ignore[attr-defined]
    n = int.from_bytes(read(8), "little") if size >= 8 else -1
    if not 0 < n <= min(size - 8, _MAX_HEADER):
        raise corrupt(path, f"a header of {n} bytes in a file of {size}")
    try:
        raw = json.loads(read(n))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        why = "nested too deep" if isinstance(err, RecursionError) else str(err)
        raise corrupt(path, f"its header is not JSON: {why}") from None
    if not isinstance(raw, dict):
        raise corrupt(path, "its header is not a JSON object")
    metadata = raw.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise corrupt(path, "its header's metadata is not a JSON object")
    data_size, tensors, offsets = size - 8 - n, {}, {}
    for name, entry in raw.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            if not all(isinstance(s, int) and s >= 0 for s in [*shape, begin, end]):
                raise ValueError
            width = _WIDTHS[dtype]
        except (KeyError, TypeError, ValueError):
            raise corrupt(path, f"the entry of tensor {name[:100]!r} is malformed") from None
        if end - begin != math.prod(shape) * width or end > data_size:
            raise corrupt(path, f"tensor {name[:100]!r} runs past the end of the data")
        tensors[name] = (dtype, tuple(shape))
        offsets[name] = (begin, end)
    if max((end for _, end in offsets.values()), default=0) != data_size:
        raise corrupt(path, f"the data are {data_size} bytes, the tensors"
                            f" {max((end for _, end in offsets.values()), default=0)}")
    return Header(path, tensors, {str(k): str(v) for k, v in metadata.items()}, 8 + n, offsets)


class TensorFile:
    """A safetensors file opened once: its header read and checked at once, its data on demand.

    Use it as a context manager (`with TensorFile(path) as f: ... f.read()`), so that the
    file closes.

    Args:
        path: The file; its name is opened relative to `dir_fd` if given.
        dir_fd: An open folder to open the file in (one snapshot of a model folder).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is too short, its header is not JSON, or a tensor's entry is
            malformed or points outside the data.
    """

    def __init__(self, path: str | os.PathLike[str], *, dir_fd: int | None = None):
        self.path = Path(path)
        fd = open_regular(self.path, dir_fd=dir_fd, missing=f"{self.path} not found: the weights of a"
                                                             f" cvae model are in {self.path.name}")
        self._file = os.fdopen(fd, "rb")
        try:
            self.size = os.fstat(fd).st_size
            self.header = _parse_header(self._file, self.path, self.size)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> TensorFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def read(self, device: str | torch.device = "cpu", *,
             require_checksum: bool = False) -> dict[str, torch.Tensor]:
        """The file's tensors, from the data of this open file, checked against its checksum.

        Args:
            device: Where the tensors go.
            require_checksum: Refuse a file without a checksum (every file this version
                writes has one).

        Raises:
            MemoryError: If the data would not fit in the memory free, before reading them.
            ValueError: If the checksum differs (the data changed after writing), or is
                required and missing.
        """
        header = self.header
        want = header.metadata.get(CHECKSUM_KEY)
        if want is None and require_checksum:
            raise ValueError(f"{self.path} has no checksum ({CHECKSUM_KEY} in its header), which"
                             f" every file of its format has: it was altered after it was"
                             f" written; save it again, or download it again with"
                             f" force_download=True")
        check_fits(2 * header.nbytes, "cpu", f"reading {self.path.name} ({len(header.tensors):,}"
                   f" tensors)", "this file is larger than any cvae model should be")
        data = bytearray(header.nbytes)
        self._file.seek(header.data_start)
        if self._file.readinto(data) != len(data):
            raise corrupt(self.path, "it ended before its data")
        if want is not None and hashlib.sha256(data).hexdigest() != want:
            raise ValueError(f"{self.path} is corrupted: its data do not match the checksum saved"
                             f" with them; save it again, or download it again with"
                             f" force_download=True")
        return {name: _tensor(data, dtype, shape, header.offsets[name]).to(device)
                for name, (dtype, shape) in header.tensors.items()}


def _tensor(data: bytearray, dtype: str, shape: tuple[int, ...],
            offsets: tuple[int, int]) -> torch.Tensor:
    """One tensor, copied out of the file's data (so that the data can be freed)."""
    begin, end = offsets
    if begin == end:
        return torch.empty(shape, dtype=_DTYPES[dtype])
    return torch.frombuffer(bytearray(memoryview(data)[begin:end]), dtype=_DTYPES[dtype]).view(shape)


def read_header(path: str | os.PathLike[str]) -> Header:
    """Read and check a safetensors file's header alone: every offset inside the file.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is too short, its header is not JSON, or a tensor's entry is
            malformed or points outside the data.
    """
    with TensorFile(path) as file:
        return file.header


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> Path:
    """Write tensors to a safetensors file, atomically, with a checksum.

    The SHA-256 of the data goes into the header's metadata (`CHECKSUM_KEY`), so that
    reading can tell a file whose bytes changed after it was written.

    Returns:
        The path written.
    """
    from safetensors.torch import save

    state = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    plain = save(state)
    start = 8 + int.from_bytes(plain[:8], "little")
    # The data do not depend on the metadata, so the second serialisation holds the same.
    checked = save(state, metadata={"format": "pt",
                                    CHECKSUM_KEY: hashlib.sha256(plain[start:]).hexdigest()})
    return atomic_write(path, lambda p: p.write_bytes(checked))

