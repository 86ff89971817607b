"""Writing images: a batch as one grid (PNG, or any format PIL knows), a strip as a GIF.

PIL is imported only when a file is written; torchvision is not needed at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cvae._checks import check_images, check_int
from cvae._files import atomic_write

__all__ = ["make_grid", "save_grid", "save_gif"]


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2,
              pad_value: float = 0.0) -> torch.Tensor:
    """Tile `(B, C, H, W)` images into one `(C, H', W')` grid image, `nrow` images per row.

    The same layout as `torchvision.utils.make_grid`, written here so that sampling from
    the command line does not pay for importing torchvision.

    Args:
        images: The images, values in [0, 1].
        nrow: Images per row; default: a near-square grid, with no empty cell where one
            exists (8 images: 4 x 2).
        padding: Pixels between images and around the grid.
        pad_value: Value of the padding pixels.
    """
    check_images(images)
    _, c, h, w = images.shape
    nrow, height, width = _layout(images.shape, nrow, padding)
    grid = images.new_full((c, height, width), pad_value)
    for i, image in enumerate(images):
        top, left = (i // nrow) * (h + padding) + padding, (i % nrow) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = image
    return grid


def _layout(shape: torch.Size, nrow: int | None, padding: int) -> tuple[int, int, int]:
    """Images per row, and the height and width of the grid of `(B, C, H, W)` images."""
    b, _, h, w = shape
    nrow = check_int("nrow", nrow) if nrow is not None else _square_ish(b)
    return nrow, math.ceil(b / nrow) * (h + padding) + padding, nrow * (w + padding) + padding


def _square_ish(b: int) -> int:
    """Images per row for `b` images: a full grid near square, where one exists.

    A full grid is taken if it is at most twice as wide as tall (8 images: 4 x 2), else the
    square one, whose last row has empty cells (7 images: 3 x 3).
    """
    side = math.ceil(math.sqrt(b)) or 1
    full = [n for n in range(side, b + 1) if b % n == 0 and n <= 2 * (b // n)]
    return full[0] if full else side


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int | None = None,
              scale: int = 1, column_titles: Sequence[str] | None = None,
              description: str | None = None) -> Path:
    """Write `(B, C, H, W)` images in [0, 1] to an image file (PNG by the name) as one grid.

    Args:
        images: The images; 1 channel is written as grey, 3 as RGB.
        path: The file to write; its folder is created if missing.
        nrow: Images per row; default: a near-square grid, with no empty cell where one
            exists (8 images: 4 x 2).
        scale: Enlarge each pixel to `scale x scale` pixels, for viewing.
        column_titles: Text above each column (for example class names), cut to fit.
        description: What the images are (such as the class drawn), kept in a PNG file's
            `Description` text field.

    Returns:
        The path written.
    """
    from PIL.PngImagePlugin import PngInfo

    path = _image_path(path)
    image = _grid_image(images, nrow or (len(column_titles) if column_titles else None), scale)
    if column_titles:
        image = _with_titles(image, column_titles, images.shape[-1], scale)
    info = None
    if description and path.suffix.lower() == ".png":
        info = PngInfo()
        info.add_itxt("Description", description)  # iTXt: UTF-8, so any class name
    return atomic_write(path, lambda p: image.save(p, _format(path), pnginfo=info))


def save_gif(frames: torch.Tensor, path: str | os.PathLike[str], scale: int = 1,
             seconds_per_frame: float = 0.1) -> Path:
    """Write `(T, C, H, W)` frames in [0, 1] as an animated GIF that loops, there and back.

    Args:
        frames: The frames, in order.
        path: The file to write; its folder is created if missing.
        scale: Enlarge each pixel to `scale x scale` pixels.
        seconds_per_frame: How long each frame shows.

    Returns:
        The path written.
    """
    path = _image_path(path)
    images = [_grid_image(frame[None], 1, scale, padding=0) for frame in frames]
    images += images[-2:0:-1]  # and back again, so that the loop has no jump
    duration = round(seconds_per_frame * 1000)
    return atomic_write(path, lambda p: images[0].save(p, _format(path), save_all=True,
                                                        append_images=images[1:], loop=0, duration=duration))


def _format(path: Path) -> str:
    """PIL's name of the format that `path`'s suffix names (a symlink's target may have none)."""
    from PIL import Image

    return Image.EXTENSION[path.suffix.lower()]


def _image_path(path: str | os.PathLike[str]) -> Path:
    """`path`, if PIL can tell an image format from its name."""
    from PIL import Image

    path = Path(path)
    Image.init()
    if path.suffix.lower() not in Image.EXTENSION:
        raise ValueError(f"cannot tell an image format from {str(path)[:100]!r}: end the name with"
                         f" .png (or .jpg, .gif, .webp, ...)")
    return path


#: The most pixels a written image may have: 16,384 x 16,384 (PIL and viewers choke beyond).
MAX_PIXELS = 2**28


def _grid_image(images: torch.Tensor, nrow: int | None, scale: int, padding: int = 2) -> Any:
    from PIL import Image

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images to write must be (B, C, H, W) with 1 (grey) or 3 (RGB)"
                         f" channels, got shape {tuple(images.shape)}")
    scale = check_int("scale", scale)
    _, height, width = _layout(images.shape, nrow, padding)
    height, width = height * scale, width * scale
    if height * width > MAX_PIXELS:
        raise ValueError(f"the image would be {width:,} x {height:,} pixels, more than the"
                         f" {MAX_PIXELS:,} that cvae writes; lower the scale or write fewer images")
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow, padding)
    if scale > 1:
        grid = grid.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    array = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def _with_titles(image: Any, titles: Sequence[str], width: int, scale: int,
                 padding: int = 2) -> Any:
    """The grid with a band of text above it, one title centred over each column."""
    from PIL import Image, ImageDraw

    band = 14
    out = Image.new(image.mode, (image.width, image.height + band), 255 if image.mode == "L"
                    else (255, 255, 255))
    out.paste(image, (0, band))
    draw = ImageDraw.Draw(out)
    cell = (width + padding) * scale
    for i, title in enumerate(titles):
        text = str(title)
        while len(text) > 1 and draw.textlength(text) > cell:
            text = text[:-1]
        centre = (padding + i * (width + padding) + width / 2) * scale
        draw.text((centre - draw.textlength(text) / 2, 1), text, fill=0 if image.mode == "L"
                  else (0, 0, 0))
    return out
