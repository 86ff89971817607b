"""Named datasets: where they live, the registry, and `load_dataset` for every source.

Data live under one folder: the `root=` argument, else the `CVAE_DATA` environment
variable, else `~/.cache/cvae/data`, in torchvision's layout (`<root>/MNIST/raw/...`).
`load_dataset` takes a registered name, a folder of images by path, or a Hugging Face
dataset as `"hf:ORG/NAME"` (or `"hf:PATH"` for local Parquet, image folders and saved
copies). Data without a test split of their own (folders, tensors, most small Hugging Face
datasets) get a held-out one from `cvae.data`: stratified by class, seeded, documented.
torchvision and `datasets` are imported only when such data are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from cvae._checks import expand_path, one_line
from cvae._registry import Registry
from cvae.data._labelled import LabelledImages, to_tensors
from cvae.data._metadata import load_image_folder
from cvae.data._splits import DEFAULT_TEST_FRACTION, train_test_split

__all__ = ["DatasetInfo", "data_root", "get_dataset", "load_dataset", "load_splits", "list_datasets",
           "register_dataset"]


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: `root` if given, else `$CVAE_DATA`, else `~/.cache/cvae/data`."""
    if root is not None:
        return expand_path(root, "the data folder")
    return expand_path(os.environ.get("CVAE_DATA") or "~/.cache/cvae/data", "the data folder ($CVAE_DATA)")


#: What a registered dataset's `load` is called with: the data folder, the split (True for
#: training) and whether downloading is allowed; it returns the split's images and labels.
Loader = Callable[..., "LabelledImages | Dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset that `load_dataset`, `cvae train` and `cvae eval` know by name.

    Attributes:
        name: The name it is registered under (or the folder's path).
        load: `load(root, train, download, **options)`: the split as a `LabelledImages`
            (or any labelled dataset).
        classifier: A bundled classifier that judges samples of this dataset (see
            `cvae.evaluation.load_classifier`), which `cvae eval` uses for the
            generation metrics; `None` for none.
        test_split: Whether the data bring a test split of their own (`load(train=False)`).
            If not, `load` is called with `train=True` for all the images, and
            `load_dataset` holds out a stratified, seeded share of them (`cvae.data`).
    """

    name: str
    load: Loader
    classifier: str | None = None
    test_split: bool = True


_REGISTRY: Registry[DatasetInfo] = Registry(
    "dataset", "Give a folder with one sub-folder of images per class by its path, a Hugging"
    " Face dataset as hf:ORG/NAME, or register a loader with cvae.register_dataset({name}, load).")


def register_dataset(name: str, load: Loader, *, classifier: str | None = None,
                     test_split: bool = True, overwrite: bool = False) -> DatasetInfo:
    """Register a dataset under `name`, for `load_dataset`, `cvae train` and `cvae eval`.

    Args:
        name: The name, for example `"my-sketches"` (matched in lower case, `_` as `-`).
        load: `load(root: Path, train: bool, download: bool) -> LabelledImages`, the split's
            images `(N, C, H, W)` in [0, 1] and labels, with class names.
        classifier: A bundled classifier for the generation metrics of `cvae eval`.
        test_split: Whether `load(train=False)` gives a test split of its own; if not,
            `load_dataset` holds out a share of what `load(train=True)` gives.
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


def get_dataset(name: str | os.PathLike[str] | DatasetInfo, revision: str | None = None
                ) -> DatasetInfo:
    """The dataset registered under `name`, one for a folder of images, or a Hugging Face one.

    Args:
        name: A registered name, the path of a folder with one sub-folder of images per
            class, or `"hf:"` and a Hugging Face dataset (a Hub id such as `"hf:org/name"`,
            or a local folder, `.parquet` file or `save_to_disk` copy). A Hugging Face
            dataset is opened here (memory-mapped, nothing decoded) to see its splits, so
            pass the `DatasetInfo` this returns to `load_dataset` to open it only once.
        revision: The Hub revision (branch, tag or commit) of a `"hf:"` dataset.

    Raises:
        UnknownNameError: If `name` is none of these (a `ValueError`).
        FileNotFoundError: If a Hugging Face dataset cannot be found or loaded.
    """
    if isinstance(name, DatasetInfo):
        return name
    text = str(name)
    if text.startswith("hf:"):
        return _hf_dataset(text, revision)
    if revision is not None:
        raise ValueError(f"revision= is for Hugging Face datasets (hf:ORG/NAME), not {text!r}")
    if _key(text) not in _REGISTRY and (folder := expand_path(name, "the dataset")).is_dir():
        return DatasetInfo(text, lambda root, train, download, **options: load_image_folder(
            folder, **options), test_split=False)
    return _REGISTRY.get(_key(text))


def _hf_dataset(name: str, revision: str | None) -> DatasetInfo:
    from cvae.data._hf import HFImages, load_hf_splits

    if not name[3:].strip():
        raise ValueError("hf: names no dataset: give a Hub id (hf:org/name) or a local path"
                         " (hf:path/to/data)")
    splits = load_hf_splits(name[3:], revision)
    names = list(splits)
    if not names:
        raise ValueError(f"{name} has no splits: there is nothing to train on")
    train = "train" if "train" in splits else names[0] if len(names) == 1 else None
    if train is None:
        raise ValueError(f"{name} has splits {names} and none is called 'train'; save the one to"
                         f" train on as 'train' (and a 'test' split, if it has one)")
    test = "test" if "test" in splits and train == "train" else None

    def load(root: Path, train_split: bool, download: bool, **options: Any) -> Dataset:
        return HFImages(splits[train if train_split else test], **options)  # type: ignore[index]

    return DatasetInfo(name, load, test_split=test is not None)


def list_datasets() -> list[str]:
    """Names that `load_dataset` accepts (besides folders and Hugging Face datasets)."""
    return _REGISTRY.names()


def load_splits(name: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                download: bool = True, *, test_fraction: float = DEFAULT_TEST_FRACTION,
                split_seed: int = 0, revision: str | None = None, in_memory: bool = True,
                **options: Any) -> tuple[LabelledImages | Dataset, LabelledImages | Dataset]:
    """The training and test splits of a dataset, each read once.

    Data with a test split of their own give it; the rest (folders, most Hugging Face
    datasets) are split by `cvae.data.train_test_split`: `test_fraction` of every class
    held out, drawn with `split_seed`. Each part's `split` attribute says which it is.

    Args:
        name: As for `get_dataset`.
        root: The data folder (see `data_root`).
        download: Let torchvision download the files when they are missing.
        test_fraction: The share of each class held out where there is no test split.
        split_seed: The seed of that draw.
        revision: The Hub revision of a `"hf:"` dataset.
        in_memory: Read the images into tensors (a `LabelledImages`); False keeps a
            Hugging Face dataset memory-mapped and decodes it as it is read.
        **options: Passed on to the loader: `image_size=(H, W)` and `channels=` for folders
            and Hugging Face datasets, `unlabelled=` (a sub-folder of images without a
            label) for folders, `image_column=`, `label_column=` and `keep_unlabelled=`
            for Hugging Face datasets.

    Returns:
        `(train, test)`.
    """
    return _splits(get_dataset(name, revision), data_root(root), download, test_fraction,
                   split_seed, in_memory, options)


def _splits(info: DatasetInfo, root: Path, download: bool, test_fraction: float, split_seed: int,
            in_memory: bool, options: dict[str, Any]) -> tuple[Any, Any]:
    if info.test_split:
        return tuple(_as_split(info.load(root, part, download, **options), part, in_memory)
                     for part in (True, False))  # type: ignore[return-value]
    whole = _as_split(info.load(root, True, download, **options), True, in_memory)
    return train_test_split(whole, test_fraction, split_seed)


def _as_split(data: LabelledImages | Dataset, train: bool, in_memory: bool
              ) -> LabelledImages | Dataset:
    data = to_tensors(data) if in_memory else data
    if getattr(data, "split", None) is None:
        data.split = "train" if train else "test"  # type: ignore[union-attr]
    return data


def load_dataset(name: str | os.PathLike[str] | DatasetInfo,
                 root: str | os.PathLike[str] | None = None,
                 train: bool = True, download: bool = True, *,
                 test_fraction: float = DEFAULT_TEST_FRACTION, split_seed: int = 0,
                 revision: str | None = None, in_memory: bool = True, **options: Any
                 ) -> LabelledImages | Dataset:
    """Load one split of a dataset (a name, a folder or a Hugging Face dataset) in [0, 1].

    The images of torchvision's datasets are exactly what its `ToTensor` gives, computed
    once for the whole set rather than per image.

    Args:
        name: One of `list_datasets()` (torchvision's MNIST, FashionMNIST, KMNIST, EMNIST
            with its split, as in `"emnist-letters"`, and CIFAR10, and any registered with
            `register_dataset`); the path of a folder with one sub-folder of images per
            class (see `load_image_folder`); or `"hf:"` and a Hugging Face dataset, by Hub
            id (`"hf:org/name"`, from the endpoint `HF_ENDPOINT` sets) or local path
            (Parquet, an image folder, a `save_to_disk` copy), with an `Image` and a
            `ClassLabel` column; or a `DatasetInfo` from `get_dataset`.
        root: The data folder (see `data_root`).
        train: The training split if True, else the test split. Data without a test split
            of their own (a folder, a Hugging Face dataset with one split) are split by
            class: 20% of each class held out by default, seeded (see `load_splits`); the
            two splits never share an image.
        download: Let torchvision download the files when they are missing.
        test_fraction: The share of each class held out where there is no test split.
        split_seed: The seed of that draw.
        revision: The Hub revision (branch, tag or commit) of a `"hf:"` dataset.
        in_memory: Read the images into tensors; False keeps a Hugging Face dataset on
            disk, decoded as it is read (for data larger than memory).
        **options: The loader's options: `image_size=(H, W)` and `channels=` for folders
            and Hugging Face datasets, `unlabelled=` (a sub-folder of images without a
            label) for folders, `image_column=`, `label_column=` and `keep_unlabelled=`
            for Hugging Face datasets.

    Returns:
        A `LabelledImages` with the split's images, labels, class names and `split`; with
        `in_memory=False`, a Hugging Face dataset stays on disk (a `cvae.data.HFImages`
        or a subset of it).

    Raises:
        UnknownNameError: If `name` is unknown (a `ValueError`).
        FileNotFoundError: If the files are missing and cannot be downloaded; the message
            says where to put them.
    """
    info = get_dataset(name, revision)
    if info.test_split:  # read only the split asked for
        return _as_split(info.load(data_root(root), train, download, **options), train, in_memory)
    return _splits(info, data_root(root), download, test_fraction, split_seed, in_memory,
                   options)[0 if train else 1]


def _torchvision_datasets() -> Any:
    """`torchvision.datasets`, or an error that says how to fix a torchvision that fails to load.

    A torchvision built for another torch (a CUDA one beside a CPU torch, as pip pairs them
    where the CPU index cannot be reached) fails on import with `operator torchvision::nms
    does not exist`, which names neither package.
    """
    try:
        from torchvision import datasets
    except ModuleNotFoundError:
        raise
    except (RuntimeError, ImportError, OSError) as err:
        raise ImportError(
            f"torchvision failed to load beside torch {torch.__version__} ({one_line(err)}): it"
            f" was built for another torch. Install the two from one index, for a machine"
            f" without a GPU: pip install --force-reinstall torch torchvision --index-url"
            f" https://download.pytorch.org/whl/cpu") from None
    return datasets


def _torchvision(cls_name: str, class_names: list[str] | None = None, **fixed: Any) -> Loader:
    """A loader for one of torchvision's datasets that keep all images in one array."""
    def load(root: Path, train: bool, download: bool) -> LabelledImages:
        datasets = _torchvision_datasets()
        try:
            ds = getattr(datasets, cls_name)(str(root), train=train, download=download, **fixed)
        except (RuntimeError, OSError) as err:
            raise FileNotFoundError(
                f"{cls_name} is not under {root / cls_name / 'raw'} and could not be downloaded"
                f" ({err}). Put the uncompressed files there (torchvision's layout), or point the"
                f" root= argument or the CVAE_DATA environment variable at the folder that holds"
                f" {cls_name}/"
            ) from None
        return _as_images(ds, class_names, "train" if train else "test",
                          transpose=cls_name == "EMNIST")

    return load


def _as_images(ds: Dataset, class_names: list[str] | None, split: str, transpose: bool = False
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
                          class_names or list(ds.classes), split)  # type: ignore[attr-defined]


register_dataset("mnist", _torchvision("MNIST", [str(d) for d in range(10)]), classifier="mnist-cnn")
register_dataset("fashion-mnist", _torchvision("FashionMNIST"))
register_dataset("kmnist", _torchvision("KMNIST"))
register_dataset("cifar10", _torchvision("CIFAR10"))
for _split in ("balanced", "byclass", "bymerge", "digits", "letters", "mnist"):
    register_dataset(f"emnist-{_split}", _torchvision("EMNIST", split=_split))
