"""What each `cvae` command does; `cvae.cli` parses the command line and calls these.

Each takes the parsed arguments. Everything heavy (torch, the model, the Hub client) is
imported inside the functions, so that `cvae --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .layout import CONFIG_NAME, HISTORY_NAME, METRICS_NAME, WEIGHTS_NAME
from .run_data import DEFAULT_DATASET, as_trained, data_options, held_out_record, registered

#: The folder in `cvae train`'s output that holds the run's checkpoints (what `--resume` reads).
CHECKPOINTS = "checkpoints"
#: Where `cvae train --overwrite` keeps the old run's checkpoints until the new run starts.
ASIDE = ".checkpoints-replaced"

if TYPE_CHECKING:
    import torch

    from .model import ConditionalVAE

__all__ = ["load_model", "run_sample", "run_train", "run_eval", "run_transfer", "run_interpolate",
           "run_export", "run_push", "run_list"]


def load_model(name: str | None) -> ConditionalVAE:
    """A model by name: the default bundled one (loaded once), a folder or a Hub repo id."""
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
    # A folder or Hugging Face dataset is read in the model's shape, as the files above are.
    shape = {} if registered(args.dataset) else {"channels": model.image_shape[0],
                                                  "image_size": model.image_shape[1:]}
    test = load_dataset(args.dataset, args.data_root, train=False, **shape)
    model.match_classes(test.class_names, "input")  # the same index must mean the same class
    bad = [i for i in args.index if not 0 <= i < len(test)]
    if bad:
        raise ValueError(f"--index {bad[0]} is outside the {test.split} split's 0..{len(test) - 1}")
    return test.images[args.index], test.labels[args.index]


def run_transfer(args: argparse.Namespace) -> None:
    """`cvae transfer`: redraw images as other classes, keeping their style."""
    import torch

    from .images import save_grid

    model = load_model(args.model)
    images, labels = _images(args, model)
    out = model.transfer(images, labels, args.to)
    targets = model._labels_to_tensor(list(range(model.num_classes)) if args.to is None else args.to)
    names = [model.class_names[t] if model.class_names else str(int(t)) for t in targets]
    grid = torch.cat([images.to(out.device, out.dtype)[:, None], out], 1).flatten(0, 1)
    path = save_grid(grid, args.output, nrow=len(names) + 1, scale=args.scale,
                     column_titles=["input", *names])
    print(f"wrote {len(images)} images redrawn as {len(names)} classes to {path}")


def run_interpolate(args: argparse.Namespace) -> None:
    """`cvae interpolate`: a strip between two images, or between two classes."""
    import torch

    from .images import save_gif, save_grid
    from .labels import describe

    model = load_model(args.model)
    if args.classes:
        generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
        strip = model.interpolate_classes(*args.classes, steps=args.steps, generator=generator)
        start, end = (describe(int(c), model.class_names) for c in model._labels_to_tensor(args.classes))
        what = f"{start} to {end}"
    else:
        images, labels = _images(args, model)
        strip = model.interpolate(images, labels, args.steps, args.method)
        what = f"two images ({args.method})"
    written = [save_grid(strip, args.output, nrow=len(strip), scale=args.scale)]
    if args.gif:
        written.append(save_gif(strip, args.gif, scale=args.scale))
    print(f"wrote {len(strip)} steps from {what} to " + " and ".join(map(str, written)))


def run_sample(args: argparse.Namespace) -> None:
    """`cvae sample`: a grid of new images of one class, named in the message and the file."""
    import torch

    from .images import save_grid
    from .labels import describe

    model = load_model(args.model)
    index = int(model._labels_to_tensor(args.label)[0])  # a name wins over an index
    what = describe(index, model.class_names)
    name = model.class_names[index] if model.class_names else str(index)
    output = args.output or "samples-" + (re.sub(r"[^\w.-]+", "-", name).strip("-.") or str(index)) + ".png"
    generator = None if args.seed is None else torch.Generator().manual_seed(args.seed)
    images = model.sample(index, args.n, temperature=args.temperature, generator=generator)
    path = save_grid(images, output, nrow=args.nrow, scale=args.scale,
                     description=f"{len(images)} samples of {what} from {args.model or 'the default model'}")
    print(f"wrote {len(images)} images of {what} to {path}")


def _described(train: Any, args: argparse.Namespace) -> tuple[str, dict[str, int]]:
    """How many images a run trained on, in words and as counts; each repeated image once."""
    from .labelled import UNLABELLED, labels_of

    labels = labels_of(train)
    unlabelled = int((labels == UNLABELLED).sum())
    if not unlabelled:
        return f"{len(labels)} images", {"images": len(labels)}
    labelled = (len(labels) - unlabelled) // args.repeat_labelled
    repeats = f", each {args.repeat_labelled} times an epoch" if args.repeat_labelled > 1 else ""
    counts = {"images": labelled + unlabelled, "labelled": labelled, "unlabelled": unlabelled}
    return f"{counts['images']} images ({labelled} labelled{repeats}, {unlabelled} unlabelled)", counts


def run_train(args: argparse.Namespace) -> None:
    """`cvae train`: train on a dataset, then save the model, its card and its history."""
    import torch

    from .callbacks import CSVLogger, TensorBoardLogger
    from .card import make_model_card
    from .data import load_splits
    from .labelled import UNLABELLED, labels_of
    from .likelihoods import get_likelihood
    from .model import ConditionalVAE
    from .splits import stratified_subset
    from .trainer import Trainer

    out = Path(args.output)
    args.dataset = args.dataset or DEFAULT_DATASET
    _check_run_folder(out, args.resume, args.overwrite)  # before any data are read
    if args.likelihood != "auto":
        get_likelihood(args.likelihood)  # an unknown name is refused before the data are read
    callbacks = [CSVLogger(out / METRICS_NAME, overwrite=args.overwrite)]
    if args.tensorboard is not None:  # checked now: a missing package is named before training
        callbacks.append(TensorBoardLogger(args.tensorboard or out / "tensorboard"))
    options = data_options(args)
    train, test = load_splits(args.dataset, args.data_root, **options)
    if args.limit is not None:
        train = stratified_subset(train, args.limit, args.seed)
    semi = {}
    unlabelled = bool((labels_of(train) == UNLABELLED).any())  # a folder's --unlabelled-folder
    if args.labels_per_class or unlabelled:
        from .semi import partly_labelled, with_unlabelled

        train = (partly_labelled(train, args.labels_per_class, args.seed, args.repeat_labelled)
                 if args.labels_per_class else with_unlabelled(train, repeat=args.repeat_labelled))
        semi = {"semi_supervised": True, "classifier_weight": args.classifier_weight}
    torch.manual_seed(args.seed)  # the model's initial weights
    backbone_kwargs = dict(args.backbone_kwargs or {})
    if args.hidden_dims:
        backbone_kwargs["hidden_dims"] = args.hidden_dims
    model = ConditionalVAE.from_data(train, latent_dim=args.latent_dim, backbone=args.backbone,
                                     backbone_kwargs=backbone_kwargs, likelihood=args.likelihood,
                                     **semi)
    # --overwrite: the old run's checkpoints are set aside while the Trainer checks the new
    # settings (it refuses a folder that holds checkpoints), and put back if it refuses them.
    kept, aside = out / CHECKPOINTS, out / ASIDE
    if args.overwrite and kept.is_dir():
        shutil.rmtree(aside, ignore_errors=True)
        kept.rename(aside)
    try:
        trainer = Trainer(model, train, None if args.no_validation else test, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
                          beta=args.beta, warmup_epochs=args.warmup_epochs, free_bits=args.free_bits,
                          max_grad_norm=args.max_grad_norm, device=args.device, seed=args.seed,
                          progress=False if args.no_progress else None, callbacks=callbacks,
                          compile="auto" if args.compile is None else args.compile,
                          checkpoint_dir=kept, resume=args.resume,
                          allow_changes=args.allow_changes)
    except BaseException:
        if aside.is_dir():
            shutil.rmtree(kept, ignore_errors=True)
            aside.rename(kept)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    history = trainer.train()
    if not trainer.is_main_process:
        return  # under torchrun, rank 0 alone evaluates and writes the model
    split = str(test.split).split(" ")[0]  # the one-word name: test, held-out or train
    measured = trainer.evaluate(test)
    print(f"====> {split.capitalize()} set loss: {measured['loss']:.4f}"
          f" ({len(test)} images: {test.split})")
    command = "cvae " + " ".join(shlex.quote(a) for a in args.argv)
    shown = sorted({1, *range(11, len(history) + 1, 10), len(history)} & set(
        range(1, len(history) + 1)))
    table = ["| epoch | training loss per image |", "| --- | --- |"]
    table += [f"| {e} | {history[e - 1]['loss']:.2f} |" for e in shown]
    name = Path(args.dataset).name
    described, counts = _described(train, args)
    card = make_model_card(
        model, name=str(out), dataset=name.lower(), split=split,
        metrics={f"{name} {split} loss: negative ELBO (nats per image)": measured["nelbo"],
                 f"{split} reconstruction ({model.likelihood.label})": measured["reconstruction"],
                 f"{split} KL": measured["kl"]},
        sections={"Training": f"Trained with `{command}` on {described} ({train.split};"
                              f" seed {args.seed}, device {trainer.device}). Measured on"
                              f" {len(test)} images that it never trained on ({test.split}).\n\n"
                              + "\n".join(table)})
    run = {"command": command, "device": str(trainer.device), "compiled": trainer.compiled, "seed": args.seed,
           "train": {"split": train.split, **counts},  # repeated labelled images once
           "test": {"split": test.split, "images": len(test)},
           # What cvae eval needs to measure on the same held-out images.
           "held_out": held_out_record(args, options),
           "minutes": round(sum(h["seconds"] for h in history) / 60, 2)}
    model.save_pretrained(out, model_card=card, extra_files={
        HISTORY_NAME: json.dumps({"run": run, "epochs": history}, indent=1) + "\n"})
    print(f"saved the model to {out}; load it with ConditionalVAE.from_pretrained({str(out)!r})")


def _check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """A run folder belongs to one run: refuse one that holds another, unless asked."""
    from .checkpoint import checkpoints

    if (out / ASIDE).is_dir() and not (out / CHECKPOINTS).exists():  # set aside by a run killed then
        (out / ASIDE).rename(out / CHECKPOINTS)
    if resume and overwrite:
        raise ValueError("--resume goes on with the run in the folder and --overwrite replaces"
                         " it: give one of them")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; -o names the folder to write the model to")
    found = [name for name in (CONFIG_NAME, WEIGHTS_NAME, METRICS_NAME) if (out / name).exists()]
    found += [f"checkpoints up to {c[-1].name}" for c in [checkpoints(out / CHECKPOINTS)] if c]
    if found and not (resume or overwrite):
        raise FileExistsError(f"{out} holds an earlier run ({', '.join(found)}); pass --resume to"
                              f" go on with it, --overwrite to replace it, or choose another folder")


def run_eval(args: argparse.Namespace) -> None:
    """`cvae eval`: every metric of `cvae.metrics` on a test set, printed and as JSON."""
    from .classifier import load_classifier
    from .data import get_dataset, load_dataset
    from .devices import default_device
    from .files import write_text
    from .hub import training_record
    from .metrics import evaluate
    from .model import ConditionalVAE
    from .report import format_results
    from .splits import stratified_subset

    device = args.device or default_device()
    model = ConditionalVAE.from_pretrained(args.model, map_location=device)
    trained = training_record(args.model)  # read once: the split settings, the loss curves
    as_trained(args, trained)
    options = data_options(args)
    dataset = get_dataset(args.dataset, options.pop("revision", None))  # opened once
    test = load_dataset(dataset, args.data_root, train=False, **options)
    model.match_classes(test.class_names, "test")  # the same index must mean the same class
    if args.limit:
        test = stratified_subset(test, args.limit, args.seed)
    classifier = (load_classifier(dataset.classifier, device=device) if dataset.classifier
                  else None)
    precision = False if args.float32 else "auto"  # of the bound's network passes, and Bayes'
    results = evaluate(model, test, k=args.k, iwae_images=None if args.full else args.iwae_images,
                       classifier=classifier, n_per_class=args.samples_per_class, seed=args.seed,
                       mixed_precision=precision)
    if model.classifier is not None:  # a semi-supervised model's own q(y | x)
        from .semi import classifier_accuracy

        results["classifier_accuracy"] = classifier_accuracy(model, test)
    if args.bayes_k:
        import torch

        from .bayes import bayes_accuracy

        start = time.perf_counter()
        bayes = bayes_accuracy(model, test, k=args.bayes_k,
                               generator=torch.Generator(model.device).manual_seed(args.seed),
                               mixed_precision=precision)
        results.update({"bayes_k": args.bayes_k, "bayes_accuracy": bayes["accuracy"],
                        "bayes_accuracy_per_class": bayes["accuracy_per_class"],
                        "bayes_seconds": time.perf_counter() - start})
    print(f"{args.model} on {len(test)} images of {args.dataset}, {test.split} split"
          f" (seed {args.seed})")
    print(format_results(results, model.likelihood.label))
    record = {"model": str(args.model), "dataset": args.dataset, "split": test.split,
              "test_images": len(test), "seed": args.seed,
              "samples_per_class": args.samples_per_class, **results}
    write_text(args.output, json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")
    if args.plots:
        from .plots import plot_latent_space, plot_loss_curves, plot_samples

        out = Path(args.plots)
        written = [plot_samples(model, out / "samples.png", seed=args.seed),
                   plot_latent_space(model, test, out / "latent_space.png")]
        if trained.get("epochs"):
            written.append(plot_loss_curves(trained["epochs"], out / "loss_curves.png"))
        print("wrote " + ", ".join(str(p) for p in written))


def run_export(args: argparse.Namespace) -> None:
    """`cvae export`: the decoder and encoder as ONNX files."""
    from .export import export_folder

    written = export_folder(load_model(args.model), args.output)
    print("wrote " + ", ".join(str(p) for p in written))


def run_push(args: argparse.Namespace) -> None:
    """`cvae push`: upload a model folder to the Hugging Face Hub."""
    from .hub import push_folder
    from .model import ConditionalVAE

    url = push_folder(args.folder, args.repo_id, model_class=ConditionalVAE,
                      commit_message=args.message, private=args.private or None,
                      token=args.token, branch=args.branch)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")


def run_list(args: argparse.Namespace) -> None:
    """`cvae list`: the bundled models and the registered parts."""
    from .backbones import list_backbones
    from .data import list_datasets
    from .hub import list_pretrained
    from .likelihoods import list_likelihoods

    print("bundled models:", ", ".join(list_pretrained()))
    print("backbones:     ", ", ".join(list_backbones()))
    print("likelihoods:   ", ", ".join(list_likelihoods()))
    print("datasets:      ", ", ".join(list_datasets()))
