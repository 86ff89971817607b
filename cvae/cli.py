"""The `cvae` command: sample, train, evaluate and push models, and list what is bundled."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily at run time: `cvae --help` stays fast
    import torch

    from .model import ConditionalVAE

__all__ = ["main", "build_parser"]


def _label(text: str) -> int | str:
    """A class given on the command line: an index if it is a number, else a name."""
    return int(text) if text.lstrip("-").isdigit() else text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `cvae` command."""
    parser = argparse.ArgumentParser(
        prog="cvae",
        description="Conditional VAEs: generate images of a chosen class, or train a model.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = commands.add_parser(
        "sample", help="write a PNG grid of new images of one class",
        description="Generate new images of one class with a model and write them as a PNG grid.",
        epilog="example: cvae sample --digit 7 -n 16 -o sevens.png")
    s.add_argument("--digit", "--label", dest="label", type=_label, required=True,
                   help="the class to draw: its index (a digit for MNIST) or its name")
    s.add_argument("-n", type=int, default=16, help="how many images (default: 16)")
    s.add_argument("-o", "--output", default="samples.png", help="PNG file to write")
    s.add_argument("--model", default=None,
                   help="a bundled model's name, a folder from `cvae train`, or a Hub repo id"
                        " (default: the default bundled model, mnist-conv)")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="scale of the prior noise (default: 1.0)")
    s.add_argument("--seed", type=int, default=None, help="seed for reproducible images")
    s.add_argument("--nrow", type=int, default=None, help="images per row of the grid")
    s.add_argument("--scale", type=int, default=1, help="enlarge each pixel this many times")

    t = commands.add_parser(
        "train", help="train a model and save it where from_pretrained can load it",
        description="Train a conditional VAE on a labelled dataset with the tutorial's recipe"
                    " (Adam, BCE + KLD) and save config.json, model.safetensors and a model card.",
        epilog="example: cvae train --dataset mnist --epochs 10 --output runs/mnist\n"
               "on 4 processes: torchrun --nproc_per_node 4 -m cvae.cli train -o runs/mnist",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--dataset", default="mnist",
                   help="a dataset name (see `cvae list`) or a folder with one sub-folder of images"
                        " per class (default: mnist)")
    t.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="resize the images of a folder to H x W")
    t.add_argument("--data-root", default=None,
                   help="folder holding the data (default: $CVAE_DATA or ~/.cache/cvae/data)")
    t.add_argument("--backbone", default="mlp", help="registered backbone (default: mlp)")
    t.add_argument("--hidden-dims", type=int, nargs="+", default=None,
                   help="hidden layer widths of the mlp backbone (default: 400)")
    t.add_argument("--backbone-kwargs", type=json.loads, default=None, metavar="JSON",
                   help='backbone settings as JSON, for example \'{"channels": [32, 64]}\' for conv')
    t.add_argument("--likelihood", default="bernoulli",
                   choices=["bernoulli", "continuous-bernoulli", "gaussian"],
                   help="how the decoder scores images (default: bernoulli, the tutorial's BCE)")
    t.add_argument("--latent-dim", type=int, default=20, help="latent size (default: 20)")
    t.add_argument("--epochs", type=int, default=10, help="epochs (default: 10)")
    t.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    t.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"],
                   help="keep the learning rate, or lower it to 0 along a cosine (default: constant)")
    t.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (default: 1)")
    t.add_argument("--warmup-epochs", type=float, default=0,
                   help="raise the KL weight from 0 to beta over this many epochs (default: 0)")
    t.add_argument("--limit", type=int, default=None,
                   help="train on the first N training images only (for quick runs)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    t.add_argument("-o", "--output", required=True, help="folder to write the model to")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in OUTPUT/checkpoints (written"
                        " after every epoch)")

    e = commands.add_parser(
        "eval", help="measure a model on a labelled test set; print a table, write JSON",
        description="Measure a model on a test set: negative ELBO and its terms, the "
                    "importance-weighted bound, reconstruction error and, for MNIST (with the "
                    "bundled classifier), sample accuracy and Frechet distance.",
        epilog="example: cvae eval mnist-mlp -o mnist-mlp.json --plots plots/")
    e.add_argument("model", help="a bundled model's name, a model folder, or a Hub repo id")
    e.add_argument("--dataset", default="mnist", help="test set (default: mnist)")
    e.add_argument("--data-root", default=None, help="folder holding the data")
    e.add_argument("-k", type=int, default=100, help="importance samples (default: 100)")
    e.add_argument("--samples-per-class", type=int, default=500,
                   help="samples per class for the sample accuracy (default: 500)")
    e.add_argument("--limit", type=int, default=None, help="use the first N test images only")
    e.add_argument("--seed", type=int, default=0, help="seed of every draw (default: 0)")
    e.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    e.add_argument("-o", "--output", default="eval.json", help="JSON file to write")
    e.add_argument("--plots", metavar="DIR", default=None,
                   help="also write samples.png, latent_space.png and loss_curves.png here"
                        " (needs matplotlib)")

    p = commands.add_parser(
        "push", help="upload a model folder to the Hugging Face Hub",
        description="Upload a model folder (from `cvae train` or save_pretrained) to a Hub repo:"
                    " config.json, model.safetensors, README.md and training_history.json. The"
                    " folder is loaded first, so a broken one is never uploaded. The token comes"
                    " from --token, HF_TOKEN or `hf auth login`; HF_ENDPOINT picks the server.",
        epilog="example: cvae push runs/mnist my-org/mnist-cvae")
    p.add_argument("folder", help="the model folder")
    p.add_argument("repo_id", help="the Hub repository, org/name (created if missing)")
    p.add_argument("--branch", default=None, help="branch to push to (default: main)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload cvae model", help="the commit message")
    p.add_argument("--token", default=None, help="Hub token (default: the saved one)")

    x = commands.add_parser(
        "transfer", help="redraw images as every class, keeping their style (a PNG grid)",
        description="Encode images with their own labels and decode the same latent codes with"
                    " every class: one row per image, the input first, then one column per class.",
        epilog="example: cvae transfer --index 0 1 2 3 -o transfer.png")
    _inputs(x, "test-set images to redraw (default: 0 1 2 3)", [0, 1, 2, 3])
    x.add_argument("--to", type=_label, nargs="+", default=None,
                   help="the classes to draw them as (default: all)")
    x.add_argument("-o", "--output", default="transfer.png", help="PNG file to write")
    x.add_argument("--scale", type=int, default=2, help="enlarge each pixel this many times")

    i = commands.add_parser(
        "interpolate", help="morph one image into another, or one class into another (PNG strip)",
        description="Decode points between the latent codes of two images (spherical or linear),"
                    " or, with --classes, keep one latent code and move its label from one class"
                    " to another. Writes a PNG strip, and an animated GIF with --gif.",
        epilog="example: cvae interpolate --index 0 1 --steps 10 -o strip.png --gif strip.gif")
    _inputs(i, "the two test-set images to morph between (default: 0 1)", [0, 1])
    i.add_argument("--classes", type=_label, nargs=2, metavar=("FROM", "TO"), default=None,
                   help="morph between two classes at one latent code instead")
    i.add_argument("--steps", type=int, default=10, help="images in the strip (default: 10)")
    i.add_argument("--method", choices=["slerp", "linear"], default="slerp",
                   help="path between the codes (default: slerp)")
    i.add_argument("--seed", type=int, default=None, help="seed of the code, with --classes")
    i.add_argument("-o", "--output", default="interpolation.png", help="PNG file to write")
    i.add_argument("--gif", default=None, help="also write an animated GIF here")
    i.add_argument("--scale", type=int, default=2, help="enlarge each pixel this many times")

    ex = commands.add_parser(
        "export", help="write a model's decoder and encoder as ONNX files",
        description="Export a model for onnxruntime (Python, C++, the browser): decoder.onnx"
                    " (z and a one-hot label to an image), encoder.onnx (an image and its one-hot"
                    " label to mu and logvar) and cvae.json (shapes and class names). Needs"
                    ' pip install "cvae[onnx]".',
        epilog="example: cvae export mnist-mlp -o mnist-onnx")
    ex.add_argument("model", nargs="?", default=None,
                    help="a bundled model's name, a model folder or a Hub repo id"
                         " (default: the default bundled model, mnist-conv)")
    ex.add_argument("-o", "--output", required=True, help="folder to write the files to")

    commands.add_parser("list", help="list bundled models, backbones and datasets")
    return parser


def _inputs(parser: argparse.ArgumentParser, index_help: str, default: list[int]) -> None:
    """The options that pick a model and input images, shared by transfer and interpolate."""
    parser.add_argument("--model", default=None,
                        help="a bundled model's name, a model folder or a Hub repo id"
                             " (default: the default bundled model, mnist-conv)")
    parser.add_argument("--images", nargs="+", default=None, help="image files to use")
    parser.add_argument("--labels", type=_label, nargs="+", default=None,
                        help="the classes of --images, one each")
    parser.add_argument("--dataset", default="mnist",
                        help="without --images: the dataset to take test images from")
    parser.add_argument("--data-root", default=None, help="folder holding the data")
    parser.add_argument("--index", type=int, nargs="+", default=default, help=index_help)


def _model(name: str | None) -> ConditionalVAE:
    from .generate import DEFAULT_MODEL, load_default_model
    from .model import ConditionalVAE

    if name is None or name == DEFAULT_MODEL:
        return load_default_model()
    return ConditionalVAE.from_pretrained(name)


def _images(args: argparse.Namespace, model: ConditionalVAE) -> tuple[torch.Tensor, Any]:
    """The input images and labels: files given with --images, else test-set images."""
    from .data import load_dataset, load_images

    if args.images:
        if not args.labels or len(args.labels) != len(args.images):
            raise ValueError(f"give one --labels value per image: {len(args.images)} images,"
                             f" {len(args.labels or [])} labels")
        return load_images(args.images, model.image_shape), args.labels
    test = load_dataset(args.dataset, args.data_root, train=False)
    bad = [i for i in args.index if not 0 <= i < len(test)]
    if bad:
        raise ValueError(f"--index {bad[0]} is outside the test set's 0..{len(test) - 1}")
    return test.images[args.index], test.labels[args.index]


def _transfer(args: argparse.Namespace) -> None:
    import torch

    from .generate import save_grid

    model = _model(args.model)
    images, labels = _images(args, model)
    out = model.transfer(images, labels, args.to)
    targets = model.labels_to_tensor(list(range(model.num_classes)) if args.to is None else args.to)
    names = [model.class_names[t] if model.class_names else str(int(t)) for t in targets]
    grid = torch.cat([images.to(out.device, out.dtype)[:, None], out], 1).flatten(0, 1)
    path = save_grid(grid, args.output, nrow=len(names) + 1, scale=args.scale,
                     column_titles=["input", *names])
    print(f"wrote {len(images)} images redrawn as {len(names)} classes to {path}")


def _interpolate(args: argparse.Namespace) -> None:
    import torch

    from .generate import save_gif, save_grid

    model = _model(args.model)
    if args.classes:
        generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
        strip = model.interpolate_classes(*args.classes, steps=args.steps, generator=generator)
        what = f"class {args.classes[0]!r} to class {args.classes[1]!r}"
    else:
        images, labels = _images(args, model)
        strip = model.interpolate(images, labels, args.steps, args.method)
        what = f"two images ({args.method})"
    written = [save_grid(strip, args.output, nrow=len(strip), scale=args.scale)]
    if args.gif:
        written.append(save_gif(strip, args.gif, scale=args.scale))
    print(f"wrote {len(strip)} steps from {what} to " + " and ".join(map(str, written)))


def _sample(args: argparse.Namespace) -> None:
    import torch

    from .generate import save_grid

    model = _model(args.model)
    generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
    images = model.sample(args.label, args.n, temperature=args.temperature, generator=generator)
    path = save_grid(images, args.output, nrow=args.nrow, scale=args.scale)
    print(f"wrote {len(images)} images of class {args.label!r} to {path}")


def _train(args: argparse.Namespace, argv: Sequence[str]) -> None:
    import torch

    from .card import make_model_card
    from .data import LabelledImages, load_dataset, load_image_folder
    from .model import ConditionalVAE
    from .trainer import Trainer

    if Path(args.dataset).is_dir():  # a folder of images: no test split
        train, test = load_image_folder(args.dataset, args.image_size), None
    else:
        train = load_dataset(args.dataset, args.data_root, train=True)
        test = load_dataset(args.dataset, args.data_root, train=False)
    if args.limit:
        train = LabelledImages(train.images[:args.limit], train.labels[:args.limit],
                               train.class_names)
    torch.manual_seed(args.seed)  # the model's initial weights
    backbone_kwargs = dict(args.backbone_kwargs or {})
    if args.hidden_dims:
        backbone_kwargs["hidden_dims"] = args.hidden_dims
    model = ConditionalVAE(tuple(train.images.shape[1:]), len(train.class_names),
                           args.latent_dim, args.backbone, backbone_kwargs, train.class_names,
                           args.likelihood)
    trainer = Trainer(model, train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      lr_schedule=args.lr_schedule, beta=args.beta,
                      warmup_epochs=args.warmup_epochs, device=args.device, seed=args.seed,
                      progress=False if args.no_progress else None,
                      checkpoint_dir=Path(args.output) / "checkpoints", resume=args.resume)
    history = trainer.train()
    if not trainer.is_main_process:
        return  # under torchrun, rank 0 alone evaluates and writes the model
    split = "test" if test is not None else "training"  # an image folder has no test split
    test_loss = trainer.evaluate(test if test is not None else train)
    print(f"====> {split.capitalize()} set loss: {test_loss['loss']:.4f}")
    out = Path(args.output)
    command = "cvae " + " ".join(shlex.quote(a) for a in argv)
    shown = sorted({1, *range(11, len(history) + 1, 10), len(history)} & set(
        range(1, len(history) + 1)))
    table = ["| epoch | training loss per image |", "| --- | --- |"]
    table += [f"| {e} | {history[e - 1]['loss']:.2f} |" for e in shown]
    card = make_model_card(
        model, name=str(out), dataset=Path(args.dataset).name.lower(),
        metrics={f"{Path(args.dataset).name} {split} loss (reconstruction + beta KL, nats per image)":
                 test_loss["loss"],
                 f"{split} reconstruction (-log p(x|z), {args.likelihood})":
                 test_loss["reconstruction"],
                 f"{split} KL": test_loss["kl"]},
        sections={"Training": f"Trained with `{command}` on {len(train)} images "
                              f"(seed {args.seed}, device {trainer.device}).\n\n"
                              + "\n".join(table)})
    model.save_pretrained(out, model_card=card)
    run = {"command": command, "device": str(trainer.device), "seed": args.seed,
           "minutes": round(sum(h["seconds"] for h in history) / 60, 2)}
    (out / "training_history.json").write_text(
        json.dumps({"run": run, "epochs": history}, indent=1) + "\n")
    print(f"saved the model to {out}; load it with ConditionalVAE.from_pretrained({str(out)!r})")


def _format_results(results: dict) -> str:
    """The metrics as an aligned two-column table."""
    rows = [("negative ELBO (nats/image)", f"{results['nelbo']:.2f}"),
            ("  reconstruction (BCE)", f"{results['reconstruction']:.2f}"),
            ("  KL", f"{results['kl']:.2f}"),
            (f"IWAE bound, k={results['k']} (nats/image)", f"{results['iwae']:.2f}"),
            ("reconstruction MSE (per pixel)", f"{results['reconstruction_mse']:.5f}")]
    if "sample_accuracy" in results:
        per_class = results["sample_accuracy_per_class"]
        rows += [("samples classified as asked", f"{results['sample_accuracy']:.2%}"),
                 ("  per class", " ".join(f"{a:.1%}" for a in per_class)),
                 ("Frechet distance (classifier features)", f"{results['frechet_distance']:.2f}"),
                 ("  real against real (the floor)", f"{results['frechet_distance_real']:.2f}")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _eval(args: argparse.Namespace) -> None:
    from .classifier import load_classifier
    from .data import LabelledImages, load_dataset
    from .hub import local_folder
    from .metrics import evaluate
    from .model import ConditionalVAE

    device = args.device or "cpu"
    model = ConditionalVAE.from_pretrained(args.model, map_location=device)
    test = load_dataset(args.dataset, args.data_root, train=False)
    if args.limit:
        test = LabelledImages(test.images[:args.limit], test.labels[:args.limit], test.class_names)
    classifier = load_classifier(device=device) if args.dataset.lower() == "mnist" else None
    results = evaluate(model, test, k=args.k, classifier=classifier,
                       n_per_class=args.samples_per_class, seed=args.seed)
    print(f"{args.model} on the {args.dataset} test set ({len(test)} images, seed {args.seed})")
    print(_format_results(results))
    record = {"model": str(args.model), "dataset": args.dataset, "test_images": len(test),
              "seed": args.seed, "samples_per_class": args.samples_per_class, **results}
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")
    if args.plots:
        from .plots import plot_latent_space, plot_loss_curves, plot_samples

        out = Path(args.plots)
        written = [plot_samples(model, out / "samples.png", seed=args.seed),
                   plot_latent_space(model, test, out / "latent_space.png")]
        folder = local_folder(args.model)
        if folder is not None and (folder / "training_history.json").is_file():
            history = json.loads((folder / "training_history.json").read_text())["epochs"]
            written.append(plot_loss_curves(history, out / "loss_curves.png"))
        print("wrote " + ", ".join(str(p) for p in written))


def _push(args: argparse.Namespace) -> None:
    from .hub import push_folder

    url = push_folder(args.folder, args.repo_id, commit_message=args.message,
                      private=args.private or None, token=args.token, branch=args.branch)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")


def _list() -> None:
    from .backbones import list_backbones
    from .data import list_datasets
    from .hub import list_pretrained

    print("bundled models:", ", ".join(list_pretrained()))
    print("backbones:     ", ", ".join(list_backbones()))
    print("datasets:      ", ", ".join(list_datasets()))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `cvae` command with `argv` (default: `sys.argv[1:]`); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sample":
            _sample(args)
        elif args.command == "train":
            _train(args, argv)
        elif args.command == "eval":
            _eval(args)
        elif args.command == "transfer":
            _transfer(args)
        elif args.command == "interpolate":
            _interpolate(args)
        elif args.command == "export":
            from .export import export_folder

            written = export_folder(_model(args.model), args.output)
            print("wrote " + ", ".join(str(p) for p in written))
        elif args.command == "push":
            _push(args)
        else:
            _list()
    except (ValueError, TypeError, KeyError, OSError, ImportError) as err:
        # Bad input gets its message, not a traceback.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"cvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
