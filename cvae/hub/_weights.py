"""Weights as safetensors files: written with a checksum, read only after every check.

Reading goes in steps, each refusing before the next costs anything: the header alone
(names, dtypes, shapes, offsets); the model that a config would build, made on PyTorch's
meta device under a budget that the header sets, so that a config of absurd sizes
allocates nothing; the comparison of every tensor's name, shape and dtype; the checksum
of the data, which `save_weights` stores in the header's metadata; and last the values,
which must be finite. Only safetensors are ever read, so loading never runs code from a
file; `safetensors` is imported inside the functions, so that `import cvae` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from cvae._files import atomic_write

__all__ = ["Header", "read_header", "save_tensors", "save_weights", "load_tensors",
           "load_weights", "check_tensors", "creation_budget", "CHECKSUM_KEY"]

#: The header metadata key of the SHA-256 of a file's data, written by `save_weights`.
CHECKSUM_KEY = "cvae.sha256"
_FLOATS = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
_OTHERS = {"I8": 1, "U8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8, "U64": 8,
           "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}
_MAX_HEADER = 100_000_000  # safetensors' own limit on the header's size


@dataclass(frozen=True)
class Header:
    """What a safetensors file says of itself, read without its data.

    Attributes:
        path: The file.
        tensors: Tensor name -> `(dtype, shape)`, as the header names them (`"F32"`, ...).
        metadata: The header's string metadata (`CHECKSUM_KEY` among it, if written here).
        data_start: Where the data begin in the file.
    """

    path: Path
    tensors: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str]
    data_start: int

    @property
    def numel(self) -> int:
        """How many values the file holds, over all its tensors."""
        return sum(math.prod(shape) for _, shape in self.tensors.values())


def _corrupt(path: Path, why: str) -> ValueError:
    return ValueError(f"{path} is not a readable safetensors file ({why}): it is probably"
                      f" truncated or corrupted; save it again, or download it again with"
                      f" force_download=True")


def read_header(path: str | os.PathLike[str]) -> Header:
    """Read and check a safetensors file's header: every offset inside the file.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is too short, its header is not JSON, or a tensor's entry is
            malformed or points outside the data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the weights of a cvae model are in {path.name}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little") if size >= 8 else -1
        if not 0 < n <= min(size - 8, _MAX_HEADER):
            raise _corrupt(path, f"a header of {n} bytes in a file of {size}")
        try:
            raw = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _corrupt(path, f"its header is not JSON: {err}") from None
    if not isinstance(raw, dict):
        raise _corrupt(path, "its header is not a JSON object")
    metadata = raw.pop("__metadata__", None) or {}
    data_size, tensors, ends = size - 8 - n, {}, []
    for name, entry in raw.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            if not all(isinstance(s, int) and s >= 0 for s in [*shape, begin, end]):
                raise ValueError
            width = _FLOATS.get(dtype) or _OTHERS[dtype]
        except (KeyError, TypeError, ValueError):
            raise _corrupt(path, f"the entry of tensor {name!r} is malformed") from None
        if end - begin != math.prod(shape) * width or end > data_size:
            raise _corrupt(path, f"tensor {name!r} runs past the end of the data")
        tensors[name] = (dtype, tuple(shape))
        ends.append(end)
    if max(ends, default=0) != data_size:
        raise _corrupt(path, f"the data are {data_size} bytes, the tensors {max(ends, default=0)}")
    return Header(path, tensors, {str(k): str(v) for k, v in metadata.items()}, 8 + n)


def _digest(path: Path, start: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        while chunk := f.read(1 << 22):
            sha.update(chunk)
    return sha.hexdigest()


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


def save_weights(module: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write `module`'s state dict with `save_tensors`; returns the path written."""
    return save_tensors(module.state_dict(), path)


def load_tensors(header: Header, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read the tensors of a file whose header was read, verifying its checksum if it has one.

    Raises:
        ValueError: If the checksum differs (the data changed after writing) or the data
            cannot be read.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    want = header.metadata.get(CHECKSUM_KEY)
    if want is not None and _digest(header.path, header.data_start) != want:
        raise ValueError(f"{header.path} is corrupted: its data do not match the checksum saved"
                         f" with them; save it again, or download it again with"
                         f" force_download=True")
    try:
        return load_file(str(header.path), device=str(device))
    except SafetensorError as err:
        raise _corrupt(header.path, str(err)) from None


class _Budget(TorchFunctionMode):
    """Counts the values of the tensors created inside it, and stops past a limit."""

    FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.eye, torch.tensor,
                 torch.rand, torch.randn, torch.randint, torch.arange, torch.linspace}

    def __init__(self, values: int, tensors: int, refuse: Callable[[str], Exception]):
        super().__init__()
        self.left, self.tensors_left, self.refuse = values, tensors, refuse

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func in self.FACTORIES and isinstance(out, torch.Tensor):
            self.left -= out.numel()
            self.tensors_left -= 1
            if self.left < 0 or self.tensors_left < 0:
                raise self.refuse("more values" if self.left < 0 else "more tensors")
        return out


@contextmanager
def creation_budget(header: Header, config_name: str = "config.json") -> Iterator[None]:
    """Build a module on the meta device, refusing one far larger than `header`'s weights.

    Inside, tensors are made on the meta device (no memory) and counted; past twice the
    file's values (and tensors), plus room for small buffers, the build stops with a
    `ValueError`. Errors of the build itself (a negative size, say) become `ValueError`s.
    """
    def refuse(what: str) -> ValueError:
        return ValueError(f"{config_name} does not match {header.path.name}: it builds a model"
                          f" of far {what} than the {len(header.tensors)} tensors and"
                          f" {header.numel:,} values of the weights; the config is not the one"
                          f" these weights were saved with")

    try:
        with torch.device("meta"), _Budget(2 * header.numel + 10_000_000,
                                           2 * len(header.tensors) + 100, refuse):
            yield
    except (RuntimeError, OverflowError, MemoryError) as err:
        raise ValueError(f"{config_name} does not build a model ({type(err).__name__}:"
                         f" {str(err).splitlines()[0]})") from None


def check_tensors(expected: Mapping[str, torch.Tensor], header: Header, *,
                  rename: Mapping[str, str] | None = None,
                  config_name: str = "config.json") -> None:
    """Compare a module's tensors (on any device, meta included) with a file's header.

    Raises:
        ValueError: If a name is missing or extra, a shape differs, or the file holds a
            tensor that is not floating point.
    """
    file = {(rename or {}).get(name, name): entry for name, entry in header.tensors.items()}
    name = header.path.name
    missing, unexpected = sorted(expected.keys() - file.keys()), sorted(file.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(f"{config_name} does not match {name}: tensors missing from the weights:"
                         f" {missing}; tensors the config does not build: {unexpected}")
    for key, want in expected.items():  # in the module's order: the first layer that differs
        dtype, shape = file[key]
        if shape != tuple(want.shape):
            raise ValueError(f"{config_name} does not match {name}: tensor {key!r} has shape"
                             f" {shape} in the weights, but the config builds {tuple(want.shape)}")
        if dtype not in _FLOATS:
            raise ValueError(f"{name} holds tensor {key!r} as {dtype}, which is not a floating-point"
                             f" type (F16, BF16, F32, F64): these are not weights of a cvae model")


def load_weights(module: torch.nn.Module, header: Header, device: str | torch.device = "cpu", *,
                 rename: Mapping[str, str] | None = None,
                 config_name: str = "config.json") -> None:
    """Load a checked file (see `read_header`, `check_tensors`) into `module`.

    The data's checksum is verified when the file has one, and every value must be finite.

    Raises:
        ValueError: If the checksum differs (the data changed after saving) or a tensor
            holds NaN or infinite values.
    """
    check_tensors(module.state_dict(), header, rename=rename, config_name=config_name)
    state = load_tensors(header, device)
    state = {(rename or {}).get(name, name): t for name, t in state.items()}
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{header.path.name} holds NaN or infinite values in tensor"
                             f" {name!r}: a model that diverged, or a damaged file; load an"
                             f" earlier save or checkpoint")
    module.load_state_dict(state)
