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
from cvae.data._folders import decide_shape, open_image, read_pixels

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

    Raises:
        ValueError: If a column is missing or ambiguous, an image has no label (-1) and
            `keep_unlabelled` is False, or the images mix grey and colour or sizes with
            nothing asked.
    """

    def __init__(self, dataset: Any, image_column: str | None = None,
                 label_column: str | None = None, channels: int | None = None,
                 image_size: Sequence[int] | None = None, keep_unlabelled: bool = False):
        features = dataset.features
        self.image_column = _column(features, "Image", image_column, "image",
                                    "name it with image_column= (--image-column)")
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

    def _item(self, image: Any, label: int) -> tuple[torch.Tensor, int]:
        return read_pixels(image, "an image", self.channels, self.image_size).float().div_(255), int(label)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row = self._data[int(index)]
        return self._item(row[self.image_column], row[self.label_column])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        # One Arrow read for a whole batch: what a DataLoader asks for.
        rows = self._data[list(indices)]
        return [self._item(image, label)
                for image, label in zip(rows[self.image_column], rows[self.label_column])]


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
