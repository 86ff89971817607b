"""`augment`: a labelled synthetic set from a conditional VAE, written with its datasheet."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import torch

from cvae._checks import check_float, check_int, expand_path
from cvae.augmentation._measure import MEMORISED_QUANTILE, class_quality, memorisation, utility
from cvae.augmentation._plan import PerClass, plan_counts
from cvae.augmentation._write import FORMATS, check_format, folder_names, write_set
from cvae.augmentation.datasheet import Datasheet, verdict
from cvae.data._labelled import LabelledData, LabelledImages, class_names_of
from cvae.data._sources import as_labelled
from cvae.data._splits import DEFAULT_TEST_FRACTION, train_test_split
from cvae.models.conditional_vae import ConditionalVAE
from cvae.training.record import machine_name

logger = logging.getLogger(__name__)

NEAREST_SHOWN = 12  # synthetic images, with the training image nearest each, in the picture


def check_output(output: str | os.PathLike[str]) -> None:
    """Refuse an output that is a file, or a folder that holds anything.

    Raises:
        ValueError: Naming the path and what to do.
    """
    path = expand_path(output, "the output folder")
    if os.path.lexists(path) and not path.is_dir():
        raise ValueError(
            f"{output} is a file; the output is a folder for the synthetic set and its datasheet"
        )
    if path.is_dir() and any(path.iterdir()):
        raise ValueError(
            f"{output} holds other files; give a new or empty folder for the synthetic"
            f" set (nothing there is changed)"
        )


def _real_sets(
    model: ConditionalVAE | None, data: LabelledData, test: LabelledData | None
) -> tuple[LabelledImages, LabelledImages, str]:
    """The real training images and held-out ones (labelled only), checked against the model."""
    if model is not None and not model.conditions.is_single:
        raise ValueError(
            f"augment draws the classes of one label; this model is conditioned on"
            f" {', '.join(model.conditions.names)}: give it a model of one label"
        )
    if test is None:
        data, test = train_test_split(data, DEFAULT_TEST_FRACTION, seed=0)  # as `cvae train` holds out
    real, held = (_labelled(as_labelled(part), role) for part, role in ((data, "training"), (test, "test")))
    shape = tuple(model.image_shape) if model is not None else tuple(real.images.shape[1:])
    for role, part in (("training", real), ("test", held)):
        if tuple(part.images.shape[1:]) != shape:
            drawn = "the model draws" if model is not None else "the training data hold"
            raise ValueError(
                f"{drawn} images of shape {shape}, the {role} data's are {tuple(part.images.shape[1:])}"
            )
        if model is not None:
            model.match_conditions(None, class_names_of(part), role)
            if int(part.labels.max()) >= model.num_classes:
                raise ValueError(
                    f"the {role} data have class {int(part.labels.max())}; the model has"
                    f" {model.num_classes} classes (0 to {model.num_classes - 1})"
                )
    return real, held, str(held.split or "the test data given")


def _labelled(part: LabelledImages, role: str) -> LabelledImages:
    """The labelled images of `part` (unlabelled ones, -1, have no class to draw)."""
    if part.conditions is not None and not part.conditions.is_single:
        raise ValueError(
            f"augment draws the classes of one label; the {role} data have the conditions"
            f" {', '.join(part.conditions.names)}: give them one label"
        )
    part = part.select((part.labels >= 0).nonzero().flatten())
    if len(part) == 0:
        raise ValueError(f"the {role} data hold no labelled image")
    return part


def _trained(real: LabelledImages, seed: int, **settings: Any) -> ConditionalVAE:
    """A model trained with the defaults on `real` (a tenth held out to decide the length).

    `settings` go to `ConditionalVAE.from_data` (a study of another likelihood gives one).
    """
    from cvae.training.trainer import Trainer

    part, val = train_test_split(real, 0.1, seed)
    model = ConditionalVAE.from_data(part, **settings)
    Trainer(model, part, val, seed=seed).train()
    return model


@torch.inference_mode()
def _draw(model: ConditionalVAE, counts: list[int], seed: int, guidance: float | None) -> LabelledImages:
    """`counts[c]` images of each class `c`, at the model's recommended setting and `guidance`."""
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    model.eval()
    generator = torch.Generator(model.device).manual_seed(seed)
    images = model.sample(labels.to(model.device), 1, generator=generator, guidance=guidance)
    return LabelledImages(images.float().cpu(), labels, model.class_names)


def _class_names(model: ConditionalVAE | None, real: LabelledImages) -> list[str]:
    """The model's class names, else the data's, else the class indices as text."""
    k = model.num_classes if model is not None else int(real.labels.max()) + 1
    if model is not None and model.class_names:
        return list(model.class_names)
    return list(real.class_names or [str(c) for c in range(k)])


def _classifier(settings: dict[str, int]) -> str:
    """The datasheet's classifiers, in words."""
    return (
        f"a small CNN ({settings['steps']} Adam steps of {settings['batch_size']} images,"
        f" {settings['seeds']} seeds)"
    )


def _sets(real: LabelledImages, test: LabelledImages, test_split: str, settings: dict[str, Any],
          datasheet: bool) -> dict[str, Any]:
    """The datasheet's words on the real images and the classifiers that measure the set."""
    return {
        "real_images": len(real),
        "test_images": len(test),
        "test_split": test_split,
        "classifier": _classifier(settings) if datasheet else "none (datasheet=False)",
        "seeds": settings["seeds"],
        "machine": machine_name(torch.device("cpu")),
    }


def _measure(
    fake: LabelledImages,
    real: LabelledImages,
    test: LabelledImages,
    names: list[str],
    counts: list[int],
    real_counts: list[int],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], torch.Tensor]:
    """The datasheet's figures, and the picture of the nearest pairs `(2 * n, C, H, W)`."""
    logger.info(
        f"cvae: measuring the set: {3 * settings['seeds']} classifiers of {settings['steps']} steps"
        f" (minutes on a CPU; datasheet=False, --no-datasheet, skips them)"
    )
    k = len(names)
    results, judge = utility(
        real,
        fake,
        test,
        k,
        seeds=settings["seeds"],
        steps=settings["steps"],
        batch_size=settings["batch_size"],
    )
    features = judge.features(real.images), judge.features(fake.images)
    quality = class_quality(judge, features, real, fake, test, k, settings["seed"])
    memorised = memorisation(*features, fake.labels, k)
    closest = memorised.pop("distance").argsort()[:NEAREST_SHOWN]
    pairs = torch.cat([fake.images[closest], real.images[memorised.pop("nearest")[closest]].float()])
    classes = [
        {
            "name": names[c],
            "real": real_counts[c],
            "synthetic": counts[c],
            **quality[c],
            "memorised": memorised["rate_per_class"][c],
        }
        for c in range(k)
    ]
    figures = {
        "verdict": verdict(results, counts, names),
        "utility": results,
        "classes": classes,
        "memorisation": {**memorised, "quantile": MEMORISED_QUANTILE, "picture": "nearest.png"},
    }
    return figures, pairs


def augment(
    model: ConditionalVAE | None,
    data: LabelledData,
    output: str | os.PathLike[str],
    *,
    per_class: PerClass | None = None,
    balance: bool = False,
    format: str = "imagefolder",
    test: LabelledData | None = None,
    datasheet: bool = True,
    seeds: int = 3,
    classifier_steps: int = 1000,
    seed: int = 0,
    guidance: float | None = 0.0,
) -> Datasheet:
    """Write a labelled synthetic set drawn from `model`, and its datasheet, into `output`.

    The set is written in a form people train on (`format`): `"imagefolder"`
    (`images/CLASS/00000.png`), `"parquet"` (`data/train-00000-of-00001.parquet`) or `"hf"`
    (`dataset/`, `datasets.load_from_disk`); the last two need the `datasets` package. Beside it,
    `datasheet.json` and `datasheet.md` say, per class and overall, whether a classifier
    trained on the real images recognises the synthetic ones; their precision, recall and
    diversity against the real images of their class; the memorisation rate (with the
    nearest pairs in `nearest.png`); and the utility: a classifier trained on real images
    only, synthetic only and both, each tested on held-out real images, with its standard
    error over `seeds`. Its first line says whether the set helped, and for which classes it
    did not. A model trained here is saved beside them (`model/`, for `from_pretrained`).
    Everything is written beside `output` and moved into place at the end: a run stopped
    midway leaves no `output`, or a complete one.

    Args:
        model: A trained model of one label; `None` trains one with the defaults on `data`.
        data: The real labelled training images (any form the `Trainer` takes).
        output: A new or empty folder.
        per_class: Images to draw of every class, or `{class: count}` (by name or index).
        balance: Draw for each class what it lacks of the largest class's count, instead.
        format: `"imagefolder"`, `"parquet"` or `"hf"`.
        test: Held-out real images, which neither the model nor the classifiers trained on;
            default: a fifth of each class of `data`, seed 0 (what `cvae train` holds out).
        datasheet: Measure the set (the classifiers cost minutes on a CPU); `False` writes
            the set and a datasheet of its counts only.
        seeds: Seeds of each utility classifier.
        classifier_steps: Adam steps of each classifier (64 images a step), whatever the set's size.
        seed: Seed of the draws (and of the model trained where `model` is `None`).
        guidance: The classifier-free guidance weight of the draws; the model's recommended
            temperature and sharpness apply. Default 0, unguided, whatever the model
            recommends: guided images are more typical of their class and teach a classifier
            less (the guide's figures). `None`: the model's recommended weight.

    Returns:
        The `Datasheet` written (`.verdict`, `.figures`, `.path`).

    Raises:
        ValueError: Before anything is trained or written, for a class the model does not
            have, a count below 1, no count or two, an output that holds other files, a
            model of other image shapes or classes than the data, an unknown format, a
            negative guidance weight, or guidance for a model trained without condition dropout.
    """
    check_format(format)
    check_output(output)
    settings = {
        "seeds": check_int("seeds", seeds),
        "steps": check_int("classifier_steps", classifier_steps),
        "batch_size": 64,
        "seed": check_int("seed", seed, 0),
    }
    if guidance is not None:
        guidance = check_float("guidance", guidance)
        if model is not None:  # a model trained here has condition dropout
            model.check_sampling({"guidance": guidance})
    real, test, test_split = _real_sets(model, data, test)
    names = _class_names(model, real)
    real_counts = torch.bincount(real.labels, minlength=len(names))
    counts = plan_counts(real_counts, names, per_class=per_class, balance=balance)
    trained = None if model is not None else _trained(real, seed)
    source = (
        "the model given"
        if trained is None
        else "the model in model/, trained with the defaults on the real ones"
    )
    model = model if trained is None else trained
    drawing = time.perf_counter()
    fake = _draw(model, counts, seed, guidance)
    figures = {
        "images": len(fake),
        "format": format,
        "entry": FORMATS[format],
        "model": source,
        "seed": seed,
        "sampling": {**model.SAMPLING, **(model.sampling or {}),
                     **({} if guidance is None else {"guidance": guidance})},
        "class_names": names,
        "counts": counts,
        "draw_seconds": time.perf_counter() - drawing,
        **_sets(real, test, test_split, settings, datasheet),
    }
    pairs = None
    if datasheet:
        measured, pairs = _measure(fake, real, test, names, counts, real_counts.tolist(), settings)
        figures.update(measured)
    sheet = Datasheet(expand_path(output), figures)
    _write(sheet, fake, names, format, pairs, trained)
    return sheet


def _write(
    sheet: Datasheet,
    fake: LabelledImages,
    names: list[str],
    fmt: str,
    pairs: torch.Tensor | None,
    trained: ConditionalVAE | None,
) -> None:
    """The set, `datasheet.json`, `datasheet.md`, `nearest.png` and a model trained here (`model/`).

    Staged beside the output and moved into place whole.
    """
    from cvae._files import staged_folder
    from cvae.images import save_grid

    check_output(sheet.path)  # again: it may have been filled while the classifiers trained
    written = folder_names(names, len(names)) if fmt == "imagefolder" else names
    with staged_folder(sheet.path, owned=()) as stage:
        start = time.perf_counter()
        write_set(stage, fake.images, fake.labels, written, fmt)
        sheet.figures["write_seconds"] = time.perf_counter() - start
        if pairs is not None:
            save_grid(pairs, stage / "nearest.png", nrow=len(pairs) // 2, scale=2)
        if trained is not None:  # what drew the set, to draw more or to check it
            trained.save_pretrained(stage / "model")
        (stage / "datasheet.json").write_text(sheet.to_json())
        (stage / "datasheet.md").write_text(sheet.to_markdown())
