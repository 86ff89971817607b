"""What `cvae train` and `cvae eval` read as data: the options, and the data set a run recorded.

`cvae train` records in the model folder's `training_history.json` how it read its data and
which images it held out; `cvae eval` of that folder reads them back, so that it measures
on the same data and the same held-out images without being told again.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_DATASET", "registered", "data_options", "held_out_record", "as_trained"]

#: What `--dataset` is when a command is not given one (and, for `cvae eval`, no run recorded one).
DEFAULT_DATASET = "mnist"


def registered(name: str) -> bool:
    """Whether `--dataset` names a registered dataset (MNIST, say): not a folder or `hf:` one."""
    from cvae.data._named import list_datasets

    return name.lower().replace("_", "-") in list_datasets()


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options for the loader of `--dataset` that the command line gives."""
    options = {"image_size": args.image_size, "channels": args.channels,
               "image_column": args.image_column, "label_column": args.label_column,
               "revision": args.revision, "unlabelled": args.unlabelled_folder,
               "keep_unlabelled": args.keep_unlabelled or None, "conditions": args.conditions}
    options = {key: value for key, value in options.items() if value is not None}
    dataset = args.dataset or DEFAULT_DATASET
    named, hub = registered(dataset), dataset.startswith("hf:")
    for key in options:
        hub_only = key.endswith("column") or key in ("revision", "keep_unlabelled")
        if key == "unlabelled" and (named or hub):
            raise ValueError(f"--unlabelled-folder applies to folders of images, not to {dataset!r}")
        if key == "conditions" and named:
            raise ValueError(f"--conditions applies to folders with a metadata file and Hugging Face"
                             f" datasets, not to {dataset!r}")
        if named or (hub_only and not hub):
            applies = "Hugging Face datasets (hf:...)" if hub_only else "folders and Hugging Face datasets"
            raise ValueError(f"--{key.replace('_', '-')} applies to {applies}, not to {dataset!r}")
    from cvae.data._splits import DEFAULT_TEST_FRACTION

    return {**options,
            "test_fraction": DEFAULT_TEST_FRACTION if args.test_fraction is None else args.test_fraction,
            "split_seed": 0 if args.split_seed is None else args.split_seed}


def held_out_record(args: argparse.Namespace, options: dict[str, Any]) -> dict[str, Any]:
    """What `cvae eval` needs to read a run's data as `cvae train` did and hold out the same images."""
    return {"dataset": args.dataset, **_folder_path(args.dataset),
            "test_fraction": options["test_fraction"], "split_seed": options["split_seed"],
            "unlabelled_folder": args.unlabelled_folder, "channels": args.channels,
            "image_size": args.image_size}


def _folder_path(dataset: str) -> dict[str, str]:
    """For a folder data set, its absolute path: `cvae eval` finds it from any folder."""
    if dataset.startswith("hf:") or registered(dataset) or not Path(dataset).is_dir():
        return {}
    return {"dataset_path": str(Path(dataset).resolve())}


def as_trained(args: argparse.Namespace, trained: dict[str, Any]) -> None:
    """`cvae eval`: the held-out split that `cvae train` kept the model's images apart from.

    A model folder written by `cvae train` records how it read its data (`--channels`,
    `--image-size`, `--unlabelled-folder`) and split them; for the same `--dataset`, those
    not given are taken from it, and a split given otherwise is allowed but noted: it may
    hold images the model trained on.
    """
    kept = trained.get("run", {}).get("held_out")
    if args.dataset is None:  # the data set the run recorded, else the default
        args.dataset = _recorded_dataset(kept) if kept else DEFAULT_DATASET
        if kept:
            print(f"measuring on {args.dataset}, the data set that {args.model} was trained on")
    if not kept or not _same_dataset(args.dataset, kept):
        return
    for key in ("unlabelled_folder", "channels", "image_size"):  # older records lack the last two
        setattr(args, key, getattr(args, key) or kept.get(key))
    for key in ("test_fraction", "split_seed"):
        given = getattr(args, key)
        if given is None:
            setattr(args, key, kept[key])
        elif given != kept[key]:
            print(f"note: the model was trained beside a held-out split of {kept['test_fraction']:g}"
                  f" of each class (split seed {kept['split_seed']}); --{key.replace('_', '-')}"
                  f" {given} draws another, which may hold images it trained on")


def _recorded_dataset(kept: dict[str, Any]) -> str:
    """The `--dataset` a run recorded: as given, or the folder's absolute path.

    The absolute path is taken where the path given (relative, say) leads nowhere from here.
    """
    given, path = kept["dataset"], kept.get("dataset_path")
    return path if path and not Path(given).exists() and Path(path).exists() else given


def _same_dataset(dataset: str, kept: dict[str, Any]) -> bool:
    """Whether `--dataset` names the data set a run recorded (a folder by any path to it)."""
    path = kept.get("dataset_path")
    return dataset == kept["dataset"] or bool(path) and Path(dataset).resolve() == Path(path)
