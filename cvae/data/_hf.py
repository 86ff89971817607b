"""Hugging Face `datasets`: an image column and a class-label column as `(image, label)`.

A `datasets.Dataset` keeps its rows in memory-mapped Arrow files; `HFImages` decodes only
the rows asked for, a batch at a time, so a data set larger than memory trains through
`Trainer(..., in_memory=False)` and one that fits is read once into tensors without ever
being held as Python objects. `datasets` is an optional extra
(`pip install "torch-cvae[datasets]"`), imported only here and only when such data are used.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from cvae._checks import expand_path
from cvae.conditions import Categorical, Conditions, Continuous, MultiLabel, Part
from cvae.data._folders import decide_shape, open_image, read_pixels
from cvae.data._labelled import LabelledImages

__all__ = ["HFImages", "load_hf_splits"]

_HINT = 'Hugging Face datasets need the datasets package: pip install "torch-cvae[datasets]"'


def _column(features: Any, kind: str, given: str | None, what: str, hint: str) -> str:
    """The column holding `kind` features (`"Image"`, `"ClassLabel"`), or the one given."""
    if given is not None:
        if given not in features:
            raise ValueError(f"no column {given!r}; the columns are {list(features)}")
        return given
    found = [name for name, feature in features.items() if type(feature).__name__ == kind]
    if len(found) != 1:
        which = f"{len(found)} ({', '.join(found)})" if found else "none"
        raise ValueError(f"the dataset needs one {what} column ({kind} feature), and has {which}"
                         f" among {list(features)}; {hint}")
    return found[0]


def _hf_part(features: Any, spec: str) -> Part:
    """The condition part a column makes, from its feature (or the kind said after a colon).

    `ClassLabel`: categorical, its names the classes; a list of `ClassLabel`s: multi-label,
    its names the tags; a float `Value`: continuous; an integer `Value`: categorical by index
    (classes 0 to the largest), unless said continuous (`"age:continuous"`).
    """
    name, _, kind = spec.partition(":")
    if name not in features:
        raise ValueError(f"no column {name!r}; the columns are {list(features)}")
    feature = features[name]
    inner = getattr(feature, "feature", None)
    if type(feature).__name__ == "ClassLabel" and kind in ("", "categorical"):
        return Categorical(name, feature.num_classes, tuple(feature.names))
    if type(inner).__name__ == "ClassLabel" and kind in ("", "multi-label"):
        return MultiLabel(name, tuple(inner.names))
    dtype = str(getattr(feature, "dtype", ""))
    if dtype.startswith("float") or (kind == "continuous" and dtype.startswith(("int", "uint"))):
        return Continuous(name)
    if dtype.startswith(("int", "uint")) and kind in ("", "categorical"):
        return Categorical(name, 1)  # classes counted from the values, in `_hf_conditions`
    raise ValueError(f"column {name!r} ({feature}) cannot be a{' ' + kind if kind else ''} condition: a"
                     f" ClassLabel is categorical, a list of ClassLabels multi-label, a number Value"
                     f" continuous (or categorical, for whole numbers)")


def _hf_conditions(data: Any, specs: Sequence[str]) -> tuple[Conditions, dict[str, Any]]:
    """The schema of the columns `specs`, and their values (a ClassLabel's -1: missing)."""
    parts, values = [], {}
    for spec in specs:
        part = _hf_part(data.features, spec)
        column = torch.as_tensor(data.select_columns([part.name]).with_format("numpy")[:][part.name]) \
            if not isinstance(part, MultiLabel) else None
        if isinstance(part, MultiLabel):
            column = [list(row) if row is not None else None for row in data[part.name]]
        elif isinstance(part, Categorical) and part.class_names is None:
            part = Categorical(part.name, max(1, int(column.max()) + 1 if len(column) else 1))
        parts.append(part)
        values[part.name] = column
    return Conditions(parts), values


class HFImages(Dataset):
    """A Hugging Face `datasets.Dataset` of images and class labels, as `(image, label)`.

    Images come out as `(C, H, W)` float tensors in [0, 1], labels as ints; `class_names`
    are the names of the `ClassLabel` feature. Grey or RGB is decided from the modes of all
    the images (read from their headers, not decoded), as for folders.

    Args:
        dataset: A `datasets.Dataset` (one split).
        image_column: The column of images; by default the one `Image` feature.
        label_column: The column of class labels; by default the one `ClassLabel` feature.
        channels: 1 (grey) or 3 (RGB); by default decided from the images.
        image_size: `(H, W)` to resize every image to; by default all must have one size.
        keep_unlabelled: Keep the rows labelled -1 (how a `ClassLabel` column marks a
            missing label) as unlabelled images, for a semi-supervised model (see the guide,
            Partly labelled data); by default they are refused.
        conditions: Several conditions instead of one label: the columns, in order, each
            optionally with its kind (`["digit", "thickness"]`, `["age:continuous"]`); the
            kinds come from the features (see `_hf_part`), and a `ClassLabel`'s -1 or a
            None is a missing value. Then an item's label is its row of the conditions
            table (`cvae.conditions`).

    Raises:
        ValueError: If a column is missing or ambiguous, an image has no label (-1) and
            `keep_unlabelled` is False, or the images mix grey and colour or sizes with
            nothing asked.
    """

    def __init__(self, dataset: Any, image_column: str | None = None,
                 label_column: str | None = None, channels: int | None = None,
                 image_size: Sequence[int] | None = None, keep_unlabelled: bool = False,
                 conditions: Sequence[str] | Conditions | None = None):
        features = dataset.features
        self.image_column = _column(features, "Image", image_column, "image",
                                    "name it with image_column= (--image-column)")
        self.conditions: Conditions | None = None
        if conditions is not None:
            return self._take_conditions(dataset, conditions, channels, image_size)
        self.label_column = _column(features, "ClassLabel", label_column, "class-label",
                                    "name it with label_column= (--label-column)")
        names = getattr(features[self.label_column], "names", None)
        self.class_names: list[str] | None = list(names) if names else None
        self.split: str | None = getattr(dataset, "split", None) and str(dataset.split)
        self._data = dataset.select_columns([self.image_column, self.label_column])
        labels = self._data.select_columns([self.label_column]).with_format("numpy")
        self.labels = torch.as_tensor(labels[self.label_column]).long()
        missing = (self.labels < 0).nonzero().flatten()
        if len(missing) and not keep_unlabelled:
            raise ValueError(f"{len(missing)} of {len(self.labels)} rows have no label (-1), such"
                             f" as row {int(missing[0])}; label them, leave them out with"
                             f" dataset.filter(lambda row: row[{self.label_column!r}] >= 0), or"
                             f" train a semi-supervised model on them with keep_unlabelled=True"
                             f" (--keep-unlabelled)")
        if self.class_names and len(self.labels) and int(self.labels.max()) >= len(self.class_names):
            raise ValueError(f"labels run to {int(self.labels.max())}, but the column has"
                             f" {len(self.class_names)} class names")
        if not len(self.labels):
            raise ValueError("the dataset is empty: there is nothing to train on")
        self._check_images_present()
        self.channels, self.image_size = decide_shape(self._headers(), channels, image_size)

    def _take_conditions(self, dataset: Any, specs: Sequence[str] | Conditions, channels: int | None,
                         image_size: Sequence[int] | None) -> None:
        """`__init__` for several conditions: the columns' table, checked, as the labels."""
        if isinstance(specs, Conditions):  # a model's: its columns, read as the kinds it has
            specs = [f"{part.name}:{part.kind}" for part in specs]
        if isinstance(specs, str) or not specs:
            raise ValueError(f"conditions are a list of column names, got {specs!r}")
        schema, values = _hf_conditions(dataset, list(specs))
        data = LabelledImages(torch.zeros(len(dataset), 0, 0, 0), values, conditions=schema)
        self.conditions, self.labels = data.conditions, data.labels
        self.class_names = data.class_names
        self.label_column = None
        self.split = getattr(dataset, "split", None) and str(dataset.split)
        self._data = dataset.select_columns([self.image_column])
        if not len(self.labels):
            raise ValueError("the dataset is empty: there is nothing to train on")
        self._check_images_present()
        self.channels, self.image_size = decide_shape(self._headers(), channels, image_size)

    def _check_images_present(self) -> None:
        """Refuse rows whose image is missing (None), from the column's nulls: nothing decoded."""
        import pyarrow.compute as pc

        column = self._data.select_columns([self.image_column]).with_format("arrow")
        start = 0
        for batch in column.iter(batch_size=10_000):  # Arrow batches: no Python object a row
            nulls = batch.column(self.image_column).null_count
            if nulls:
                first = start + pc.index(pc.is_null(batch.column(self.image_column)), True).as_py()
                raise ValueError(f"row {first} has no image (None in column {self.image_column!r});"
                                 f" leave such rows out with dataset.filter(lambda row:"
                                 f" row[{self.image_column!r}] is not None)")
            start += batch.num_rows

    def _headers(self) -> Iterator[tuple[str, str, tuple[int, int]]]:
        """`(row, mode, (H, W))` of every image, from its header: nothing is decoded."""
        from datasets import Image as ImageFeature

        raw = self._data.select_columns([self.image_column]).cast_column(
            self.image_column, ImageFeature(decode=False))
        row = 0
        for batch in raw.iter(batch_size=1000):
            for item in batch[self.image_column]:
                source = io.BytesIO(item["bytes"]) if item.get("bytes") else item["path"]
                with open_image(source, f"row {row}", "fix the row or leave it out") as image:
                    yield f"row {row}", image.mode, (image.size[1], image.size[0])
                row += 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(C, H, W)` of the images this gives."""
        return (self.channels, *self.image_size)

    def __len__(self) -> int:
        return len(self.labels)

    def _item(self, image: Any, index: int) -> tuple[torch.Tensor, Any]:
        # A label is an int, or a row of the conditions table (a tensor), as collate takes it.
        label = self.labels[index] if self.conditions is not None else int(self.labels[index])
        return read_pixels(image, "an image", self.channels, self.image_size).float().div_(255), label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        return self._item(self._data[int(index)][self.image_column], int(index))

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, Any]]:
        # One Arrow read for a whole batch: what a DataLoader asks for.
        images = self._data[list(indices)][self.image_column]
        return [self._item(image, int(i)) for image, i in zip(images, indices)]


def load_hf_splits(path: str, revision: str | None = None) -> dict[str, Any]:
    """The splits of a Hugging Face dataset: a Hub id, a local folder, a file or a saved copy.

    A Hub id (`"org/name"`) is fetched from the endpoint that `HF_ENDPOINT` sets, as models
    are, at `revision`; a local folder of images (`imagefolder`) or of Parquet files, a
    `.parquet` file, and a folder written by `Dataset.save_to_disk` are read in place.

    Returns:
        `{split name: datasets.Dataset}`.

    Raises:
        ImportError: If `datasets` is not installed.
        FileNotFoundError: If there is no such dataset (or revision).
    """
    try:
        import datasets
    except ImportError:
        raise ImportError(_HINT) from None
    local = str(expand_path(path, "the dataset"))
    saved = any(os.path.isfile(os.path.join(local, name))
                for name in ("state.json", "dataset_dict.json"))  # written by save_to_disk
    try:
        if saved:
            found = datasets.load_from_disk(local)
        elif os.path.isfile(local) and local.endswith(".parquet"):
            found = datasets.load_dataset("parquet", data_files=local)
        else:
            found = datasets.load_dataset(local if os.path.exists(local) else path,
                                          revision=revision)
    except Exception as err:  # datasets raises many types; one message that says which data
        from huggingface_hub import constants

        where = "" if os.path.exists(local) else f" on the Hub at {constants.ENDPOINT}"
        at = f" at revision {revision!r}" if revision else ""
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise FileNotFoundError(f"could not load the dataset {path!r}{where}{at}: {first}") from None
    return dict(found) if hasattr(found, "keys") else {"train": found}
