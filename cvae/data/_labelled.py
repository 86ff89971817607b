"""Labelled images in memory (`LabelledImages`), and reading any labelled dataset into it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from cvae._checks import check_images, short
from cvae._classes import UNLABELLED
from cvae._condition_values import check_table, infer_conditions, table_from_values
from cvae._devices import check_fits
from cvae.conditions import Conditions

__all__ = ["Batches", "LabelledData", "LabelledImages", "batches", "class_names_of", "collate",
           "conditions_of", "data_digest", "label_tensor", "labels_of", "to_tensors"]


#: Labelled data in any form the library takes: a map-style dataset of `(image, label)`, a
#: pair of tensors or numpy arrays `(images (N, C, H, W) in [0, 1], labels (N,))`, or a
#: Hugging Face `datasets.Dataset` with an image column and a class-label column.
LabelledData = Dataset | tuple[torch.Tensor, torch.Tensor]


class LabelledImages(TensorDataset):
    """Images and their conditions held as two tensors: a map-style dataset of `(image, label)`.

    Args:
        images: Float tensor `(N, C, H, W)`, values in [0, 1].
        labels: Integer tensor `(N,)` of class indices; or, for several conditions, a dict
            of part name -> values per image (`{"digit": (N,) ints, "thickness": (N,)
            floats, "tags": (N, K) 0/1}`: NaN, -1 or `None` where a value is missing), or
            their table `(N, R)` (`cvae.conditions`) with `conditions` given.
        class_names: Optional class names, in class-index order.
        split: Which part of its source these images are, for tables and model cards:
            `"train"`, `"test"`, or a held-out part as `cvae.data` describes it.
        conditions: The parts, a `cvae.conditions.Conditions` or its JSON list; default for
            a dict: inferred from each tensor's kind (`infer_conditions`). A continuous part
            without statistics takes these data's.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | Mapping[str, Any],
                 class_names: Sequence[str] | None = None, split: str | None = None,
                 conditions: Conditions | Sequence[Any] | None = None):
        check_images(images, batch="N")
        schema = None if conditions is None else (
            conditions if isinstance(conditions, Conditions) else Conditions(conditions))
        if isinstance(labels, Mapping):
            schema = schema or infer_conditions(labels)
            labels = table_from_values(schema, labels, data=True)
        if schema is not None and not schema.is_single:
            check_table(schema, labels)
            schema = schema if schema.fitted else schema.fit(labels)
        elif schema is not None and labels.dim() == 2:  # one class per image, as a table column
            check_table(schema, labels)
            labels = labels[:, 0].nan_to_num(UNLABELLED)
        if labels.shape[0] != len(images) or (schema is None or schema.is_single) and labels.dim() != 1:
            raise ValueError(f"labels must be (N,) with N = {len(images)} images,"
                             f" got shape {tuple(labels.shape)}")
        super().__init__(images, labels if labels.dim() == 2 else _class_indices(labels))
        first = schema.first_categorical if schema is not None else None
        if first is not None and first.class_names and class_names is None:
            class_names = first.class_names
        self.class_names = list(class_names) if class_names is not None else None
        self.split = split
        self.conditions = schema

    @property
    def images(self) -> torch.Tensor:
        """The `(N, C, H, W)` image tensor."""
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        """The `(N,)` label tensor."""
        return self.tensors[1]

    def select(self, indices: torch.Tensor, split: str | None = None) -> LabelledImages:
        """The images at `indices` (a copy), with the same class names.

        Args:
            indices: A `(M,)` tensor of positions.
            split: The part's description; by default this one's.
        """
        return LabelledImages(self.images[indices], self.labels[indices], self.class_names,
                              self.split if split is None else split, self.conditions)


def label_tensor(values: object) -> torch.Tensor:
    """Labels of any form (a tensor, a numpy array, a list) as a tensor, before any check.

    Raises:
        TypeError: If they are not numbers, as class names given as strings: the message
            says so, where torch said only "too many dimensions 'str'".
    """
    if isinstance(values, torch.Tensor):
        return values
    try:
        return torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        items = list(values) if isinstance(values, (list, tuple)) else []
        odd = next((v for v in items if not isinstance(v, (int, float)) or isinstance(v, bool)), values)
        names = ("; to train on class names, give each name its index (and the names as class_names)"
                 if isinstance(odd, str) else "")
        raise TypeError(f"labels must be class indices (ints), got {type(odd).__name__}"
                        f" {short(odd)}{names}") from None


def _class_indices(labels: torch.Tensor) -> torch.Tensor:
    """Labels as `torch.long`: whole numbers only (float labels such as 2.7 are refused)."""
    if labels.dtype == torch.bool or labels.dtype.is_complex:
        raise TypeError(f"labels must be integer class indices, got {labels.dtype}")
    if labels.dtype.is_floating_point:  # whole, and within a long's range
        bad = ~torch.isfinite(labels) | (labels != labels.round()) | (labels.abs() >= 2**62)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(f"labels must be whole numbers (class indices), got"
                             f" {labels[i].item():g} at index {i}")
    return labels.long()


def class_names_of(dataset: Dataset) -> list[str] | None:
    """The class names a dataset carries (`class_names`, or torchvision's `classes`), if any."""
    if isinstance(dataset, Subset):
        return class_names_of(dataset.dataset)
    names = getattr(dataset, "class_names", None) or getattr(dataset, "classes", None)
    return [str(name) for name in names] if names else None


def conditions_of(dataset: Dataset) -> Conditions | None:
    """The conditions a dataset declares (`conditions`), if any."""
    if isinstance(dataset, Subset):
        return conditions_of(dataset.dataset)
    return getattr(dataset, "conditions", None)


def labels_of(dataset: Dataset) -> torch.Tensor:
    """The `(N,)` labels of a dataset, read without its images where it keeps them apart.

    Tensors, torchvision's datasets (`targets`), Hugging Face datasets and subsets of them
    give their labels directly; any other dataset is read item by item.
    """
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        labels = dataset.tensors[1]
        return labels if labels.dim() == 2 else _class_indices(labels)
    for name in ("labels", "targets"):
        found = getattr(dataset, name, None)
        if found is not None and not callable(found):
            return _class_indices(label_tensor(found))
    return _class_indices(label_tensor([_label(dataset[i][1])  # type: ignore[arg-type]
                                        for i in range(len(dataset))]))  # type: ignore[arg-type]


def _label(label: object) -> object:
    """A dataset's label as read here: `None` (no label) becomes `UNLABELLED`."""
    return UNLABELLED if label is None else label


def collate(items: list[tuple[torch.Tensor, object]]) -> tuple[torch.Tensor, torch.Tensor]:
    """`DataLoader`'s `collate_fn` for `(image, label)` items: a label of `None` becomes -1.

    A label that is a row of a conditions table (a 1-D tensor) is stacked into the table.
    """
    images = torch.stack([torch.as_tensor(x) for x, _ in items])
    if isinstance(items[0][1], torch.Tensor) and items[0][1].dim() == 1:
        return images, torch.stack([y for _, y in items])  # type: ignore[misc]
    return images, label_tensor([_label(y) for _, y in items])


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
    yield from DataLoader(dataset, batch_size=batch_size, collate_fn=collate)


class Batches:
    """`batches(dataset, batch_size)` as an iterable that reads the dataset anew each time.

    For a reader that goes over the data more than once, as it can over a `DataLoader`.
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1024):
        self.dataset, self.batch_size = dataset, batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return batches(self.dataset, self.batch_size)


def to_tensors(dataset: Dataset, batch_size: int = 1024) -> LabelledImages:
    """Read a map-style dataset of `(image_tensor, label)` once into two tensors.

    This pays the dataset's per-image loading and transforms once, instead of every epoch.
    Random augmentations are therefore frozen: train from the dataset itself if you need
    them (`Trainer(..., in_memory=False)`). The tensors are allocated once, at their full
    size, and filled batch by batch: reading never holds two copies.

    Args:
        dataset: A dataset whose items are `(image, label)`, images as `(C, H, W)` tensors.
        batch_size: Images read at a time.

    Returns:
        A `LabelledImages`; a dataset that is already one is returned as is.

    Raises:
        ValueError: If the dataset is empty or its images differ in shape.
    """
    if isinstance(dataset, LabelledImages):
        return dataset
    names, conditions = class_names_of(dataset), conditions_of(dataset)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        return LabelledImages(*dataset.tensors, names, conditions=conditions)
    n = len(dataset)  # type: ignore[arg-type]
    images = labels = torch.empty(0)
    done = 0
    for x, y in batches(dataset, batch_size):
        if done == 0:
            check_fits(n * x[0].numel() * x.element_size(), "cpu", f"{n:,} images of {tuple(x.shape[1:])}",
                       "resize them smaller, or train from the dataset as it is (in_memory=False)")
            images = torch.empty((n, *x.shape[1:]), dtype=x.dtype)
            labels = torch.empty((n, *y.shape[1:]), dtype=y.dtype)
        if x.shape[1:] != images.shape[1:]:
            raise ValueError(f"the images differ in shape: item 0 is {tuple(images.shape[1:])},"
                             f" the batch from item {done} {tuple(x.shape[1:])}; resize them to"
                             f" one shape (for example with transforms.Resize)")
        images[done:done + len(x)], labels[done:done + len(x)] = x, y
        done += len(x)
    return LabelledImages(images, labels, names, getattr(dataset, "split", None), conditions)


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
