"""What the `cvae` commands' options share: their types, their help, and the data options.

A help text's `{Trainer.epochs}` is replaced by the library's own default, read from its
signature or a module's constant when the help is shown, so the command states no default
that the library decides: one number, in one place.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import math
import re
from collections.abc import Callable

from cvae._checks import MAX_INT, expand_path, parse_json

__all__ = ["Formatter", "count", "natural", "fraction", "positive", "output", "json_object",
           "add_data_options", "add_inputs"]


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if not minimum <= value <= MAX_INT:  # torch takes 64-bit ints
            raise argparse.ArgumentTypeError(f"must be a whole number from {minimum} to 2**63 - 1,"
                                             f" got {text[:40]!r}")
        return value

    return parse


count, natural = _whole(1), _whole(0)  # a size or count; a seed or an index


def output(text: str) -> str:
    """A file or folder to write: not empty, `~` expanded."""
    try:
        return str(expand_path(text, "the output path"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def json_object(text: str) -> dict:
    """A JSON object given on the command line, such as `'{"channels": [32, 64]}'`."""
    try:
        value = parse_json(text, "the value")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"channels\": [32, 64]}}',"
                                         f" got {text[:40]!r}")
    return value


def names(text: str) -> list[str]:
    """A comma-separated list of names, such as `digit,thickness:continuous`."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"give names separated by commas, such as digit,thickness;"
                                         f" got {text!r}")
    return items


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, such as 0.2; got"
                                         f" {text[:40]!r}")
    return value


def positive(text: str) -> float:
    """A finite number above 0, such as 0.95."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, such as 0.95; got {text[:40]!r}")
    return value


#: What `{Name.setting}` in a help text reads its default from (imported when help is shown): a
#: signature's parameter, or a module's constant.
_LIBRARY = {"Trainer": ("cvae.training", "Trainer"), "ConditionalVAE": ("cvae.models", "ConditionalVAE"),
            "evaluate": ("cvae.evaluation", "evaluate"), "optim": ("cvae.training._optim", None),
            "sample": ("cvae.models", "ConditionalVAE.sample"),
            "EarlyStopping": ("cvae.training", "EarlyStopping"), "length": ("cvae.training._length", None),
            "stopping": ("cvae.training.early_stopping", None), "splits": ("cvae.data._splits", None),
            "from_data": ("cvae.models._from_data", None), "augment": ("cvae.augmentation", "augment"),
            "sweep": ("cvae.evaluation.sweep", "sweep")}
_DEFAULT = re.compile(r"\{(\w+)\.(\w+)\}")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help whose `{Trainer.epochs}` is the library's own default, read from its signature.

    So the command states no default that the library decides: one number, in one place.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        return _DEFAULT.sub(_library_default, text) if text else text


def _library_default(match: re.Match[str]) -> str:
    module, name = _LIBRARY[match.group(1)]
    if name is None:  # a module's constant
        default = getattr(importlib.import_module(module), match.group(2))
    else:
        function = functools.reduce(getattr, name.split("."), importlib.import_module(module))
        default = inspect.signature(function).parameters[match.group(2)].default
    return f"{default:g}" if isinstance(default, float) else str(default)


def add_data_options(parser: argparse.ArgumentParser, dataset_help: str) -> None:
    """The options that choose a dataset and how to read and split it (train and eval)."""
    parser.add_argument(
        "--dataset", default=None,
        help=dataset_help.replace(" (default", "; a name (see `cvae list`), a folder with one"
                                  " sub-folder of images per class, or hf:ORG/NAME for a Hugging"
                                  " Face dataset (or hf:PATH for local Parquet or image folders)"
                                  " (default"))
    parser.add_argument("--data-root", default=None,
                        help="folder holding named datasets (default: $CVAE_DATA or"
                             " ~/.cache/cvae/data)")
    parser.add_argument("--image-size", type=count, nargs=2, metavar=("H", "W"), default=None,
                        help="resize the images of a folder or Hugging Face dataset to H x W"
                             " (for cvae eval of a model that cvae train made on these data: as"
                             " it did)")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None,
                        help="read the images as grey (1) or RGB (3) (default: grey if every"
                             " image is grey, RGB if every image has colour; for cvae eval, as"
                             " --image-size)")
    parser.add_argument("--unlabelled-folder", default=None, metavar="NAME",
                        help="in a folder dataset, the sub-folder of images without a label: not"
                             " a class; training on them makes a semi-supervised model (see the"
                             " guide, Partly labelled data)")
    parser.add_argument("--keep-unlabelled", action="store_true",
                        help="keep a Hugging Face dataset's rows labelled -1 as images without a"
                             " label (they are refused otherwise)")
    parser.add_argument("--test-fraction", type=fraction, default=None,
                        help="for data without a test split (folders, most Hugging Face"
                             " datasets): the share of every class held out (default: 0.2; for"
                             " cvae eval of a model that cvae train made on these data, the"
                             " share it was trained beside)")
    parser.add_argument("--split-seed", type=natural, default=None,
                        help="the seed that draws the held-out images (default: 0; for cvae eval,"
                             " as --test-fraction)")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit of a Hugging Face dataset (default: main)")
    parser.add_argument("--image-column", default=None,
                        help="a Hugging Face dataset's image column (default: its Image feature)")
    parser.add_argument("--label-column", default=None,
                        help="its class-label column (default: its ClassLabel feature)")
    parser.add_argument("--conditions", type=names, default=None, metavar="NAME[,NAME...]",
                        help="several conditions instead of one label: the columns of a folder's"
                             " metadata.csv/metadata.jsonl or of a Hugging Face dataset, each"
                             " optionally NAME:KIND (categorical, multi-label, continuous; default:"
                             " inferred and printed); for a folder with a metadata file, every column"
                             " by default")


def add_inputs(parser: argparse.ArgumentParser, index_help: str, default: list[int]) -> None:
    """The options that pick a model and input images, shared by transfer and interpolate."""
    parser.add_argument("--model", default=None,
                        help="a bundled model's name, a model folder or a Hub repo id"
                             " (default: the default bundled model, mnist-conv)")
    parser.add_argument("--images", nargs="+", default=None, help="image files to use")
    parser.add_argument("--labels", nargs="+", default=None,
                        help="the classes of --images, one each")
    parser.add_argument("--dataset", default="mnist",
                        help="without --images: the dataset to take test images from (a folder or"
                             " Hugging Face dataset is read in the model's shape)")
    parser.add_argument("--data-root", default=None, help="folder holding the data")
    parser.add_argument("--index", type=natural, nargs="+", default=default, help=index_help)

