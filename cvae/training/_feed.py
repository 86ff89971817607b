"""Feeding the Trainer: labelled data checked against the model, and cut into shuffled batches.

Data are held on the training device as tensors (`in_memory`, the fast way) or read by a
`DataLoader` batch by batch; either way every process of a `torchrun` job draws the same
order and takes its own share of each batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from cvae._classes import UNLABELLED
from cvae.data._labelled import (
    LabelledData,
    LabelledImages,
    class_names_of,
    collate,
    conditions_of,
    to_tensors,
)
from cvae.data._sources import as_dataset
from cvae.models.conditional_vae import ConditionalVAE

logger = logging.getLogger("cvae.trainer")

__all__ = ["prepare", "shuffled_batches", "first"]


def prepare(data: LabelledData, model: ConditionalVAE, role: str,
            device: torch.device | None) -> Dataset:
    """Check the data against the model; with a `device`, hold them there as tensors.

    A model without class names takes the data's. Without a device (streaming), only the
    first item is checked now; each batch is checked as it is read.

    Raises:
        ValueError: If the data are empty, or do not fit the model (shape, labels, names).
    """
    dataset = as_dataset(data)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ValueError(f"the {role} data set is empty")
    # fills the names (and a continuous part's statistics) of a new model
    model.match_conditions(conditions_of(dataset), class_names_of(dataset), role)
    if device is None:
        x, y = collate([dataset[0]])
        model._check_data(x, y, role)
        return dataset
    tensors = to_tensors(dataset)
    model._check_data(tensors.images, tensors.labels, role)
    if model.classifier is not None and role == "training":
        model.check_classes_labelled(tensors.labels)
    if role == "training":
        for advice in (model.likelihood.advice(tensors.images), _grey_advice(tensors.images)):
            if advice:
                logger.warning(f"cvae: {advice}")
    return LabelledImages(tensors.images.to(device, torch.float32), tensors.labels.to(device),
                          tensors.class_names, conditions=tensors.conditions)


def _grey_advice(images: torch.Tensor) -> str | None:
    """Advice for grey images read as RGB (three equal channels in every pixel), else None.

    Grey photos saved as RGB files are common, and are read as RGB by the files' own mode:
    the model then takes each pixel three times, for nothing.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        return None
    if not (torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])):
        return None
    return ("every training image has three equal channels: grey images read as RGB, so the"
            " model takes each pixel three times. Read them as grey for a model with a third"
            " of the input: channels=1 (load_image_folder, HFImages) or cvae train --channels 1,"
            " or images[:, :1] for tensors")


def shuffled_batches(dataset: Dataset, model: ConditionalVAE, batch_size: int,
                     generator: torch.Generator, *, in_memory: bool, rank: int = 0,
                     world_size: int = 1, num_workers: int = 0
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """Yield `(x, y, m)`: this process's share of each batch, and the whole batch's size.

    Every process draws the same order from the same generator (on its device) and takes
    every `world_size`-th image of each batch, so each image is seen once per epoch.
    `dataset` is what `prepare` returned: with `in_memory`, a `LabelledImages` on the device.
    """
    device = generator.device
    n = len(dataset)  # type: ignore[arg-type]
    order = torch.randperm(n, generator=generator, device=device)
    starts = range(0, n, batch_size)
    if in_memory:
        for start in starts:
            idx = order[start:start + batch_size][rank::world_size]
            yield dataset.images[idx], dataset.labels[idx], min(batch_size, n - start)
        return
    shares = [order[start:start + batch_size][rank::world_size].tolist() for start in starts]
    loader = iter(DataLoader(dataset, batch_sampler=[s for s in shares if s],
                             num_workers=num_workers, pin_memory=device.type == "cuda",
                             collate_fn=collate))
    for start, share in zip(starts, shares):
        # A process whose share of a short last batch is empty still takes part in the step
        # (DDP's gradient exchange needs every process), with no images.
        x, y = next(loader) if share else (torch.empty(0, *model.image_shape), model._zero_labels(0))
        if share:  # read only now, so checked only now: before the step that would use it
            model._check_data(x, y, f"the batch from item {start}:")
        yield (x.to(device, torch.float32, non_blocking=True), y.to(device, non_blocking=True),
               min(batch_size, n - start))


def first(dataset: Dataset, n: int) -> Dataset:
    """The first `n` labelled items of what `prepare` returned: tensors held in memory.

    Images labelled -1 (unlabelled, for a semi-supervised model) are passed over: what
    the Trainer counts active units on needs labels.
    """
    if isinstance(dataset, LabelledImages):
        labels = dataset.labels
        known = labels != UNLABELLED if labels.dim() == 1 else torch.ones(len(labels), dtype=torch.bool)
        keep = known.nonzero().flatten()[:n].to(labels.device)
        return LabelledImages(dataset.images[keep], labels[keep], dataset.class_names,
                              conditions=dataset.conditions)
    return Subset(dataset, range(min(n, len(dataset))))  # type: ignore[arg-type]
