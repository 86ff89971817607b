"""What a new model takes from labelled data: image shape, classes, names and likelihood."""

from __future__ import annotations

import logging
from typing import Any

import torch

from cvae.data._labelled import LabelledData, LabelledImages, class_names_of, labels_of
from cvae.data._sources import as_dataset

logger = logging.getLogger(__name__)

def model_settings(data: LabelledData, likelihood: str = "auto") -> dict[str, Any]:
    """What a new model takes from `data`: image shape, classes, names and likelihood.

    Args:
        data: Labelled data in any form the `Trainer` takes.
        likelihood: A registered likelihood, or `"auto"`: the one that suits up to 1,000
            of the data's images, spread over the set (`cvae.models.likelihoods.suited_likelihood`).

    Raises:
        ValueError: If the data set is empty.
    """
    from cvae.models.likelihoods import suited_likelihood

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
