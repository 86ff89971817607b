"""Every form labelled data come in, made one: a map-style dataset of `(image, label)`."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import Dataset

from .labelled import LabelledData, LabelledImages, class_names_of, labels_of

__all__ = ["as_dataset", "model_settings"]

logger = logging.getLogger(__name__)


def as_dataset(data: LabelledData) -> Dataset:
    """A map-style dataset for `data`, in any form the library takes.

    A pair of tensors or numpy arrays becomes a `LabelledImages`; a Hugging Face
    `datasets.Dataset` a `cvae.hf_data.HFImages` (its image and class-label columns found
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
        return LabelledImages(*(torch.as_tensor(item) for item in data))
    # Hugging Face's types, known by their module: `datasets` is imported only if they are used.
    kind = type(data).__name__ if type(data).__module__.split(".")[0] == "datasets" else None
    if kind == "Dataset":
        from .hf_data import HFImages

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


def model_settings(data: LabelledData, likelihood: str = "auto") -> dict[str, Any]:
    """What a new model takes from `data`: image shape, classes, names and likelihood.

    Args:
        data: Labelled data in any form the `Trainer` takes.
        likelihood: A registered likelihood, or `"auto"`: the one that suits up to 1,000
            of the data's images, spread over the set (`cvae.likelihoods.suited_likelihood`).

    Raises:
        ValueError: If the data set is empty.
    """
    from .likelihoods import suited_likelihood

    dataset = as_dataset(data)
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("the data set is empty: there is no shape to take from it")
    names = class_names_of(dataset)
    first = torch.as_tensor(dataset[0][0])
    if likelihood == "auto":
        step = max(1, n // 1000)
        images = (dataset.images[::step] if isinstance(dataset, LabelledImages)
                  else torch.stack([torch.as_tensor(dataset[i][0]) for i in range(0, n, step)]))
        # Integer images get the default; the Trainer refuses them with the fix.
        likelihood = suited_likelihood(images) if images.dtype.is_floating_point else "bernoulli"
        logger.info(f"cvae: likelihood {likelihood!r}, which suits these images (see the guide,"
                    f" Likelihoods; likelihood= chooses another)")
    return {"image_shape": tuple(first.shape), "likelihood": likelihood, "class_names": names,
            "num_classes": len(names) if names else int(labels_of(dataset).max()) + 1}
