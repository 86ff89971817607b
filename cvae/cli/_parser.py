"""The `cvae` command: sample, train, evaluate and push models, and list what is bundled."""

from __future__ import annotations

import argparse

from cvae.cli import _commands as commands
from cvae.cli._augment import add_augment_parser
from cvae.cli._eval import run_eval
from cvae.cli._options import (
    Formatter,
    add_data_options,
    add_inputs,
    count,
    natural,
    output,
    positive,
)
from cvae.cli._train_parser import add_train_parser
from cvae.version import __version__

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `cvae` command."""
    parser = argparse.ArgumentParser(
        prog="cvae",
        description="Conditional VAEs: generate images of a chosen class, or train a model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "sample", formatter_class=Formatter, help="write a PNG grid of new images of one class",
        description="Generate new images of one class with a model and write them as a PNG grid.",
        epilog="example: cvae sample --digit 7 -n 16 -o sevens.png")
    s.set_defaults(func=commands.run_sample)
    # Classes stay text: the model reads a name first, an index only if no class has that name.
    # --label first: the usage line shows it, and a model of clothes has no digits.
    s.add_argument("--label", "--digit", dest="label", default=None, metavar="CLASS",
                   help="the class to draw: its name (as the model's class names spell it), or"
                        " its index if no class has that name (a digit for MNIST; --digit is the"
                        " same option); for a model with several conditions, its first"
                        " categorical one")
    s.add_argument("--condition", action="append", default=None, metavar="NAME=VALUE",
                   help="a condition of a model with several, by name: a class, a number, or"
                        " tags separated by commas (repeat it: --condition digit=7 --condition"
                        " thickness=2.5); a condition left out is unset, for a model trained with"
                        " condition dropout")
    s.add_argument("-n", type=count, default=16, help="how many images (default: 16)")
    s.add_argument("-o", "--output", type=output, default=None,
                   help="PNG file to write (default: samples-CLASS.png, named after the class)")
    s.add_argument("--model", default=None,
                   help="a bundled model's name, a folder from `cvae train`, or a Hub repo id"
                        " (default: the default bundled model, mnist-conv)")
    s.add_argument("--temperature", type=float, default=None,
                   help="scale of the prior noise (default: {sample.temperature})")
    s.add_argument("--sharpness", type=float, default=None,
                   help="multiply the decoder's logits by this: above 1, crisper images (default:"
                        " {sample.sharpness}; Bernoulli likelihoods)")
    s.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance: push images away from the model's unlabelled"
                        " ones, for a model trained with --condition-dropout (default:"
                        " {sample.guidance})")
    s.add_argument("--prior", choices=["standard", "fitted"], default=None,
                   help="draw the codes from N(0, I) ('standard') or from the Gaussians fitted to"
                        " the training codes ('fitted'; default: the model's own)")
    s.add_argument("--seed", type=natural, default=None, help="seed for reproducible images")
    s.add_argument("--nrow", type=count, default=None, help="images per row of the grid")
    s.add_argument("--scale", type=count, default=1, help="enlarge each pixel this many times")

    add_train_parser(sub)
    add_augment_parser(sub)

    e = sub.add_parser(
        "eval", formatter_class=Formatter,
        help="measure a model on a labelled test set; print a table, write JSON",
        description="Measure a model on a test set: negative ELBO and its terms, the "
                    "importance-weighted bound, reconstruction error and, for MNIST (with the "
                    "bundled classifier), sample accuracy and Frechet distance.",
        epilog="example: cvae eval mnist-mlp -o mnist-mlp.json --plots plots/")
    e.set_defaults(func=run_eval)
    e.add_argument("model", help="a bundled model's name, a model folder, or a Hub repo id")
    add_data_options(e, "the dataset whose test (or held-out) split to measure on (default: the one"
                        " that cvae train recorded in the model's folder, else mnist)")
    e.add_argument("-k", type=count, default=None, help="importance samples (default: {evaluate.k})")
    e.add_argument("--iwae-images", type=count, default=None,
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
    e.add_argument("--samples-per-class", type=count, default=None,
                   help="samples per class for the sample accuracy (default: {evaluate.n_per_class})")
    e.add_argument("--bayes-k", type=count, default=None, metavar="K",
                   help="also classify the test images by Bayes' rule over the model's classes,"
                        " with K importance samples per class (K decoder passes per image and"
                        " class), and report its accuracy")
    e.add_argument("--limit", type=count, default=None,
                   help="use N test images only, drawn from every class in proportion with --seed")
    e.add_argument("--seed", type=natural, default=0, help="seed of every draw (default: 0)")
    e.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    e.add_argument("-o", "--output", type=output, default="eval.json", help="JSON file to write")
    e.add_argument("--sweep", action="store_true",
                   help="instead of the figures above, measure the samples at every combination of"
                        " --temperature, --sharpness and --guidance (each a list; by default the"
                        " values that apply to the model), print the table, add it to the JSON and"
                        " draw the precision-recall curve beside it (OUTPUT-sweep.png)")
    e.add_argument("--temperature", type=float, nargs="+", default=None, metavar="T",
                   help="with --sweep: prior temperatures to try")
    e.add_argument("--sharpness", type=float, nargs="+", default=None, metavar="S",
                   help="with --sweep: sharpness values to try")
    e.add_argument("--guidance", type=float, nargs="+", default=None, metavar="W",
                   help="with --sweep: guidance weights to try")
    e.add_argument("--min-precision", type=positive, default=None, metavar="P",
                   help="with --sweep: the share of real images' precision that the recommended"
                        " setting must reach; of those that do, the most varied is recommended"
                        " (default: {sweep.min_precision})")
    e.add_argument("--recommend", action="store_true",
                   help="with --sweep: save the recommended setting into the model folder (its"
                        " config and card), where sample() then uses it")
    e.add_argument("--plots", metavar="DIR", type=output, default=None,
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
    add_inputs(x, "test-set images to redraw (default: 0 1 2 3)", [0, 1, 2, 3])
    x.add_argument("--to", nargs="+", default=None,
                   help="the classes to draw them as (default: all)")
    x.add_argument("-o", "--output", type=output, default="transfer.png", help="PNG file to write")
    x.add_argument("--scale", type=count, default=2, help="enlarge each pixel this many times")

    i = sub.add_parser(
        "interpolate", help="morph one image into another, or one class into another (PNG strip)",
        description="Decode points between the latent codes of two images (spherical or linear),"
                    " or, with --classes, keep one latent code and move its label from one class"
                    " to another. Writes a PNG strip, and an animated GIF with --gif.",
        epilog="example: cvae interpolate --index 0 1 --steps 10 -o strip.png --gif strip.gif")
    i.set_defaults(func=commands.run_interpolate)
    add_inputs(i, "the two test-set images to morph between (default: 0 1)", [0, 1])
    i.add_argument("--classes", nargs=2, metavar=("FROM", "TO"), default=None,
                   help="morph between two classes at one latent code instead")
    i.add_argument("--steps", type=count, default=10, help="images in the strip (default: 10)")
    i.add_argument("--method", choices=["slerp", "linear"], default="slerp",
                   help="path between the codes (default: slerp)")
    i.add_argument("--seed", type=natural, default=None, help="seed of the code, with --classes")
    i.add_argument("-o", "--output", type=output, default="interpolation.png", help="PNG file to write")
    i.add_argument("--gif", default=None, help="also write an animated GIF here")
    i.add_argument("--scale", type=count, default=2, help="enlarge each pixel this many times")

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
    ex.add_argument("-o", "--output", type=output, required=True, help="folder to write the files to")

    sub.add_parser("list", help="list bundled models, backbones, likelihoods and datasets",
                        description="List the bundled models and the registered backbones,"
                                    " likelihoods and datasets.").set_defaults(func=commands.run_list)
    return parser
