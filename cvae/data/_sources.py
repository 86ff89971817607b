"""Every form labelled data come in, made one: a map-style dataset of `(image, label)`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch.utils.data import Dataset

from cvae.data._labelled import LabelledData, LabelledImages, label_tensor, to_tensors

__all__ = ["as_dataset", "as_labelled"]

logger = logging.getLogger(__name__)


def as_dataset(data: LabelledData) -> Dataset:
    """A map-style dataset for `data`, in any form the library takes.

    A pair of tensors or numpy arrays becomes a `LabelledImages` (the labels may be a dict
    of condition values by name, `{"digit": ..., "thickness": ...}`); a Hugging Face
    `datasets.Dataset` a `cvae.data.HFImages` (its image and class-label columns found
    from its features); a map-style dataset is returned as is.

    Raises:
        ValueError: If a tuple is not a pair of tensors of matching length, or a Hugging
            Face dataset has no image or class-label column.
        TypeError: If `data` is none of these.
    """
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(f"tensor data must be a pair (images, labels), got {len(data)} items")
        # numpy arrays become tensors, sharing their memory; their dtype is kept, so the
        # Trainer's checks (floats in [0, 1]) apply to them as to tensors.
        if isinstance(data[1], Mapping):  # several conditions, by name
            return LabelledImages(torch.as_tensor(data[0]), data[1])
        return LabelledImages(torch.as_tensor(data[0]), label_tensor(data[1]))
    # Hugging Face's types, known by their module: `datasets` is imported only if they are used.
    kind = type(data).__name__ if type(data).__module__.split(".")[0] == "datasets" else None
    if kind == "Dataset":
        from cvae.data._hf import HFImages

        return HFImages(data)
    if kind in ("DatasetDict", "IterableDatasetDict"):
        raise TypeError(f"this is a {kind} of splits {list(data)};"  # type: ignore[call-overload]
                        f" give one split, such as data['train']")
    if kind == "IterableDataset":
        raise TypeError("a streaming datasets.IterableDataset has no length or random access; load"
                        " it without streaming=True: its Arrow files are memory-mapped and read"
                        " lazily (Trainer(..., in_memory=False) reads them batch by batch)")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a map-style Dataset of (image, label), a pair (images,"
                        f" labels) or a Hugging Face datasets.Dataset, got {type(data).__name__}")
    return data


def as_labelled(data: LabelledData) -> LabelledImages:
    """`data`, in any form the library takes, as one `LabelledImages` in memory: the one entry.

    Every public function that takes labelled data calls this once (or `as_dataset`, to
    stream); what it calls below takes the result as it is, since it is already one.

    Raises:
        ValueError, TypeError: As `as_dataset` and `to_tensors`.
    """
    return to_tensors(as_dataset(data))
