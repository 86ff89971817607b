"""Weights as safetensors files: written atomically, read with every name and shape checked.

Only safetensors are ever read, so loading weights never runs code from a file.
`safetensors` is imported inside the functions, so that `import cvae` stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .files import atomic_write

__all__ = ["save_weights", "load_weights"]


def save_weights(module: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write `module`'s state dict to a safetensors file, atomically.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    state = {name: t.detach().contiguous().cpu() for name, t in module.state_dict().items()}
    return atomic_write(path, lambda p: save_file(state, str(p), metadata={"format": "pt"}))


def load_weights(module: torch.nn.Module, path: str | os.PathLike[str], device: str = "cpu", *,
                 rename: Mapping[str, str] | None = None, config_name: str = "config.json") -> None:
    """Load a safetensors file into `module`, after checking every name and shape.

    Args:
        module: The module to load into; it says which tensors must be there.
        path: The safetensors file.
        device: Where to read the tensors to.
        rename: Old tensor names to new ones, for files written by older releases.
        config_name: The file whose settings built `module`, for messages.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a readable safetensors file, or its tensors are not the
            module's (a name missing or extra, or a shape that differs).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the weights of a cvae model are in {path.name}")
    try:
        state = load_file(str(path), device=device)
    except SafetensorError as err:
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}): it is probably truncated or"
            f" corrupted; save it again, or download it again with force_download=True"
        ) from None
    for old, new in (rename or {}).items():
        if old in state and new not in state:
            state[new] = state.pop(old)
    expected = module.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(
            f"{config_name} does not match {path.name}: tensors missing from the weights:"
            f" {missing}; tensors the config does not build: {unexpected}"
        )
    for name, want in expected.items():  # in the module's order: the first layer that differs
        if state[name].shape != want.shape:
            raise ValueError(
                f"{config_name} does not match {path.name}: tensor {name!r} has shape"
                f" {tuple(state[name].shape)} in the weights, but the config builds {tuple(want.shape)}"
            )
    module.load_state_dict(state)
