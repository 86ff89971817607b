"""Generation on demand with a bundled model, and writing image grids."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import torch

from .model import ConditionalVAE

__all__ = ["DEFAULT_MODEL", "sample", "load_default_model", "make_grid", "save_grid"]

#: The bundled model behind `cvae.sample`.
DEFAULT_MODEL = "mnist-mlp"


@functools.cache
def load_default_model(name: str = DEFAULT_MODEL) -> ConditionalVAE:
    """Load a bundled model once; later calls return the same object.

    Args:
        name: A bundled model's name (see `cvae.list_pretrained()`).
    """
    return ConditionalVAE.from_pretrained(name)


def sample(digit: int, n: int = 16, *, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Generate `n` new images of an MNIST digit with the default bundled model.

    Args:
        digit: The digit to draw, an int from 0 to 9.
        n: How many images.
        temperature: Scale of the prior noise (1.0 draws from the prior itself).
        generator: Optional random generator for reproducible samples.

    Returns:
        A float tensor of shape `(n, 1, 28, 28)` with values in [0, 1].

    Raises:
        TypeError: If `digit` or `n` is not an int.
        ValueError: If `digit` is outside 0-9 or `n < 1`.

    Example:
        >>> import cvae
        >>> sevens = cvae.sample(7, 16)
    """
    if isinstance(digit, bool) or not isinstance(digit, int):
        raise TypeError(f"digit must be an int from 0 to 9, got {type(digit).__name__} {digit!r}")
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be from 0 to 9, got {digit}")
    return load_default_model().sample(digit, n, temperature=temperature, generator=generator)


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2,
              pad_value: float = 0.0) -> torch.Tensor:
    """Tile `(B, C, H, W)` images into one `(C, H', W')` grid image, `nrow` images per row.

    The same layout as `torchvision.utils.make_grid`, written here so that sampling from
    the command line does not pay for importing torchvision.

    Args:
        images: The images, values in [0, 1].
        nrow: Images per row; default: a near-square grid.
        padding: Pixels between images and around the grid.
        pad_value: Value of the padding pixels.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / nrow)
    grid = images.new_full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding),
                           pad_value)
    for i, image in enumerate(images):
        top, left = (i // nrow) * (h + padding) + padding, (i % nrow) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = image
    return grid


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int | None = None,
              scale: int = 1) -> Path:
    """Write `(B, C, H, W)` images in [0, 1] to an image file (PNG by the name) as one grid.

    Args:
        images: The images; 1 channel is written as grey, 3 as RGB.
        path: The file to write; its folder is created if missing.
        nrow: Images per row; default: a near-square grid.
        scale: Enlarge each pixel to `scale x scale` pixels, for viewing.

    Returns:
        The path written.
    """
    from PIL import Image

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow)
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    array = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(path)
    return path
