"""Image files: folders of class folders, single files, and the pixels of a PIL image.

One rule decides grey or RGB everywhere (folders, Hugging Face datasets, files given on the
command line): the modes of all the images, not of the first. Images are read with PIL and
resized with bilinear filtering (antialiased), as torchvision's `Resize` does.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from cvae._checks import expand_path
from cvae._classes import UNLABELLED
from cvae._devices import check_fits
from cvae.data._labelled import LabelledImages

__all__ = ["IMAGE_EXTENSIONS", "decide_shape", "load_class_folders", "load_images", "pixels",
           "read_files", "read_pixels", "open_image"]

#: The file endings read as images (those of torchvision's `ImageFolder`); other files in a
#: class folder, and hidden files, are left alone.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# PIL modes without colour: read as one channel. Every other mode (RGB, RGBA, palette,
# CMYK, ...) is read as RGB.
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}


def decide_shape(headers: Iterable[tuple[str, str, tuple[int, int]]], channels: int | None,
                 image_size: Sequence[int] | None, where: str = "") -> tuple[int, tuple[int, int]]:
    """Channels and `(H, W)` for a set of images, from their headers (nothing decoded).

    Channels are those asked for, else grey if every image is grey and RGB if none is;
    the size is `image_size`, else the one size that every image has. With both given, the
    headers are not read at all.

    Args:
        headers: `(what, PIL mode, (H, W))` for every image, `what` naming it in messages
            (a file, a row); read lazily, after `channels` is checked.
        channels: 1 (grey) or 3 (RGB), or `None` to decide.
        image_size: `(H, W)` to resize every image to, or `None`.
        where: Where the images are, for messages (`" in <folder>"`).

    Raises:
        ValueError: If `channels` is not 1, 3 or `None`; if the images mix grey and colour
            and no `channels` is given, or differ in size and no `image_size` is given (the
            message names images of each kind).
    """
    if channels is not None and (channels not in (1, 3) or isinstance(channels, bool)):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if channels is not None and image_size is not None:
        return channels, (int(image_size[0]), int(image_size[1]))
    kinds: dict[bool, list[str]] = {True: [], False: []}
    sizes: dict[tuple[int, int], str] = {}
    for what, mode, size in headers:
        kinds[mode in _GREY_MODES].append(what)
        sizes.setdefault(size, what)
    grey, colour = kinds[True], kinds[False]
    if channels is None and grey and colour:
        raise ValueError(
            f"the images mix grey and colour: {len(grey)} grey (such as {', '.join(grey[:2])})"
            f" and {len(colour)} colour (such as {', '.join(colour[:2])}); pass channels=3"
            f" (--channels 3) to read all as RGB, or channels=1 (--channels 1) for grey")
    channels = channels or (1 if grey else 3)
    if image_size is not None:
        return channels, (int(image_size[0]), int(image_size[1]))
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w} ({what})" for (h, w), what in list(sizes.items())[:3])
        raise ValueError(f"the images{where} have {len(sizes)} different sizes (height x width),"
                         f" such as {shown}; pass image_size=(H, W) (--image-size H W) to resize"
                         f" them all")
    if not sizes:
        raise ValueError(f"there are no images{where} to take a size from")
    return channels, next(iter(sizes))


def pixels(image: Any, channels: int, size: Sequence[int] | None = None) -> torch.Tensor:
    """A PIL image as a `(C, H, W)` uint8 tensor: grey or RGB, resized to `size` `(H, W)`."""
    import numpy as np
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey, which convert() would clip
        image = Image.fromarray((np.asarray(image, dtype=np.float32) / 257).round().astype(np.uint8))
    elif image.mode == "F":  # 32-bit float grey: convert() would clip values in [0, 1] to 0 or 1
        values = np.asarray(image, dtype=np.float32)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if not (np.isfinite(values).all() and 0 <= low and high <= 255):
            raise ValueError(f"a 32-bit float image holds values from {low:g} to {high:g}; float images"
                             f" must hold values in [0, 1] or [0, 255]: rescale it")
        image = Image.fromarray((values * (255 if high <= 1 else 1)).round().astype(np.uint8))
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and tuple(image.size) != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(image.size[1], image.size[0], channels).permute(2, 0, 1)


def read_pixels(image: Any, name: str, channels: int, size: Sequence[int] | None) -> torch.Tensor:
    """`pixels` of an opened image, or an error that names it (`name`) and says what to do."""
    try:
        return pixels(image, channels, size)
    except Exception as err:  # noqa: BLE001  # PIL raises many types for damaged files
        why = str(err) if isinstance(err, (OSError, ValueError)) else _pil_error(err)
        raise ValueError(f"{name} could not be read ({why}); remove it or replace it") from None


def open_image(source: Any, name: str, advice: str = "remove it or move it out of the folder") -> Any:
    """`PIL.Image.open(source)`, or an error that names the image (`name`) and says what to do.

    PIL refuses more than its `MAX_IMAGE_PIXELS` (a decompression bomb) with its own error
    type, which did not say which file; every failure here does.

    Args:
        source: A file, or a file object.
        name: What to call it in the message.
        advice: What to do about it, in the message.

    Raises:
        ValueError: If PIL cannot open it: not an image, damaged, or too large.
    """
    from PIL import Image

    try:
        return Image.open(source)
    except Exception as err:  # noqa: BLE001  # UnidentifiedImageError, DecompressionBombError, ...
        raise ValueError(f"{name} is not an image that PIL can read ({_pil_error(err)}); {advice}") from None


def _pil_error(err: Exception) -> str:
    """The error's type, and its first line where it says more than the file's name."""
    first = (str(err).strip().splitlines() or [""])[0][:200]
    if not first or type(err).__name__ == "UnidentifiedImageError":  # "cannot identify image file <path>"
        return type(err).__name__
    return f"{type(err).__name__}: {first}"


def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Each class folder's image files, in torchvision's order: classes and files sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: give a folder with one sub-folder of images"
                                f" per class")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{folder} holds no class folders: put each class's images in a"
                                f" sub-folder named after the class ({folder}/<class>/<image>)")
    files = {}
    for c in classes:
        found = sorted(p for p in c.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                       and p.is_file() and not p.name.startswith("."))
        if not found:
            raise FileNotFoundError(
                f"the class folder {c.name!r} in {folder} holds no image files (endings"
                f" {', '.join(IMAGE_EXTENSIONS)}); add its images, or remove the folder if the"
                f" class is not wanted")
        # One spelling of each name, whatever the file system wrote (macOS decomposes).
        name = unicodedata.normalize("NFC", c.name)
        if name in files:  # two folders, one name: one class's images would be dropped
            twin = next(p for p in classes if unicodedata.normalize("NFC", p.name) == name)
            raise ValueError(f"the class folders {ascii(twin.name)} and {ascii(c.name)} in {folder}"
                             f" are one name, {name!r}, spelt in two Unicode forms (composed and"
                             f" decomposed): merge them into one folder")
        files[name] = found
    return files


def load_class_folders(path: str | os.PathLike[str], image_size: Sequence[int] | None = None,
                       channels: int | None = None, unlabelled: str | None = None) -> LabelledImages:
    """Load a folder with one sub-folder of images per class, as in-memory tensors in [0, 1].

    The layout of `torchvision.datasets.ImageFolder`: `path/<class name>/<image>`. Class
    indices follow the sorted order of the folder names (as in torchvision and in Hugging
    Face's `imagefolder`), which become the class names: with folders `zero` .. `nine`,
    class 0 is `"eight"`. Give classes by name (`model.sample("three")`) and the order
    does not matter.

    Args:
        path: The folder.
        image_size: `(H, W)` to resize every image to; by default all images must already
            have one size.
        channels: 1 (grey) or 3 (RGB); by default grey if every image is grey, RGB if
            every image has colour (palette and RGBA images count as colour); a folder that
            mixes them is refused, naming files of each kind.
        unlabelled: The name of a sub-folder whose images have no label: it is not a
            class, and its images are labelled -1 (`cvae.data.UNLABELLED`), for a
            semi-supervised model (see the guide, Partly labelled data).

    Returns:
        A `LabelledImages` with the images, labels and class names.

    Raises:
        FileNotFoundError: If the folder, its class folders, the images of a class or the
            `unlabelled` folder are missing.
        ValueError: If a file is not an image, the images mix grey and colour with no
            `channels`, or differ in size with no `image_size`, or two class folders are one
            name in two Unicode spellings.
    """
    folder = expand_path(path, "the image folder")
    files = _class_files(folder)
    loose = []
    if unlabelled is not None:
        name = unicodedata.normalize("NFC", str(unlabelled))
        if name not in files:
            raise FileNotFoundError(f"no sub-folder {name!r} of unlabelled images in {folder}; its"
                                    f" sub-folders are {', '.join(map(repr, files))}")
        loose = files.pop(name)
        if not files:
            raise FileNotFoundError(f"{folder} holds no class folders besides the unlabelled"
                                    f" {name!r}: put each class's labelled images in a sub-folder"
                                    f" named after the class")
    everything = [(c, p) for c, (_, found) in enumerate(files.items()) for p in found]
    everything += [(UNLABELLED, p) for p in loose]
    images = read_files(folder, [p for _, p in everything], channels, image_size)
    labels = torch.tensor([c for c, _ in everything], dtype=torch.long)
    return LabelledImages(images, labels, list(files))


def read_files(folder: Path, paths: Sequence[Path], channels: int | None,
               image_size: Sequence[int] | None) -> torch.Tensor:
    """The images at `paths` (inside `folder`) as one `(N, C, H, W)` float tensor in [0, 1].

    Channels and size are decided from every header first (`decide_shape`), and the memory
    checked, before a file is decoded.
    """
    def headers() -> Iterator[tuple[str, str, tuple[int, int]]]:
        for p in paths:  # headers only: PIL reads pixels when they are asked for
            with open_image(p, f"{p.relative_to(folder)} in {folder}") as image:
                yield str(p.relative_to(folder)), image.mode, (image.size[1], image.size[0])

    channels, (h, w) = decide_shape(headers(), channels, image_size, f" in {folder}")
    # Refused before a file is decoded: a byte a pixel as read, four more in float32.
    check_fits(len(paths) * channels * h * w * 5, "cpu",
               f"reading {len(paths):,} images of ({channels}, {h}, {w}) from {folder}",
               "pass image_size=(H, W) (--image-size H W) to read them smaller")
    images = torch.empty((len(paths), channels, h, w), dtype=torch.uint8)
    for i, p in enumerate(paths):
        name = f"{p.relative_to(folder)} in {folder}"
        with open_image(p, name) as image:
            images[i] = read_pixels(image, name, channels, (h, w))
    return images.float().div_(255)


def load_images(paths: Sequence[str | os.PathLike[str]], image_shape: Sequence[int]) -> torch.Tensor:
    """Read image files as one `(N, C, H, W)` tensor in [0, 1], converted to `image_shape`.

    Each image becomes grey (C = 1) or RGB (C = 3) and is resized to `(H, W)`: what a
    model that takes `image_shape` needs.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If `C` is not 1 or 3, or a file is not an image.
    """
    c, h, w = image_shape
    if c not in (1, 3):
        raise ValueError(f"image files can be read as 1 (grey) or 3 (RGB) channels, not {c}")
    images = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no image file {str(path)!r}")
        with open_image(path, str(path), "give an image file") as image:
            images.append(read_pixels(image, str(path), c, (h, w)).float().div(255))
    return torch.stack(images)
