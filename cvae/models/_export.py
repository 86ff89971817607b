"""ONNX export: a model's decoder (and encoder) for onnxruntime, in Python, C++ or a browser.

The exported graphs take labels as one-hot rows `(B, num_classes)` of float32, not class
indices: any runtime can build them, and soft labels (between two classes) work as in
`ConditionalVAE`'s latent methods. A model with several conditions takes its condition
rows `(B, conditions.width)`, as `model.condition_rows` makes them (`cvae.conditions`
describes the columns; `cvae.json` lists the parts). The batch size is free. Needs the `onnx` extra:
`pip install "torch-cvae[onnx]"` (onnx, onnxscript; onnxruntime to run the files).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from cvae._checks import expand_path
from cvae._files import atomic_write, write_text

__all__ = ["export_onnx", "export_folder", "write_info", "PARTS"]

PARTS = ("decoder", "encoder")


class _Decoder(nn.Module):
    """`(z, condition rows) -> image`, the likelihood's mean, as `decode` gives it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.model.likelihood.mean(self.model._decode_rows(z, label))


class _Encoder(nn.Module):
    """`(image, condition rows) -> (mu, logvar)`, as `encode` gives them."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model._encode_rows(image, label)


def export_onnx(model: nn.Module, path: str | os.PathLike[str], part: str = "decoder",
                opset: int = 18) -> Path:
    """Write the decoder or the encoder of `model` as an ONNX file, with a free batch size.

    - decoder: inputs `z` `(B, latent_dim)` and `label` `(B, num_classes)` (one-hot,
      float32; for several conditions, the rows `(B, conditions.width)`); output `image`
      `(B, C, H, W)`, what `model.decode` returns.
    - encoder: inputs `image` `(B, C, H, W)` and `label`; outputs `mu` and `logvar`,
      each `(B, latent_dim)`.

    Args:
        model: The `ConditionalVAE` (exported on the CPU in float32; the model itself is
            not changed).
        path: The `.onnx` file to write; its folder is created if missing.
        part: `"decoder"` or `"encoder"`.
        opset: The ONNX opset version.

    Returns:
        The path written.

    Raises:
        ValueError: If `part` is unknown.
        ImportError: If onnx or onnxscript is missing.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {list(PARTS)}, got {part!r}")
    try:
        import onnx  # noqa: F401  (torch.onnx needs both)
        import onnxscript  # noqa: F401
    except ImportError:
        raise ImportError('ONNX export needs onnx and onnxscript: pip install "torch-cvae[onnx]"') from None
    cpu = copy.deepcopy(model).float().cpu().eval()  # the caller's model stays where it is
    label = torch.eye(2, model.conditions.width)  # two rows: one-hot codes, for one label
    if part == "decoder":
        wrapper: nn.Module = _Decoder(cpu)
        args = (torch.zeros(2, model.latent_dim), label)
        names, outputs = ["z", "label"], ["image"]
    else:
        wrapper = _Encoder(cpu)
        args = (torch.zeros(2, *model.image_shape), label)
        names, outputs = ["image", "label"], ["mu", "logvar"]
    wrapper.eval()
    with warnings.catch_warnings():  # both inputs name their first axis "batch", on purpose
        warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")
        program = torch.onnx.export(
            wrapper, args, input_names=names, output_names=outputs, opset_version=opset,
            dynamic_shapes=({0: "batch"}, {0: "batch"}), dynamo=True, verbose=False)
    return atomic_write(path, lambda p: program.save(str(p)))


def export_folder(model: nn.Module, folder: str | os.PathLike[str]) -> list[Path]:
    """Write `decoder.onnx`, `encoder.onnx` and `cvae.json` (what a runtime needs to know).

    `cvae.json` holds the image shape, latent size, class count and names, and likelihood,
    so that a page or program can build inputs and lay out outputs without Python.

    Returns:
        The files written.

    Raises:
        NotADirectoryError: If `folder` is a file.
    """
    folder = expand_path(folder, "the export folder")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file; the export goes into a folder (decoder.onnx,"
                                 f" encoder.onnx, cvae.json): give a folder's name")
    written = [export_onnx(model, folder / f"{part}.onnx", part) for part in PARTS]
    return [*written, write_info(model, folder / "cvae.json")]


def write_info(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write `cvae.json`: the image shape, latent size, classes and likelihood of `model`."""
    info = {key: model.config[key] for key in ("image_shape", "num_classes", "latent_dim",
                                               "class_names", "likelihood", "conditions")}
    info["inputs"] = {"decoder": ["z", "label"], "encoder": ["image", "label"]}
    return write_text(path, json.dumps(info, indent=2) + "\n")
