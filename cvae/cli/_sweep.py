"""`cvae eval --sweep`: the samples at every sampling setting, and the one to recommend."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["run_sweep", "format_sweep"]

_SECTION = "## Sampling settings"


def _rule(found: dict[str, Any]) -> str:
    """How `recommend` chose, in words."""
    floor, best = found["min_precision"], found["recommended"]
    recognised = "whose samples are recognised at least as often as at temperature 1, sharpness 1, guidance 0"
    if not best["precision_share"] >= floor:
        return f"no setting reached a precision share of {floor:g}: the most precise of those {recognised}"
    return (f"the highest recall share of the settings with a precision share of at least {floor:g}"
            f" {recognised}")


def format_sweep(rows: list[dict[str, Any]], recommended: dict[str, Any]) -> str:
    """The sweep as a Markdown table, the recommended row marked: what `cvae eval --sweep` prints."""
    lines = ["| temperature | sharpness | guidance | recognised (worst class) | precision (share of real) |"
             " recall (share of real) | diversity | Frechet distance |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        mark = " **recommended**" if row is recommended else ""
        worst = f"{row['recognised_worst_class']}: {row['recognised_worst']:.1%}"
        lines.append(f"| {row['temperature']:g} | {row['sharpness']:g} | {row['guidance']:g}{mark} |"
                     f" {row['recognised']:.2%} ({worst}) |"
                     f" {row['precision']:.3f} ({row['precision_share']:.2f}) |"
                     f" {row['recall']:.3f} ({row['recall_share']:.2f}) | {row['diversity']:.3f} |"
                     f" {row['frechet_distance']:.2f} |")
    return "\n".join(lines)


def run_sweep(args: argparse.Namespace, model: Any, test: Any, classifier: Any) -> None:
    """Measure, print, write the JSON and the curve; with `--recommend`, save the setting."""
    from cvae._files import write_text
    from cvae.evaluation.plots import plot_sweep
    from cvae.evaluation.sweep import sweep

    folder = _writable_folder(args) if args.recommend else None  # refused before any work
    if classifier is None:
        raise ValueError(f"--sweep judges samples with a classifier of the data set, and"
                         f" {args.dataset} has none bundled (MNIST and Fashion-MNIST do)")
    found = sweep(model, test, classifier, temperature=args.temperature, sharpness=args.sharpness,
                  guidance=args.guidance, seed=args.seed,
                  **({"n_per_class": args.samples_per_class} if args.samples_per_class else {}),
                  **({"min_precision": args.min_precision} if args.min_precision is not None else {}))
    rows, best = found["settings"], found["recommended"]
    print(f"{args.model}: {len(rows)} sampling settings on {len(test)} images of {args.dataset},"
          f" {test.split} split (seed {args.seed})")
    print(format_sweep(rows, best))
    setting = {key: best[key] for key in ("temperature", "sharpness", "guidance")}
    print(f"recommended: {json.dumps(setting)} ({_rule(found)})")
    write_text(args.output, json.dumps({"model": str(args.model), "dataset": args.dataset,
                                        "split": test.split, **found}, indent=2) + "\n")
    curve = plot_sweep(rows, Path(args.output).with_name(Path(args.output).stem + "-sweep.png"), best,
                       found["min_precision"])
    print(f"wrote {args.output}, {curve}")
    if folder is not None:
        _save_recommended(model, folder, setting, found, curve)
        print(f"saved the recommended setting to {folder}: sample() uses it where a call sets none")


def _writable_folder(args: argparse.Namespace) -> Path:
    """The model's own folder, which `--recommend` writes into; a bundled or Hub model is refused."""
    from cvae.hub._layout import BUNDLED_DIR
    from cvae.hub._names import local_folder

    folder = local_folder(args.model) if args.model else None
    if folder is None or folder.parent == BUNDLED_DIR:
        raise ValueError(f"--recommend saves the setting into the model's folder, and {args.model}"
                         f" is {'a bundled model' if folder else 'not a folder here'}: save a copy"
                         f" (ConditionalVAE.from_pretrained(...).save_pretrained(FOLDER)) and sweep"
                         f" that")
    return folder


def _save_recommended(model: Any, folder: Path, setting: dict[str, float], found: dict[str, Any],
                      curve: Path) -> None:
    """The setting into the config, the table and curve into the card (its old section replaced)."""
    import shutil

    from cvae._files import atomic_write
    from cvae.hub._layout import CARD_NAME

    model.set_sampling(setting)
    card_file = folder / CARD_NAME
    card = card_file.read_text(encoding="utf-8") if card_file.is_file() else model._model_card()
    card = re.sub(rf"\n{re.escape(_SECTION)}\n.*?(?=\n## |\Z)", "", card, flags=re.S).rstrip()
    table = format_sweep(found["settings"], found["recommended"])
    section = (f"\n\n{_SECTION}\n\n`sample()` draws at {json.dumps(setting)} where a call sets"
               f" none: of the settings below, measured by `cvae eval --sweep` ({found['n_per_class']}"
               f" samples a class, seed {found['seed']}),"
               f" {_rule(found)} (shares of what real images score against real"
               f" images in the same features).\n\n![precision against recall](sweep.png)\n\n{table}\n")
    model.save_pretrained(folder, model_card=card + section)
    atomic_write(folder / "sweep.png", lambda path: shutil.copyfile(curve, path))
