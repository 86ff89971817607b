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

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from cvae._checks import names_list
from cvae.hub._safetensors import FLOATS, Header, TensorFile, save_tensors

__all__ = ["save_weights", "load_weights", "check_tensors", "creation_budget"]


def save_weights(module: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write `module`'s state dict with `save_tensors` (a checksum in); returns the path written."""
    return save_tensors(module.state_dict(), path)


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
                         f" [{names_list(missing)}]; tensors the config does not build:"
                         f" [{names_list(unexpected)}]")
    for key, want in expected.items():  # in the module's order: the first layer that differs
        dtype, shape = file[key]
        if shape != tuple(want.shape):
            raise ValueError(f"{config_name} does not match {name}: tensor {key!r} has shape"
                             f" {shape} in the weights, but the config builds {tuple(want.shape)}")
        if dtype not in FLOATS:
            raise ValueError(f"{name} holds tensor {key!r} as {dtype}, which is not a floating-point"
                             f" type (F16, BF16, F32, F64): these are not weights of a cvae model")


def load_weights(module: torch.nn.Module, file: TensorFile, device: str | torch.device = "cpu", *,
                 rename: Mapping[str, str] | None = None, config_name: str = "config.json",
                 require_checksum: bool = True) -> None:
    """Load an open, checked file (see `TensorFile`, `check_tensors`) into `module`.

    The data's checksum is verified, and every value must be finite.

    Args:
        module: The model to load into.
        file: The weights file, open.
        device: Where the weights go.
        rename: Tensor names of an earlier format -> their names now.
        config_name: The config's name, for messages.
        require_checksum: Refuse a file without a checksum; only files of formats from
            before checksums may lack one.

    Raises:
        ValueError: If the checksum differs (the data changed after saving) or is missing,
            or a tensor holds NaN or infinite values.
    """
    check_tensors(module.state_dict(), file.header, rename=rename, config_name=config_name)
    state = file.read(device, require_checksum=require_checksum)
    state = {(rename or {}).get(name, name): t for name, t in state.items()}
    for name, tensor in state.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{file.path.name} holds NaN or infinite values in tensor"
                             f" {name!r}: a model that diverged, or a damaged file; load an"
                             f" earlier save or checkpoint")
    module.load_state_dict(state)
