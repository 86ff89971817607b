"""`cvae train`: train on a data set, then save the model, its card and its run record.

The command passes on what it was given and nothing else: options left unset are left
out, so the library's own defaults decide (`Trainer`, `ConditionalVAE.from_data`).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
from pathlib import Path
from typing import Any

from cvae.cli._run_data import DEFAULT_DATASET, data_options, held_out_record

#: The folder in `cvae train`'s output that holds the run's checkpoints (what `--resume` reads).
CHECKPOINTS = "checkpoints"
#: Where `cvae train --overwrite` keeps the old run's checkpoints until the new run starts.
ASIDE = ".checkpoints-replaced"

#: `cvae train`'s options that are `Trainer` keywords of the same name.
TRAINER_OPTIONS = ("epochs", "batch_size", "lr", "lr_schedule", "beta", "warmup_epochs", "free_bits",
                   "max_grad_norm", "min_steps", "max_steps", "max_minutes", "device", "seed", "compile",
                   "resume", "allow_changes")
#: Its options that are `EarlyStopping` keywords of the same name.
STOPPING_OPTIONS = ("patience", "min_delta")
#: Its options that are `ConditionalVAE.from_data` keywords of the same name.
MODEL_OPTIONS = ("latent_dim", "backbone", "likelihood", "condition_dropout", "unset", "prior",
                 "independence", "centre_codes")


def given(args: argparse.Namespace, names: tuple[str, ...] | dict[str, str]) -> dict[str, Any]:
    """The options among `names` that the command line set: the library decides the rest.

    `names` are options that are keywords of the same name, or a mapping of options to the
    keywords they are passed as (`{"samples_per_class": "n_per_class"}`).
    """
    keywords = names if isinstance(names, dict) else {name: name for name in names}
    return {keyword: getattr(args, option) for option, keyword in keywords.items()
            if getattr(args, option) is not None}


def run_train(args: argparse.Namespace) -> None:
    """`cvae train`: train on a dataset, then save the model, its card and its run record."""
    from cvae.training import Trainer

    out = Path(args.output)
    args.dataset = args.dataset or DEFAULT_DATASET
    _check_run_folder(out, args.resume, args.overwrite)  # before any data are read
    if args.likelihood not in (None, "auto"):
        from cvae.models import get_likelihood

        get_likelihood(args.likelihood)  # an unknown name is refused before the data are read
    callbacks = _callbacks(args, out)
    stopping = _early_stopping(args)
    options = data_options(args)
    train, val, test, semi_supervised = _data(args, options, stopping)
    model = _model(args, train, semi_supervised)
    trainer = _with_checkpoints_aside(args, out, lambda kept: Trainer(
        model, train, val, callbacks=callbacks, checkpoint_dir=kept, early_stopping=stopping,
        progress=False if args.no_progress else None, **given(args, TRAINER_OPTIONS)))
    trainer.train()
    if trainer.is_main_process:  # under torchrun, rank 0 alone evaluates and writes the model
        _save(args, out, trainer, train, test, options)


def _early_stopping(args: argparse.Namespace) -> Any:
    """`EarlyStopping` as the options say: on without `--epochs`, or with `--patience`/`--min-delta`.

    Made before any data are read, so that a bad setting is refused first.
    """
    from cvae.training import EarlyStopping

    settings = given(args, STOPPING_OPTIONS)
    if args.epochs is not None and not settings:
        if args.validation_fraction is not None:
            raise ValueError("--validation-fraction sets the images held out for early stopping,"
                             " which --epochs turns off; add --patience to stop early, or drop it")
        return False
    if args.no_validation:
        raise ValueError("early stopping needs held-out images, and --no-validation holds none out:"
                         " give --epochs (without --patience or --min-delta), or drop --no-validation")
    return EarlyStopping(**settings)


def _validation(args: argparse.Namespace, train: Any, test: Any, stopping: Any) -> tuple[Any, Any]:
    """The images to train on and to validate on: with early stopping, a share of the training ones.

    So that the test (or held-out) images, which the model card's figures are measured on,
    never choose the weights. Without early stopping, the test split is the validation data,
    as in 0.1.0 (or none, with `--no-validation`).
    """
    from cvae.data import VALIDATION_FRACTION, train_test_split

    if not stopping:
        return train, None if args.no_validation else test
    fraction = args.validation_fraction or VALIDATION_FRACTION
    whole = train.split
    train, val = train_test_split(train, fraction, args.seed)
    train.split = f"{whole}, less {fraction:.0%} of each class held out for validation (seed {args.seed})"
    val.split = f"validation ({fraction:.0%} of each class of the training images, seed {args.seed})"
    return train, val


def _callbacks(args: argparse.Namespace, out: Path) -> list[Any]:
    """The run's logs: `metrics.csv` always, TensorBoard's when asked.

    Made now, so that a missing package is named before any data are read.
    """
    from cvae.hub._layout import METRICS_NAME
    from cvae.training import CSVLogger, TensorBoardLogger

    callbacks = [CSVLogger(out / METRICS_NAME, overwrite=args.overwrite)]
    if args.tensorboard is not None:
        callbacks.append(TensorBoardLogger(args.tensorboard or out / "tensorboard"))
    return callbacks


def _data(args: argparse.Namespace, options: dict[str, Any], stopping: Any) -> tuple[Any, Any, Any, bool]:
    """The training, validation and test (or held-out) data, and whether partly labelled.

    Partly labelled: `--labels-per-class`, or a folder's `--unlabelled-folder`.
    """
    from cvae._classes import UNLABELLED
    from cvae.data import load_splits, partly_labelled, stratified_subset, with_unlabelled
    from cvae.data._labelled import labels_of

    train, test = load_splits(args.dataset, args.data_root, **options)
    if args.limit is not None:
        train = stratified_subset(train, args.limit, args.seed)
    train, val = _validation(args, train, test, stopping)
    if args.labels_per_class:
        return partly_labelled(train, args.labels_per_class, args.seed, args.repeat_labelled), val, test, True
    if bool((labels_of(train) == UNLABELLED).any()):
        return with_unlabelled(train, repeat=args.repeat_labelled), val, test, True
    return train, val, test, False


def _model(args: argparse.Namespace, train: Any, semi_supervised: bool) -> Any:
    """A new model shaped for the data, with the settings the command line gave."""
    import torch

    from cvae.models import ConditionalVAE

    settings = given(args, MODEL_OPTIONS)
    backbone_kwargs = dict(args.backbone_kwargs or {})
    if args.hidden_dims:  # the mlp's setting: the mlp, unless --backbone names another
        backbone_kwargs["hidden_dims"] = args.hidden_dims
        settings.setdefault("backbone", "mlp")
    if backbone_kwargs:
        settings["backbone_kwargs"] = backbone_kwargs
    if semi_supervised:
        settings.update(semi_supervised=True, **given(args, ("classifier_weight",)))
    torch.manual_seed(args.seed)  # the model's initial weights
    return ConditionalVAE.from_data(train, **settings)


def _with_checkpoints_aside(args: argparse.Namespace, out: Path, build: Any) -> Any:
    """`build(checkpoints)`: the Trainer, with the old run's checkpoints safe.

    With `--overwrite`, the old run's checkpoints are set aside while the Trainer checks the
    new settings (it refuses a folder that holds checkpoints), and put back if it refuses them.
    """
    kept, aside = out / CHECKPOINTS, out / ASIDE
    if args.overwrite and kept.is_dir():
        shutil.rmtree(aside, ignore_errors=True)
        kept.rename(aside)
    try:
        trainer = build(kept)
    except BaseException:
        if aside.is_dir():
            shutil.rmtree(kept, ignore_errors=True)
            aside.rename(kept)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return trainer


def _save(args: argparse.Namespace, out: Path, trainer: Any, train: Any, test: Any,
          options: dict[str, Any]) -> None:
    """Measure on the test (or held-out) data, then save the model, its card and its record."""
    from cvae.hub._layout import HISTORY_NAME
    from cvae.training.record import RunRecord

    split = str(test.split).split(" ")[0]  # the one-word name: test, held-out or train
    chosen = _choose_guidance(trainer, train)
    measured = trainer.evaluate(test)
    print(f"====> {split.capitalize()} set loss: {measured['loss']:.4f} ({len(test)} images: {test.split})")
    described, counts = _described(train, args)
    record = RunRecord.of(trainer, command="cvae " + " ".join(shlex.quote(a) for a in args.argv),
                          settings=given(args, TRAINER_OPTIONS[:11]),
                          data={"train": {"split": train.split, **counts},  # repeated images once
                                "test": {"split": test.split, "images": len(test)},
                                "held_out": held_out_record(args, options)})
    if not trainer.model.conditions.is_single:  # each part measured, for the card
        from cvae.cli._eval_conditions import condition_figures, format_conditions

        figures = condition_figures(trainer.model, train, test, trainer.seed)
        measured["conditions"] = format_conditions(figures)
        print(measured["conditions"])
    trainer.model.save_pretrained(out, model_card=_card(args, out, trainer, record, measured, described,
                                                        test, split, chosen),
                                  extra_files={HISTORY_NAME: record.to_json()})
    print(f"saved the model to {out}; load it with ConditionalVAE.from_pretrained({str(out)!r})")


def _choose_guidance(trainer: Any, train: Any) -> str:
    """For a model that `from_data` made to be guided, the weight chosen from its training images.

    Set as the one `sample()` uses; said in a line, which the card repeats ("" for other models).
    """
    model = trainer.model
    if model.sampling.get("guidance") is None or not model.conditions.is_single:
        return ""
    from cvae.evaluation import choose_guidance

    found = choose_guidance(model, train, seed=trainer.seed)
    model.set_sampling({**model.sampling, "guidance": found["chosen"]})
    tried = ", ".join(f"{row['guidance']:g}: {row['share']:.2f} ({row['worst_class']}"
                      f" {row['worst_share']:.2f})" for row in found["weights"])
    line = (f"Sampled with guidance {found['chosen']:g}, chosen from the training images: samples at each"
            f" weight recognised by a classifier of four fifths of them, as a share of its accuracy on the"
            f" other fifth, the mean over classes (the worst class): {tried}.")
    print(line)
    return line


def _card(args: argparse.Namespace, out: Path, trainer: Any, record: Any, measured: dict[str, Any],
          described: str, test: Any, split: str, chosen: str) -> str:
    """The model card: the figures measured, and how the model was trained, with its loss curve."""
    from cvae.hub import make_model_card

    history, model = record.epochs, trainer.model
    shown = sorted({1, *range(11, len(history) + 1, 10), len(history)} & set(range(1, len(history) + 1))
                   | ({trainer.kept_epoch} if trainer.kept_epoch else set()))
    validated = bool(history) and "val_loss" in history[-1]
    table = [f"| epoch | training loss per image |{' validation loss |' if validated else ''}",
             f"| --- | --- |{' --- |' if validated else ''}"]
    table += [f"| {e}{' (kept)' if e == trainer.kept_epoch else ''} | {history[e - 1]['loss']:.2f} |"
              + (f" {history[e - 1]['val_loss']:.2f} |" if validated else "") for e in shown]
    kept = (f" The weights are those of epoch {trainer.kept_epoch}, the best on the validation images;"
            if trainer.kept_epoch else "")
    verdict = f" Verdict: {trainer.verdict}." if trainer.verdict else ""
    ending = (f"Training stopped after epoch {len(history)} ({trainer.global_step:,} steps, batch"
              f" {trainer.batch_size}): {trainer.stop_reason}.{kept}{verdict}")
    name = Path(args.dataset).name
    return make_model_card(
        model, name=str(out), dataset=name.lower(), split=split,
        metrics={f"{name} {split} loss: negative ELBO (nats per image)": measured["nelbo"],
                 f"{split} reconstruction ({model.likelihood.label})": measured["reconstruction"],
                 f"{split} KL": measured["kl"]},
        sections={"Training": f"Trained with `{record.command}` on {described}"
                              f" ({record.data['train']['split']}; seed {trainer.seed}, device"
                              f" {trainer.device}). Measured on {len(test)} images that it never"
                              f" trained on ({test.split}).\n\n{ending}\n\n" + "\n".join(table)
                              + (f"\n\n{chosen}" if chosen else ""),
                  **({"Conditions": f"By `cvae eval`'s measures:\n\n```\n{measured['conditions']}\n```"}
                     if "conditions" in measured else {})})


def _described(train: Any, args: argparse.Namespace) -> tuple[str, dict[str, int]]:
    """How many images a run trained on, in words and as counts; each repeated image once."""
    from cvae._classes import UNLABELLED
    from cvae.data._labelled import labels_of

    labels = labels_of(train)
    unlabelled = int((labels == UNLABELLED).sum())
    if not unlabelled:
        return f"{len(labels)} images", {"images": len(labels)}
    labelled = (len(labels) - unlabelled) // args.repeat_labelled
    repeats = f", each {args.repeat_labelled} times an epoch" if args.repeat_labelled > 1 else ""
    counts = {"images": labelled + unlabelled, "labelled": labelled, "unlabelled": unlabelled}
    return f"{counts['images']} images ({labelled} labelled{repeats}, {unlabelled} unlabelled)", counts


def _check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """A run folder belongs to one run: refuse one that holds another, unless asked."""
    from cvae.hub._layout import CONFIG_NAME, METRICS_NAME, WEIGHTS_NAME
    from cvae.training import checkpoints

    if (out / ASIDE).is_dir() and not (out / CHECKPOINTS).exists():  # set aside by a run killed then
        (out / ASIDE).rename(out / CHECKPOINTS)
    if resume and overwrite:
        raise ValueError("--resume goes on with the run in the folder and --overwrite replaces"
                         " it: give one of them")
    if out.exists() and not out.is_dir():
        kind = "a file" if out.is_file() else "not a folder"
        raise NotADirectoryError(f"{out} is {kind}; -o names the folder to write the model to")
    found = [name for name in (CONFIG_NAME, WEIGHTS_NAME, METRICS_NAME) if (out / name).exists()]
    found += [f"checkpoints up to {c[-1].name}" for c in [checkpoints(out / CHECKPOINTS)] if c]
    if found and not (resume or overwrite):
        raise FileExistsError(f"{out} holds an earlier run ({', '.join(found)}); pass --resume to"
                              f" go on with it, --overwrite to replace it, or choose another folder")
