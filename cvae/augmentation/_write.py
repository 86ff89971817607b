"""Writing a labelled synthetic set in the forms people train on.

- `imagefolder`: `images/CLASS/00000.png`, one folder per class, the layout that
  `cvae.data.load_image_folder`, torchvision's `ImageFolder` and Hugging Face's `imagefolder` read;
- `parquet`: `data/train-00000-of-00001.parquet`, with the `Image` and `ClassLabel`
  features that `datasets.load_dataset("parquet", ...)` gives back;
- `hf`: `dataset/`, from `datasets.Dataset.save_to_disk` (`datasets.load_from_disk`).

Each image is encoded once as PNG (8 bits a channel), whatever the form.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

FORMATS = {"imagefolder": "images", "parquet": "data", "hf": "dataset"}  # form -> its entry


def check_format(fmt: str) -> str:
    """`fmt` if it is a known form, with the `datasets` package for the two that need it.

    Raises:
        ValueError: If the form is unknown.
        ImportError: If it needs `datasets` and that is not installed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "imagefolder":
        try:
            import datasets  # noqa: F401
        except ImportError:
            raise ImportError(
                f"format {fmt!r} writes a Hugging Face dataset, which needs the"
                ' `datasets` package: pip install "torch-cvae[datasets]"'
            ) from None
    return fmt


def folder_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """A folder name for each class: its name, with slashes made `-` and no leading dot.

    Where that leaves an empty name or two classes with one name, every class is named by
    its index. (Folder readers number classes in sorted order of the names: read the
    classes back by name, or from the `parquet`/`hf` forms, which keep the model's order.)
    """
    if not class_names:
        return [str(i) for i in range(num_classes)]
    names = [name.replace("/", "-").replace("\\", "-").replace("\0", "").lstrip(".") for name in class_names]
    return names if all(names) and len(set(names)) == num_classes else [str(i) for i in range(num_classes)]


def as_uint8(images: torch.Tensor) -> np.ndarray:
    """`(N, C, H, W)` images in [0, 1] as `(N, H, W, C)` bytes (values outside are clipped)."""
    pixels = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, "PNG")
    return buffer.getvalue()


def write_set(
    folder: Path, images: torch.Tensor, labels: torch.Tensor, class_names: list[str], fmt: str
) -> None:
    """Write `images` with their class `labels` into `folder`, in form `fmt`, as its entry `FORMATS[fmt]`."""
    pixels = as_uint8(images)
    labels_list = labels.tolist()
    entry = folder / FORMATS[fmt]
    if fmt == "imagefolder":
        numbers = [0] * len(class_names)
        for name in set(labels_list):
            (entry / class_names[name]).mkdir(parents=True)
        for image, label in zip(pixels, labels_list):
            (entry / class_names[label] / f"{numbers[label]:05d}.png").write_bytes(_png(image))
            numbers[label] += 1
        return
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=class_names)})
    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": _png(image), "path": None} for image in pixels], "label": labels_list},
        features=features,
    )
    if fmt == "parquet":
        entry.mkdir()
        table.to_parquet(str(entry / "train-00000-of-00001.parquet"))
    else:
        table.save_to_disk(str(entry))
