"""What a new model takes from labelled data: image shape, classes, names, likelihood and backbone."""

from __future__ import annotations

import logging
from typing import Any

import torch

from cvae.data._labelled import LabelledData, LabelledImages, class_names_of, conditions_of, labels_of
from cvae.data._sources import as_dataset

logger = logging.getLogger(__name__)

CONV_UP_TO = 20_000
"""The most training images for which `from_data` chooses the conv backbone (of 8x8 or more).

A convolution knows that neighbouring pixels belong together, which a small data set
cannot teach an MLP: on 300 MNIST digits with the defaults, 80% of the conv's samples were
recognised (as a share of a classifier's accuracy on real digits) against 25% of the MLP's
(`benchmarks/small_data.py --sets mnist-300`, then `--model '{"backbone": "mlp"}'`; a
2-core AMD EPYC, 2026-12-06). On a CPU a conv step costs many times an MLP's, which a large
set pays on every image of every epoch, so a large set gets the tutorial's MLP, as in 0.1.0."""
SMALLEST_CONV_SIDE = 8  # below it, a stride-2 stage leaves too little of the image

GUIDED = {"condition_dropout": 0.05, "sampling": {"guidance": 1.0}}
"""What `from_data` adds for data with one label: condition dropout, and guidance 1 in sampling.

Trained with a twentieth of its labels dropped (from the decoder only, `unset="average"`), a
model decodes without its label too, and sampling can push each image away from that
average (classifier-free guidance). On small sets a decoder leans on the code more than on
the label, and drawn codes decode to images of no clear class; guidance 1 sharpens them. On
1,000 Fashion-MNIST images (two seeds), samples recognised as a share of a classifier's
accuracy on real images rose from 0.72-0.78 unguided to 0.90-0.98 (the worst class from
0.17-0.22 to 0.63). A tenth of the labels dropped did about as well, but its held-out
negative ELBO was about 5% worse than without dropout, a twentieth's about 1.5%
(`experiments/small-data-guidance/`). Guidance costs one more decoder pass a sample;
`sample(..., guidance=0)` draws without it. The weight that suits a set differs (on the
photographs and 8x8 digits of the panel any guidance made the worst class worse): `cvae
train` chooses it from the training images when training ends
(`cvae.evaluation.choose_guidance`, which Python users call likewise), and `cvae eval
--sweep --recommend` measures the trade-off on your data."""


FILM_FOR_COLOUR = {"film": True}
"""The conv backbone's settings that `from_data` adds for images of more than one channel.

The conv decoder's last layer mixes its feature maps with fixed weights: it can add a
colour to a shape, not multiply one by the other, and an image of one ink colour on one
paper colour is such a product. Scaled and shifted by the code (`ConvDecoder(film=True)`),
its feature maps can be coloured. On the small-data panel's four colour sets (defaults, seed
0; `benchmarks/small_data.py`, docs/benchmarks.md), the samples recognised rose on all four
(colourised digits 0.478 -> 0.654 of a classifier's accuracy on real images, colourised
Fashion-MNIST 0.939 -> 1.007, photograph patches 0.990 -> 1.021 and 0.945 -> 0.997); the
held-out negative ELBO was better on 600 patches (-3574 -> -3714 nats) and worse on the
other three (by 1.7%, 3.3% and 12.6%). Grey images keep the plain decoder: not measured."""


def suited_backbone(image_shape: tuple[int, ...], images: int) -> str:
    """The backbone for `images` training images of `image_shape`: `"conv"` or `"mlp"` (see `CONV_UP_TO`)."""
    return "conv" if images <= CONV_UP_TO and min(image_shape[1:]) >= SMALLEST_CONV_SIDE else "mlp"


def spread_images(data: LabelledData, most: int = 1000) -> torch.Tensor:
    """About `most` of the data's images, `(N, C, H, W)`, spread evenly over the set.

    Raises:
        ValueError: If the data set is empty.
    """
    dataset = as_dataset(data)
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("the data set is empty: there is no shape to take from it")
    step = max(1, n // most)
    return (dataset.images[::step] if isinstance(dataset, LabelledImages)
            else torch.stack([torch.as_tensor(dataset[i][0]) for i in range(0, n, step)]))


def start_at_mean(model: Any, images: torch.Tensor) -> None:
    """Start `model`'s decoder at the mean of `images`, `(N, C, H, W)` (`spread_images`).

    Where the decoder has `start_output_at` and the likelihood `output_of_mean` (see their
    docs). Started at 0, a decoder first spends its steps on the images' average colour, and
    a Gaussian model of images with a random paper and ink colour each (the small-data
    panel's colourised sets) left its code unused there (on 900 colourised Fashion-MNIST
    images, KL under 0.1 nats an image from the fourth epoch to the fortieth): started at
    the mean, it used its code from the fourth epoch, and its held-out negative ELBO at
    epoch 40 was -421 nats where the other's was 238 (`experiments/colour-collapse/`).
    `from_data` does not call it for several conditions: there, started at the mean, the
    independence penalty no longer kept a part out of the code of a small test model (a
    linear probe read it from the code every time, as without the penalty:
    `tests/test_independence.py`), and what the start does for them is not measured.
    """
    start = getattr(model.decoder, "start_output_at", None)
    if start is None or not images.dtype.is_floating_point:
        return
    mean = images.mean(0)
    if model.likelihood.output_of_mean(mean) is not None:
        start(mean, model.likelihood.output_of_mean)


def model_settings(data: LabelledData, images: torch.Tensor, likelihood: str = "auto",
                   backbone: str | None = "auto") -> dict[str, Any]:
    """What a new model takes from `data`: image shape, classes, names, likelihood and backbone.

    Data with several conditions give them whole (`conditions`), continuous statistics included.

    Args:
        data: Labelled data in any form the `Trainer` takes, not empty.
        images: Up to 1,000 of the data's images, spread over the set (`spread_images`,
            which refuses an empty set).
        likelihood: A registered likelihood, or `"auto"`: the one that suits `images`
            (`cvae.models.likelihoods.suited_likelihood`).
        backbone: A registered backbone, or `"auto"`: the one that suits the number and size
            of the images (`suited_backbone`); `None` leaves it to the model's default.
    """
    from cvae.models.likelihoods import suited_likelihood

    dataset = as_dataset(data)
    n = len(dataset)  # type: ignore[arg-type]
    names = class_names_of(dataset)
    first = torch.as_tensor(dataset[0][0])
    if likelihood == "auto":
        # Integer images get the default; the Trainer refuses them with the fix.
        likelihood = suited_likelihood(images) if images.dtype.is_floating_point else "bernoulli"
        logger.info(f"cvae: likelihood {likelihood!r}, which suits these images (see the guide,"
                    f" Likelihoods; likelihood= chooses another)")
    conditions = conditions_of(dataset)
    if conditions is not None and not conditions.is_single:  # several parts: they hold the classes
        settings: dict[str, Any] = {"image_shape": tuple(first.shape), "likelihood": likelihood,
                                    "conditions": conditions.to_json()}
        logger.info(f"cvae: conditioned on {conditions}")
    else:
        settings = {"image_shape": tuple(first.shape), "likelihood": likelihood, "class_names": names,
                    "num_classes": len(names) if names else int(labels_of(dataset).max()) + 1}
    if backbone == "auto":
        backbone = suited_backbone(tuple(first.shape), n)
        if backbone == "conv" and first.shape[0] > 1:
            settings["backbone_kwargs"] = FILM_FOR_COLOUR
    return settings if backbone is None else {**settings, "backbone": backbone}
