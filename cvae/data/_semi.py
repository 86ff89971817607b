"""Partly labelled data: keep a few labels per class, or add images without a label.

Images labelled `UNLABELLED` (-1) train a semi-supervised model (`cvae.models`' M2) too.
"""

from __future__ import annotations

import torch

from cvae._checks import check_int
from cvae._classes import UNLABELLED
from cvae.data._labelled import LabelledData, LabelledImages
from cvae.data._sources import as_labelled


def partly_labelled(data: LabelledData, per_class: int, seed: int = 0,
                    repeat: int = 1) -> LabelledImages:
    """Keep the labels of `per_class` images of each class; the rest become `UNLABELLED`.

    Args:
        data: Labelled data in any form the `Trainer` takes.
        per_class: Images of each class that keep their label, drawn with `seed`.
        seed: Seed of the draw: the same seed keeps the same images.
        repeat: How many times each labelled image appears (the unlabelled ones once), so
            that batches hold labelled images often enough to train the classifier: 100
            labels among 60,000 images put one in about every fifth batch of 128.

    Returns:
        The images and their labels, with -1 for the images whose label was dropped.

    Raises:
        ValueError: If `per_class` or `repeat` is not a positive int, or a class has fewer
            than `per_class` images.
    """
    per_class, repeat = check_int("per_class", per_class), check_int("repeat", repeat)
    data = as_labelled(data)
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(data.labels[data.labels != UNLABELLED]).tolist():
        where = (data.labels == c).nonzero().flatten()
        if len(where) < per_class:
            raise ValueError(f"class {c} has {len(where)} images, fewer than the {per_class} per"
                             f" class asked to keep their labels")
        keep.append(where[torch.randperm(len(where), generator=generator)[:per_class]])
    kept = torch.cat(keep)
    labels = torch.full_like(data.labels, UNLABELLED)
    labels[kept] = data.labels[kept]
    return with_unlabelled(LabelledImages(data.images, labels, data.class_names), repeat=repeat)


def with_unlabelled(data: LabelledData, unlabelled: torch.Tensor | None = None,
                    repeat: int = 1) -> LabelledImages:
    """Labelled data and a separate set of unlabelled images, as one training set.

    Args:
        data: Labelled data in any form the `Trainer` takes; its images labelled -1 (or
            `None`) are unlabelled too.
        unlabelled: More images without labels, `(N, C, H, W)` in [0, 1] like those of
            `data` (`cvae.data.load_images(paths, image_shape)` reads files so), or `None`.
        repeat: How many times each labelled image appears (the unlabelled ones once), so
            that batches hold labelled images often enough to train the classifier.

    Returns:
        The images of both, labelled images first as in `data`, then `unlabelled` with
        label -1, then the repeats.

    Raises:
        ValueError: If `repeat` is not a positive int, or the unlabelled images are not of
            the shape of `data`'s.
        TypeError: If `unlabelled` is not a float tensor.
    """
    repeat = check_int("repeat", repeat)
    data = as_labelled(data)
    images, labels = data.images, data.labels
    if unlabelled is not None:
        if not isinstance(unlabelled, torch.Tensor) or not unlabelled.dtype.is_floating_point:
            raise TypeError(f"unlabelled must be a float tensor of images (N, C, H, W) in [0, 1],"
                            f" got {getattr(unlabelled, 'dtype', type(unlabelled).__name__)}")
        if unlabelled.shape[1:] != images.shape[1:] or unlabelled.dim() != 4:
            raise ValueError(f"the unlabelled images have shape {tuple(unlabelled.shape)}, but the"
                             f" labelled ones (N, {', '.join(map(str, images.shape[1:]))})")
        images = torch.cat([images, unlabelled.to(images.dtype)])
        labels = torch.cat([labels, labels.new_full((len(unlabelled),), UNLABELLED)])
    extra = (labels != UNLABELLED).nonzero().flatten().repeat(repeat - 1)
    return LabelledImages(torch.cat([images, images[extra]]), torch.cat([labels, labels[extra]]),
                          data.class_names, data.split)
