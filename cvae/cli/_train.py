"""`cvae train`: train on a data set, then save the model, its card and its run record."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

from cvae.cli._run_data import DEFAULT_DATASET, data_options, held_out_record

#: The folder in `cvae train`'s output that holds the run's checkpoints (what `--resume` reads).
CHECKPOINTS = "checkpoints"


#: Where `cvae train --overwrite` keeps the old run's checkpoints until the new run starts.
ASIDE = ".checkpoints-replaced"


def _described(train: Any, args: argparse.Namespace) -> tuple[str, dict[str, int]]:
    """How many images a run trained on, in words and as counts; each repeated image once."""
    from cvae._labels import UNLABELLED
    from cvae.data._labelled import labels_of

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

    from cvae._labels import UNLABELLED
    from cvae.data._labelled import labels_of
    from cvae.data._named import load_splits
    from cvae.data._splits import stratified_subset
    from cvae.hub._card import make_model_card
    from cvae.hub._layout import HISTORY_NAME, METRICS_NAME
    from cvae.models.conditional_vae import ConditionalVAE
    from cvae.models.likelihoods import get_likelihood
    from cvae.training.callbacks import CSVLogger, TensorBoardLogger
    from cvae.training.trainer import Trainer

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
        from cvae.data._semi import partly_labelled, with_unlabelled

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
    from cvae.hub._layout import CONFIG_NAME, METRICS_NAME, WEIGHTS_NAME
    from cvae.training.checkpoint import checkpoints

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
