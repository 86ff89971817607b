"""Train the bundled `mnist-morpho` model: MNIST conditioned on digit, stroke thickness and slant.

The thickness and slant of every MNIST image are measured by `benchmarks/morphometry.py`
(after Castro et al. 2019, Morpho-MNIST); the model takes the three as its conditions
(`cvae.conditions`: one categorical part, two continuous ones), each dropped for 10% of
the images so that any of them can be left unset. Then `--card-only` measures it
(`scripts/measure_conditions.py` does the measuring) and writes its card. Usage, from the
repo root:

    CVAE_DATA=../shared/data python scripts/train_morpho_mnist.py            # train + card
    CVAE_DATA=../shared/data python scripts/train_morpho_mnist.py --card-only
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from bundled import command_line

import cvae
from cvae.hub._layout import HISTORY_NAME
from cvae.training import RunRecord

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from morphometry import measure  # noqa: E402

DIGITS = [str(d) for d in range(10)]
# The conv backbone, small enough for a bundled file of about 3.5 MB.
BACKBONE = {"channels": [32, 64], "hidden_dim": 128, "extra_convs": 0}
CONDITIONS = [
    {"name": "digit", "kind": "categorical", "num_classes": 10, "class_names": DIGITS},
    {"name": "thickness", "kind": "continuous"},
    {"name": "slant", "kind": "continuous"},
]


def morpho_mnist(train: bool) -> cvae.LabelledImages:
    """MNIST with each image's digit, thickness (pixels) and slant (degrees) as its conditions."""
    mnist = cvae.load_dataset("mnist", train=train)
    measured = measure(mnist.images)
    return cvae.LabelledImages(
        mnist.images, {"digit": mnist.labels, **measured}, split=mnist.split, conditions=CONDITIONS
    )


def train(args, parser):
    data = morpho_mnist(train=True)
    torch.manual_seed(args.seed)
    model = cvae.ConditionalVAE.from_data(
        data, backbone=args.backbone, backbone_kwargs=args.backbone_kwargs, likelihood="bernoulli"
    )
    trainer = cvae.Trainer(model, data, epochs=args.epochs, seed=args.seed, progress=False)
    trainer.train()
    command = command_line(
        "train_morpho_mnist.py", parser, args, ("epochs", "seed", "backbone", "backbone_kwargs", "output")
    )
    record = RunRecord.of(trainer, command=command, data={"images": len(data)})
    model.save_pretrained(args.output, extra_files={HISTORY_NAME: record.to_json()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbone", default="conv")
    parser.add_argument(
        "--backbone-kwargs",
        type=json.loads,
        default=BACKBONE,
        help="the backbone's settings as JSON, such as '{\"hidden_dims\": [512]}'",
    )
    parser.add_argument("--output", default="cvae/pretrained/mnist-morpho")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="make this the model's recommended sampling temperature (1: its own distribution)",
    )
    parser.add_argument("--card-only", action="store_true", help="measure the trained model, write its card")
    args = parser.parse_args()
    if not args.card_only:
        train(args, parser)
    from measure_conditions import morpho_card

    morpho_card(args.output, morpho_mnist(train=False), morpho_mnist(train=True), args.temperature)


if __name__ == "__main__":
    main()
