"""The `cvae` command: sample, train, evaluate and push models, and list what is bundled."""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import json
import re
from collections.abc import Callable

from cvae.cli import _commands as commands
from cvae.cli._eval import run_eval
from cvae.cli._train import run_train
from cvae.version import __version__

__all__ = ["build_parser"]


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum},"
                                             f" got {text[:40]!r}")
        return value

    return parse


_count, _natural = _whole(1), _whole(0)  # a size or count; a seed or an index


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, such as 0.2; got"
                                         f" {text[:40]!r}")
    return value


#: What `{Name.setting}` in a help text reads its default from (imported when help is shown): a
#: signature's parameter, or a module's constant.
_LIBRARY = {"Trainer": ("cvae.training", "Trainer"), "ConditionalVAE": ("cvae.models", "ConditionalVAE"),
            "evaluate": ("cvae.evaluation", "evaluate"), "optim": ("cvae.training._optim", None),
            "sample": ("cvae.models", "ConditionalVAE.sample")}
_DEFAULT = re.compile(r"\{(\w+)\.(\w+)\}")


class _Formatter(argparse.RawDescriptionHelpFormatter):
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `cvae` command."""
    parser = argparse.ArgumentParser(
        prog="cvae",
        description="Conditional VAEs: generate images of a chosen class, or train a model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "sample", formatter_class=_Formatter, help="write a PNG grid of new images of one class",
        description="Generate new images of one class with a model and write them as a PNG grid.",
        epilog="example: cvae sample --digit 7 -n 16 -o sevens.png")
    s.set_defaults(func=commands.run_sample)
    # Classes stay text: the model reads a name first, an index only if no class has that name.
    # --label first: the usage line shows it, and a model of clothes has no digits.
    s.add_argument("--label", "--digit", dest="label", required=True, metavar="CLASS",
                   help="the class to draw: its name (as the model's class names spell it), or"
                        " its index if no class has that name (a digit for MNIST; --digit is the"
                        " same option)")
    s.add_argument("-n", type=_count, default=16, help="how many images (default: 16)")
    s.add_argument("-o", "--output", default=None,
                   help="PNG file to write (default: samples-CLASS.png, named after the class)")
    s.add_argument("--model", default=None,
                   help="a bundled model's name, a folder from `cvae train`, or a Hub repo id"
                        " (default: the default bundled model, mnist-conv)")
    s.add_argument("--temperature", type=float, default=None,
                   help="scale of the prior noise (default: {sample.temperature})")
    s.add_argument("--seed", type=_natural, default=None, help="seed for reproducible images")
    s.add_argument("--nrow", type=_count, default=None, help="images per row of the grid")
    s.add_argument("--scale", type=_count, default=1, help="enlarge each pixel this many times")

    t = sub.add_parser(
        "train", help="train a model and save it where from_pretrained can load it",
        description="Train a conditional VAE on a labelled dataset with the tutorial's recipe"
                    " (Adam, BCE + KLD) and save config.json, model.safetensors and a model card.",
        epilog="example: cvae train --dataset mnist --epochs 10 --output runs/mnist\n"
               "on 4 processes: torchrun --nproc_per_node 4 -m cvae.cli train -o runs/mnist",
        formatter_class=_Formatter)
    t.set_defaults(func=run_train)
    _data(t, "the dataset to train on (default: mnist)")
    t.add_argument("--backbone", default=None,
                   help="registered backbone (default: {ConditionalVAE.backbone})")
    t.add_argument("--hidden-dims", type=_count, nargs="+", default=None,
                   help="hidden layer widths of the mlp backbone (default: 400)")
    t.add_argument("--backbone-kwargs", type=json.loads, default=None, metavar="JSON",
                   help='backbone settings as JSON, for example \'{"channels": [32, 64]}\' for conv')
    t.add_argument("--likelihood", default=None,
                   help="how the decoder scores images: a registered likelihood (see `cvae list`)"
                        " or auto (the default): bernoulli, the tutorial's BCE, for near-binary"
                        " images such as MNIST, gaussian for grey levels and other values")
    # No default of their own: unset, they are left out, and the library's signatures decide.
    t.add_argument("--latent-dim", type=_count, default=None,
                   help="latent size (default: {ConditionalVAE.latent_dim})")
    t.add_argument("--epochs", type=_natural, default=None, help="epochs (default: {Trainer.epochs})")
    t.add_argument("--batch-size", type=_count, default=None,
                   help="batch size (default: {Trainer.batch_size})")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: {optim.DEFAULT_LR})")
    t.add_argument("--lr-schedule", default=None, choices=["constant", "cosine"],
                   help="keep the learning rate, or lower it to 0 along a cosine (default:"
                        " {Trainer.lr_schedule})")
    t.add_argument("--beta", type=float, default=None,
                   help="weight of the KL term (default: {Trainer.beta})")
    t.add_argument("--warmup-epochs", type=float, default=None,
                   help="raise the KL weight from 0 to beta over this many epochs (default:"
                        " {Trainer.warmup_epochs})")
    t.add_argument("--free-bits", type=float, default=None, metavar="NATS",
                   help="nats per latent unit that the KL term does not charge for, against"
                        " posterior collapse (default: {Trainer.free_bits}, the ELBO)")
    t.add_argument("--max-grad-norm", type=float, default=None, metavar="NORM",
                   help="clip the gradients' total norm to NORM before each step (default: no clipping)")
    t.add_argument("--limit", type=_count, default=None,
                   help="train on N training images only, drawn from every class in proportion"
                        " with --seed (for quick runs)")
    t.add_argument("--labels-per-class", type=_count, default=None, metavar="N",
                   help="keep the labels of N training images of each class (drawn with --seed)"
                        " and train on the rest unlabelled: a semi-supervised model (M2) with a"
                        " classifier of its own (see the guide, Partly labelled data)")
    t.add_argument("--repeat-labelled", type=_count, default=1, metavar="R",
                   help="with unlabelled images (--labels-per-class or --unlabelled-folder), put"
                        " each labelled image into an epoch R times (default: 1)")
    t.add_argument("--classifier-weight", type=float, default=None,
                   help="with unlabelled images, the weight of the classifier's cross-entropy on"
                        " a labelled image (default: {ConditionalVAE.classifier_weight})")
    t.add_argument("--no-validation", action="store_true",
                   help="skip the loss on the test (or held-out) split after every epoch; it is"
                        " still measured once at the end")
    t.add_argument("--seed", type=_natural, default=0, help="random seed (default: 0)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    t.add_argument("-o", "--output", required=True, help="folder to write the model to")
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the loss with torch.compile (the same loss curve, faster epochs"
                        " after seconds of compiling), or not; by default, long runs are compiled"
                        " where torch can (a C++ compiler on a CPU; see the guide, Training)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--tensorboard", nargs="?", const="", default=None, metavar="DIR",
                   help="also write the loss curves for TensorBoard, to DIR (default:"
                        " OUTPUT/tensorboard); needs pip install \"torch-cvae[tensorboard]\"."
                        " Every epoch's figures go to OUTPUT/metrics.csv in any case")
    t.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in OUTPUT/checkpoints (written"
                        " after every epoch)")
    t.add_argument("--allow-changes", action="store_true",
                   help="with --resume, go on although the data or training settings differ"
                        " from the checkpoint's (they are refused otherwise)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run that OUTPUT holds (its model and checkpoints); without"
                        " it, a folder that holds a run is refused")

    e = sub.add_parser(
        "eval", formatter_class=_Formatter,
        help="measure a model on a labelled test set; print a table, write JSON",
        description="Measure a model on a test set: negative ELBO and its terms, the "
                    "importance-weighted bound, reconstruction error and, for MNIST (with the "
                    "bundled classifier), sample accuracy and Frechet distance.",
        epilog="example: cvae eval mnist-mlp -o mnist-mlp.json --plots plots/")
    e.set_defaults(func=run_eval)
    e.add_argument("model", help="a bundled model's name, a model folder, or a Hub repo id")
    _data(e, "the dataset whose test (or held-out) split to measure on (default: the one that"
             " cvae train recorded in the model's folder, else mnist)")
    e.add_argument("-k", type=_count, default=None, help="importance samples (default: {evaluate.k})")
    e.add_argument("--iwae-images", type=_count, default=None,
                   help="measure the importance-weighted bound on N test images, drawn from every"
                        " class in proportion with --seed, with its standard error (default:"
                        " {evaluate.iwae_images})")
    e.add_argument("--full", action="store_true",
                   help="measure the importance-weighted bound on every test image (k decoder"
                        " passes each: minutes on a CPU)")
    e.add_argument("--float32", action="store_true",
                   help="run the bound's network passes (and --bayes-k's) in float32 on a CPU with"
                        " native bfloat16 too: slower, the same figures on every machine (the"
                        " default moves the bound by thousandths of a nat)")
    e.add_argument("--samples-per-class", type=_count, default=None,
                   help="samples per class for the sample accuracy (default: {evaluate.n_per_class})")
    e.add_argument("--bayes-k", type=_count, default=None, metavar="K",
                   help="also classify the test images by Bayes' rule over the model's classes,"
                        " with K importance samples per class (K decoder passes per image and"
                        " class), and report its accuracy")
    e.add_argument("--limit", type=_count, default=None,
                   help="use N test images only, drawn from every class in proportion with --seed")
    e.add_argument("--seed", type=_natural, default=0, help="seed of every draw (default: 0)")
    e.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    e.add_argument("-o", "--output", default="eval.json", help="JSON file to write")
    e.add_argument("--plots", metavar="DIR", default=None,
                   help="also write samples.png, latent_space.png and loss_curves.png here"
                        " (needs matplotlib)")

    p = sub.add_parser(
        "push", help="upload a model folder to the Hugging Face Hub",
        description="Upload a model folder (from `cvae train` or save_pretrained) to a Hub repo:"
                    " config.json, model.safetensors, README.md and training_history.json. The"
                    " folder is loaded first, so a broken one is never uploaded. The token comes"
                    " from --token, HF_TOKEN or `hf auth login`; HF_ENDPOINT picks the server.",
        epilog="example: cvae push runs/mnist my-org/mnist-cvae")
    p.set_defaults(func=commands.run_push)
    p.add_argument("folder", help="the model folder")
    p.add_argument("repo_id", help="the Hub repository, org/name (created if missing)")
    p.add_argument("--branch", default=None, help="branch to push to (default: main)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload cvae model", help="the commit message")
    p.add_argument("--token", default=None, help="Hub token (default: the saved one)")

    x = sub.add_parser(
        "transfer", help="redraw images as every class, keeping their style (a PNG grid)",
        description="Encode images with their own labels and decode the same latent codes with"
                    " every class: one row per image, the input first, then one column per class.",
        epilog="example: cvae transfer --index 0 1 2 3 -o transfer.png")
    x.set_defaults(func=commands.run_transfer)
    _inputs(x, "test-set images to redraw (default: 0 1 2 3)", [0, 1, 2, 3])
    x.add_argument("--to", nargs="+", default=None,
                   help="the classes to draw them as (default: all)")
    x.add_argument("-o", "--output", default="transfer.png", help="PNG file to write")
    x.add_argument("--scale", type=_count, default=2, help="enlarge each pixel this many times")

    i = sub.add_parser(
        "interpolate", help="morph one image into another, or one class into another (PNG strip)",
        description="Decode points between the latent codes of two images (spherical or linear),"
                    " or, with --classes, keep one latent code and move its label from one class"
                    " to another. Writes a PNG strip, and an animated GIF with --gif.",
        epilog="example: cvae interpolate --index 0 1 --steps 10 -o strip.png --gif strip.gif")
    i.set_defaults(func=commands.run_interpolate)
    _inputs(i, "the two test-set images to morph between (default: 0 1)", [0, 1])
    i.add_argument("--classes", nargs=2, metavar=("FROM", "TO"), default=None,
                   help="morph between two classes at one latent code instead")
    i.add_argument("--steps", type=_count, default=10, help="images in the strip (default: 10)")
    i.add_argument("--method", choices=["slerp", "linear"], default="slerp",
                   help="path between the codes (default: slerp)")
    i.add_argument("--seed", type=_natural, default=None, help="seed of the code, with --classes")
    i.add_argument("-o", "--output", default="interpolation.png", help="PNG file to write")
    i.add_argument("--gif", default=None, help="also write an animated GIF here")
    i.add_argument("--scale", type=_count, default=2, help="enlarge each pixel this many times")

    ex = sub.add_parser(
        "export", help="write a model's decoder and encoder as ONNX files",
        description="Export a model for onnxruntime (Python, C++, the browser): decoder.onnx"
                    " (z and a one-hot label to an image), encoder.onnx (an image and its one-hot"
                    " label to mu and logvar) and cvae.json (shapes and class names). Needs"
                    ' pip install "torch-cvae[onnx]".',
        epilog="example: cvae export mnist-mlp -o mnist-onnx")
    ex.set_defaults(func=commands.run_export)
    ex.add_argument("model", nargs="?", default=None,
                    help="a bundled model's name, a model folder or a Hub repo id"
                         " (default: the default bundled model, mnist-conv)")
    ex.add_argument("-o", "--output", required=True, help="folder to write the files to")

    sub.add_parser("list", help="list bundled models, backbones, likelihoods and datasets",
                        description="List the bundled models and the registered backbones,"
                                    " likelihoods and datasets.").set_defaults(func=commands.run_list)
    return parser


def _data(parser: argparse.ArgumentParser, dataset_help: str) -> None:
    """The options that choose a dataset and how to read and split it (train and eval)."""
    parser.add_argument(
        "--dataset", default=None,
        help=dataset_help.replace("(default", "; a name (see `cvae list`), a folder with one"
                                  " sub-folder of images per class, or hf:ORG/NAME for a Hugging"
                                  " Face dataset (or hf:PATH for local Parquet or image folders)"
                                  " (default"))
    parser.add_argument("--data-root", default=None,
                        help="folder holding named datasets (default: $CVAE_DATA or"
                             " ~/.cache/cvae/data)")
    parser.add_argument("--image-size", type=_count, nargs=2, metavar=("H", "W"), default=None,
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
    parser.add_argument("--test-fraction", type=_fraction, default=None,
                        help="for data without a test split (folders, most Hugging Face"
                             " datasets): the share of every class held out (default: 0.2; for"
                             " cvae eval of a model that cvae train made on these data, the"
                             " share it was trained beside)")
    parser.add_argument("--split-seed", type=_natural, default=None,
                        help="the seed that draws the held-out images (default: 0; for cvae eval,"
                             " as --test-fraction)")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit of a Hugging Face dataset (default: main)")
    parser.add_argument("--image-column", default=None,
                        help="a Hugging Face dataset's image column (default: its Image feature)")
    parser.add_argument("--label-column", default=None,
                        help="its class-label column (default: its ClassLabel feature)")


def _inputs(parser: argparse.ArgumentParser, index_help: str, default: list[int]) -> None:
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
    parser.add_argument("--index", type=_natural, nargs="+", default=default, help=index_help)

