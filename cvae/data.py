"""Labelled image data: named datasets, where they live, and in-memory tensors.

Data live under one folder: the `root=` argument, else the `CVAE_DATA` environment
variable, else `~/.cache/cvae/data`, in torchvision's layout (`<root>/MNIST/raw/...`).
torchvision is imported only when a named dataset is loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .registry import Registry

__all__ = ["LabelledData", "LabelledImages", "DatasetInfo", "as_dataset", "data_digest", "data_root",
           "get_dataset", "load_dataset", "load_image_folder", "load_images", "list_datasets",
           "register_dataset", "batches", "to_tensors"]

#: Labelled data in any form the library takes: a map-style dataset of `(image, label)` or a
#: pair of tensors or numpy arrays `(images (N, C, H, W) in [0, 1], labels (N,))`.
LabelledData = Dataset | tuple[torch.Tensor, torch.Tensor]


class LabelledImages(TensorDataset):
    """Images and labels held as two tensors: a map-style dataset of `(image, label)`.

    Args:
        images: Float tensor `(N, C, H, W)`, values in [0, 1].
        labels: Integer tensor `(N,)` of class indices.
        class_names: Optional class names, in class-index order.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor,
                 class_names: Sequence[str] | None = None):
        if images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must be (N,) with N = {len(images)} images,"
                             f" got shape {tuple(labels.shape)}")
        super().__init__(images, _class_indices(labels))
        self.class_names = list(class_names) if class_names is not None else None

    @property
    def images(self) -> torch.Tensor:
        """The `(N, C, H, W)` image tensor."""
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        """The `(N,)` label tensor."""
        return self.tensors[1]


def _class_indices(labels: torch.Tensor) -> torch.Tensor:
    """Labels as `torch.long`: whole numbers only (float labels such as 2.7 are refused)."""
    if labels.dtype == torch.bool or labels.dtype.is_complex:
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    if labels.dtype.is_floating_point:
        bad = ~torch.isfinite(labels) | (labels != labels.round())
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"labels must be whole numbers (class indices), got"
                             f" {labels[i].item():g} at index {i}")
    return labels.long()


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: `root` if given, else `$CVAE_DATA`, else `~/.cache/cvae/data`."""
    if root is not None:
        return Path(root).expanduser()
    return Path(os.environ.get("CVAE_DATA") or "~/.cache/cvae/data").expanduser()


#: What a registered dataset's `load` is called with: the data folder, the split (True for
#: training) and whether downloading is allowed; it returns the split's images and labels.
Loader = Callable[..., "LabelledImages"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset that `load_dataset`, `cvae train` and `cvae eval` know by name.

    Attributes:
        name: The name it is registered under (or the folder's path).
        load: `load(root, train, download, **options)`: the split as a `LabelledImages`.
        classifier: A bundled classifier that judges samples of this dataset (see
            `cvae.classifier.load_classifier`), which `cvae eval` uses for the
            generation metrics; `None` for none.
        test_split: Whether `train=False` gives held-out images; if not, it gives the
            training images, and tables say so.
    """

    name: str
    load: Loader
    classifier: str | None = None
    test_split: bool = True


_REGISTRY: Registry[DatasetInfo] = Registry(
    "dataset", "Give a folder with one sub-folder of images per class by its path, or"
    " register a loader with cvae.register_dataset({name}, load).")


def register_dataset(name: str, load: Loader, *, classifier: str | None = None,
                     test_split: bool = True, overwrite: bool = False) -> DatasetInfo:
    """Register a dataset under `name`, for `load_dataset`, `cvae train` and `cvae eval`.

    Args:
        name: The name, for example `"my-sketches"` (matched in lower case, `_` as `-`).
        load: `load(root: Path, train: bool, download: bool) -> LabelledImages`, the split's
            images `(N, C, H, W)` in [0, 1] and labels, with class names.
        classifier: A bundled classifier for the generation metrics of `cvae eval`.
        test_split: Whether `train=False` gives held-out images.
        overwrite: Replace an existing registration of the same name.

    Returns:
        The registered `DatasetInfo`.
    """
    if not callable(load):
        raise TypeError(f"load must be a function (root, train, download) -> LabelledImages,"
                        f" got {load!r}")
    info = DatasetInfo(_key(name), load, classifier, test_split)
    return _REGISTRY.register(info.name, info, overwrite=overwrite)


def _key(name: str) -> str:
    return str(name).lower().replace("_", "-")


def get_dataset(name: str | os.PathLike[str]) -> DatasetInfo:
    """The dataset registered under `name`, or one for a folder of labelled images.

    Raises:
        UnknownNameError: If `name` is neither registered nor a folder (a `ValueError`).
    """
    if _key(str(name)) not in _REGISTRY and Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        return DatasetInfo(str(name), lambda root, train, download, **options: load_image_folder(
            folder, **options), test_split=False)
    return _REGISTRY.get(_key(str(name)))


def list_datasets() -> list[str]:
    """Names that `load_dataset` accepts (besides folders)."""
    return _REGISTRY.names()


def load_dataset(name: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                 train: bool = True, download: bool = True, **options: Any) -> LabelledImages:
    """Load a dataset by name, or a folder of images, as in-memory tensors in [0, 1].

    The images of torchvision's datasets are exactly what its `ToTensor` gives, computed
    once for the whole set rather than per image.

    Args:
        name: One of `list_datasets()` (torchvision's MNIST, FashionMNIST, KMNIST, EMNIST
            with its split, as in `"emnist-letters"`, and CIFAR10, and any registered with
            `register_dataset`), or the path of a folder with one sub-folder of images per
            class (see `load_image_folder`, which takes `image_size` and `channels`
            options).
        root: The data folder (see `data_root`).
        train: The training split if True, else the test split. A folder has no test
            split: it gives its images either way.
        download: Let torchvision download the files when they are missing.
        **options: Passed on to the dataset's loader.

    Returns:
        A `LabelledImages` with the split's images, labels and class names.

    Raises:
        UnknownNameError: If `name` is unknown (a `ValueError`).
        FileNotFoundError: If the files are missing and cannot be downloaded; the message
            says where to put them.
    """
    return get_dataset(name).load(data_root(root), train, download, **options)


def _torchvision(cls_name: str, class_names: list[str] | None = None, **fixed: Any) -> Loader:
    """A loader for one of torchvision's datasets that keep all images in one array."""
    def load(root: Path, train: bool, download: bool) -> LabelledImages:
        from torchvision import datasets

        try:
            ds = getattr(datasets, cls_name)(str(root), train=train, download=download, **fixed)
        except (RuntimeError, OSError) as err:
            raise FileNotFoundError(
                f"{cls_name} is not under {root / cls_name / 'raw'} and could not be downloaded"
                f" ({err}). Put the uncompressed files there (torchvision's layout), or point the"
                f" root= argument or the CVAE_DATA environment variable at the folder that holds"
                f" {cls_name}/"
            ) from None
        return _as_images(ds, class_names, transpose=cls_name == "EMNIST")

    return load


def _as_images(ds: Dataset, class_names: list[str] | None, transpose: bool = False
               ) -> LabelledImages:
    """The whole of a torchvision dataset that keeps its images as one uint8 array, in [0, 1].

    The MNIST family keeps a `(N, H, W)` tensor, CIFAR a `(N, H, W, C)` numpy array;
    `ToTensor` would divide each image by 255, as this does for all at once. EMNIST's
    files store each image transposed.
    """
    data = torch.as_tensor(ds.data)  # type: ignore[attr-defined]
    images = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
    if transpose:
        images = images.transpose(2, 3)
    labels = torch.as_tensor(ds.targets)  # type: ignore[attr-defined]
    return LabelledImages(images.float().div_(255).contiguous(), labels,
                          class_names or list(ds.classes))  # type: ignore[attr-defined]


def load_image_folder(path: str | os.PathLike[str], image_size: Sequence[int] | None = None,
                      channels: int | None = None) -> LabelledImages:
    """Load a folder with one sub-folder of images per class, as in-memory tensors in [0, 1].

    The layout of `torchvision.datasets.ImageFolder`: `path/<class name>/<image>`, with
    classes in sorted order of their folder names, which become the class names.

    Args:
        path: The folder.
        image_size: `(H, W)` to resize every image to; by default all images must already
            have one size.
        channels: 1 (grey) or 3 (RGB); by default, that of the first image (RGB for
            palette and RGBA images).

    Returns:
        A `LabelledImages` with the images, labels and class names.

    Raises:
        FileNotFoundError: If the folder holds no class folder with images.
        ValueError: If the images differ in size and no `image_size` is given.
    """
    from PIL import Image
    from torchvision import datasets, transforms

    folder = Path(path).expanduser()
    try:
        found = datasets.ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as err:
        raise FileNotFoundError(f"{folder} is not a folder of labelled images ({err}); put"
                                f" each class's images in a sub-folder named after it") from None
    if channels is None:
        with Image.open(found.samples[0][0]) as first:
            channels = 1 if first.mode in ("1", "L", "I", "I;16", "F") else 3
    steps = [transforms.Grayscale() if channels == 1 else transforms.Lambda(
        lambda image: image.convert("RGB"))]
    if image_size is not None:
        steps.append(transforms.Resize(tuple(image_size)))
    found.transform = transforms.Compose([*steps, transforms.ToTensor()])
    sizes: set[tuple[int, int]] = set()
    for file, _ in found.samples if image_size is None else []:
        with Image.open(file) as image:  # reads the header only
            sizes.add(image.size)
    if len(sizes) > 1:
        raise ValueError(f"the images in {folder} have {len(sizes)} different sizes, such as"
                         f" {sorted(sizes)[:3]} (width, height); pass image_size=(H, W) to"
                         f" resize them all")
    return to_tensors(found)


def load_images(paths: Sequence[str | os.PathLike[str]], image_shape: Sequence[int]) -> torch.Tensor:
    """Read image files as one `(N, C, H, W)` tensor in [0, 1], converted to `image_shape`.

    Each image becomes grey (C = 1) or RGB (C = 3) and is resized to `(H, W)`: what a
    model that takes `image_shape` needs.

    Raises:
        FileNotFoundError: If a file is missing.
        ValueError: If `C` is not 1 or 3.
    """
    from PIL import Image

    c, h, w = image_shape
    if c not in (1, 3):
        raise ValueError(f"image files can be read as 1 (grey) or 3 (RGB) channels, not {c}")
    images = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image file {str(path)!r}")
        with Image.open(path) as image:
            image = image.convert("L" if c == 1 else "RGB").resize((w, h))
            pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        images.append(pixels.view(h, w, c).permute(2, 0, 1).float().div(255))
    return torch.stack(images)


def as_dataset(data: LabelledData) -> Dataset:
    """A map-style dataset for `data`: a pair of tensors becomes a `LabelledImages`.

    Raises:
        ValueError: If a tuple is not a pair of tensors of matching length.
        TypeError: If `data` is neither a tuple nor a `Dataset`.
    """
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(f"tensor data must be a pair (images, labels), got {len(data)} items")
        # numpy arrays become tensors, sharing their memory; their dtype is kept, so the
        # Trainer's checks (floats in [0, 1]) apply to them as to tensors.
        return LabelledImages(*(torch.as_tensor(item) for item in data))
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a map-style Dataset of (image, label) or a pair"
                        f" (images, labels), got {type(data).__name__}")
    return data


def batches(dataset: Dataset, batch_size: int = 1024) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`(images, labels)` of a map-style dataset, `batch_size` items at a time, in order.

    Tensors in memory are sliced; any other dataset is read as it goes, never all at once.

    Raises:
        ValueError: If the dataset is empty.
        TypeError: If its images are not tensors.
    """
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        images, labels = dataset.tensors
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size], labels[i:i + batch_size]
        return
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError("the dataset is empty: there is nothing to train on")
    first = dataset[0][0]
    if not isinstance(first, torch.Tensor):
        raise TypeError(f"dataset images must be tensors (add transforms.ToTensor()),"
                        f" got {type(first).__name__}")
    for x, y in DataLoader(dataset, batch_size=batch_size):
        yield x, torch.as_tensor(y)


def to_tensors(dataset: Dataset, batch_size: int = 1024) -> LabelledImages:
    """Read a map-style dataset of `(image_tensor, label)` once into two tensors.

    This pays the dataset's per-image loading and transforms once, instead of every epoch.
    Random augmentations are therefore frozen: train from the dataset itself if you need
    them (`Trainer(..., in_memory=False)`).

    Args:
        dataset: A dataset whose items are `(image, label)`, images as `(C, H, W)` tensors.
        batch_size: Images read at a time.

    Returns:
        A `LabelledImages`; a dataset that is already one is returned as is.
    """
    if isinstance(dataset, LabelledImages):
        return dataset
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return LabelledImages(*dataset.tensors)
    parts = list(batches(dataset, batch_size))
    return LabelledImages(torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]),
                          getattr(dataset, "classes", None))


register_dataset("mnist", _torchvision("MNIST", [str(d) for d in range(10)]), classifier="mnist-cnn")
register_dataset("fashion-mnist", _torchvision("FashionMNIST"))
register_dataset("kmnist", _torchvision("KMNIST"))
register_dataset("cifar10", _torchvision("CIFAR10"))
for _split in ("balanced", "byclass", "bymerge", "digits", "letters", "mnist"):
    register_dataset(f"emnist-{_split}", _torchvision("EMNIST", split=_split))


def data_digest(dataset: Dataset) -> str:
    """A short digest of a data set: its size, its labels and a sample of its images."""
    sha = hashlib.sha256()
    if isinstance(dataset, LabelledImages):
        images, labels = dataset.images, dataset.labels
        step = max(1, len(images) // 1000)  # at most about a thousand images: it stays cheap
        for t in (labels, images[::step]):
            sha.update(str(tuple(t.shape)).encode())
            sha.update(t.detach().cpu().contiguous().numpy().tobytes())
    else:
        sha.update(f"{type(dataset).__name__}:{len(dataset)}".encode())  # type: ignore[arg-type]
    return f"{len(dataset)} images, sha256 {sha.hexdigest()[:16]}"  # type: ignore[arg-type]
