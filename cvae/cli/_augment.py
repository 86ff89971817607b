"""`cvae augment`: write a labelled synthetic set and its datasheet (see `cvae.augment`)."""

from __future__ import annotations

import argparse
from typing import Any

from cvae.cli._options import Formatter, add_data_options, count, natural, output

__all__ = ["add_augment_parser", "run_augment", "per_class"]


def per_class(values: list[str] | None) -> int | dict[str, int] | None:
    """`--per-class N` (every class), or `--per-class CLASS=N` repeated (those classes).

    Raises:
        ValueError: For a count that is not a whole number, or N given beside CLASS=N.
    """
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return _count(values[0], "--per-class")
    counts = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        if not sep or not name:
            raise ValueError(
                f"--per-class takes one N for every class, or CLASS=N for each class"
                f" (repeated), got {value!r}"
            )
        counts[name] = _count(number, f"--per-class {name}")
    return counts


def _count(text: str, what: str) -> int:
    """`text` as a count, as the other commands' counts are read; refused naming `what`."""
    try:
        return count(text)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"{what} {err}") from None


def add_augment_parser(sub: Any) -> None:
    """Add `cvae augment` to the `cvae` command's sub-parsers."""
    a = sub.add_parser(
        "augment",
        formatter_class=Formatter,
        help="write a labelled synthetic set, with a datasheet that says whether it helps",
        description="Draw a labelled synthetic set from a model (or train one with the defaults"
        " on the data), write it as an image folder or a Hugging Face dataset, and"
        " measure it: recognised, precise, varied and not copied, class by class, and"
        " whether a classifier trained with it beats one trained on the real images"
        " only (datasheet.md, datasheet.json).",
        epilog="example: cvae augment --dataset path/to/folder --balance -o synthetic/",
    )
    a.set_defaults(func=run_augment)
    add_data_options(a, "the real labelled images (default: mnist)")
    _add_set_options(a)
    _add_drawing_options(a)


def _add_set_options(a: argparse.ArgumentParser) -> None:
    """What `cvae augment` draws, from which model, where to, and in what form."""
    a.add_argument(
        "-o",
        "--output",
        type=output,
        required=True,
        help="a new or empty folder for the set and its datasheet",
    )
    a.add_argument(
        "--model",
        default=None,
        help="a bundled model's name, a folder from `cvae train`, or a Hub repo id"
        " (default: train one with the defaults on the data's training part)",
    )
    a.add_argument(
        "--per-class",
        action="append",
        default=None,
        metavar="N|CLASS=N",
        help="images to draw of every class (N), or of one class (CLASS=N, repeated)",
    )
    a.add_argument(
        "--balance",
        action="store_true",
        help="draw for each class what it lacks of the largest class's count",
    )
    a.add_argument(
        "--format",
        choices=["imagefolder", "parquet", "hf"],
        default="imagefolder",
        help="images/CLASS/*.png, data/*.parquet, or a dataset/ folder from"
        " save_to_disk (the last two need pip install 'torch-cvae[datasets]')"
        " (default: imagefolder)",
    )


def _add_drawing_options(a: argparse.ArgumentParser) -> None:
    """How `cvae augment` draws the set, from which images, and how it is measured."""
    a.add_argument(
        "--limit",
        type=count,
        default=None,
        help="use this many training images, every class in proportion (seeded)",
    )
    a.add_argument(
        "--no-datasheet",
        action="store_true",
        help="write the set without measuring it (the classifiers take minutes on a CPU)",
    )
    a.add_argument(
        "--seeds", type=count, default=3, help="seeds of each classifier the utility compares (default: 3)"
    )
    a.add_argument(
        "--classifier-steps",
        type=count,
        default=None,
        help="Adam steps of each classifier (default: {augment.classifier_steps})",
    )
    a.add_argument("--seed", type=natural, default=0, help="seed of the draws (default: 0)")
    a.add_argument(
        "--guidance",
        type=float,
        default=0.0,
        metavar="W",
        help="classifier-free guidance weight of the draws; the model's recommended temperature"
        " and sharpness apply (default: 0, unguided: guided images are more typical of their"
        " class and teach a classifier less)",
    )


def run_augment(args: argparse.Namespace) -> None:
    """`cvae augment`: draw, measure and write; print the verdict."""
    from cvae._checks import check_float
    from cvae.augmentation import augment
    from cvae.augmentation._augment import check_output
    from cvae.augmentation._write import check_format
    from cvae.cli._run_data import DEFAULT_DATASET, as_trained, data_options
    from cvae.data import load_splits, stratified_subset

    counts = per_class(args.per_class)
    if (counts is None) == (not args.balance):
        raise ValueError("say how many images to draw: --per-class N (or CLASS=N), or --balance, not both")
    check_format(args.format)
    check_float("--guidance", args.guidance)
    check_output(args.output)  # before the data are read or anything is trained
    model = None
    if args.model is not None:
        from cvae.hub._pretrained import training_record
        from cvae.models.conditional_vae import ConditionalVAE

        model = ConditionalVAE.from_pretrained(args.model, map_location="cpu")
        as_trained(args, training_record(args.model))  # the data it was trained on, held out as then
    args.dataset = args.dataset or DEFAULT_DATASET
    train, test = load_splits(args.dataset, args.data_root, **data_options(args))
    if args.limit is not None:
        train = stratified_subset(train, args.limit, args.seed)
    settings = {"classifier_steps": args.classifier_steps} if args.classifier_steps else {}
    sheet = augment(
        model,
        train,
        args.output,
        per_class=counts,
        balance=args.balance,
        format=args.format,
        test=test,
        datasheet=not args.no_datasheet,
        seeds=args.seeds,
        seed=args.seed,
        guidance=args.guidance,
        **settings,
    )
    print(sheet.verdict)
    trained = ", and the model trained to draw them (model/)" if model is None else ""
    print(
        f"wrote {sheet.figures['images']} images to {args.output} ({sheet.figures['entry']}/), with"
        f" datasheet.md and datasheet.json{trained}"
    )
