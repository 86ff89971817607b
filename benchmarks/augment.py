"""`cvae.augment` on the two scenarios of the guide (Synthetic data), and its writing speed.

- few-labels: Fashion-MNIST with 100 labelled images of each class. A model is trained
  with the defaults on them, and 100 synthetic images of each class are drawn.
- rare-class: MNIST with 20 images of one digit (`--rare`) and 500 of each other. A model
  is trained with the defaults, and the rare digit is balanced up to 500.
- rare-class-oversampled: the plain remedy beside it, with no model: the rare digit's 20
  images repeated to 500, the same classifier recipe and test images.
- write-speed: 10,000 images (1,000 of each digit) drawn from the bundled mnist-conv and
  written, without the datasheet, as an image folder and as Parquet: the whole call's time.

The first two print their datasheets' verdicts and tables: the utility (a classifier
trained on real images only, synthetic only and both, tested on the split's 10,000 held-out
test images, over 3 seeds), the rare class's recall, and the memorisation rate.

Usage (2 CPU cores: about 15 minutes for all four):

    CVAE_DATA=../shared/data python benchmarks/augment.py [--scenarios few-labels,rare-class,write-speed]
        [--json augment.json] [--docs]

`--docs` copies each scenario's picture of synthetic images and of its nearest pairs into
docs/images/ (augment-SCENARIO-*.png).
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import data_root, machine

from cvae import ConditionalVAE, augment, save_grid
from cvae.augmentation._measure import mean_se
from cvae.data import LabelledImages, load_dataset, load_image_folder, stratified_subset
from cvae.evaluation import fit_classifier

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def few_labels(seed: int) -> tuple[LabelledImages, LabelledImages, dict]:
    """Fashion-MNIST: 100 training images of each class; every test image."""
    train = stratified_subset(load_dataset("fashion-mnist", data_root(), train=True), 1000, seed)
    test = load_dataset("fashion-mnist", data_root(), train=False)
    return train, test, {"per_class": 100}


def rare_class(seed: int, rare: int) -> tuple[LabelledImages, LabelledImages, dict]:
    """MNIST: 20 training images of `rare`, 500 of each other digit; every test image."""
    full = load_dataset("mnist", data_root(), train=True)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed))
    keep = torch.cat([order[full.labels[order] == c][: 20 if c == rare else 500] for c in range(10)])
    return full.select(keep.sort().values), load_dataset("mnist", data_root(), train=False), {"balance": True}


def _pictures(name: str, out: Path, figures: dict) -> None:
    """The first 8 synthetic images of each class given some, as written, and the nearest pairs."""
    written = load_image_folder(out / "images")
    rows = [written.images[written.labels == c][:8] for c in range(len(written.class_names))]
    save_grid(torch.cat(rows), DOCS / f"augment-{name}-samples.png", nrow=8, scale=2)
    shutil.copy(out / "nearest.png", DOCS / f"augment-{name}-nearest.png")


def measured(name: str, out: Path, data, test, counts, seed: int, docs: bool) -> dict:
    start = time.perf_counter()
    sheet = augment(None, data, out / name, test=test, seed=seed, **counts)
    figures = {**sheet.figures, "seconds": time.perf_counter() - start}
    print(f"\n## {name} ({figures['seconds']:.0f} s)\n")
    print((out / name / "datasheet.md").read_text())
    if docs:
        _pictures(name, out / name, figures)
    return figures


def oversampled(seed: int, rare: int, seeds: int = 3) -> dict:
    """The plain remedy to compare with: the rare digit's 20 images repeated to 500, no model.

    The same classifier recipe as the datasheet's utility, tested on the same images.
    """
    train, test, _ = rare_class(seed, rare)
    own = (train.labels == rare).nonzero().flatten()
    repeated = torch.cat([torch.arange(len(train)), own.repeat(24)])  # 20 + 480 = 500
    accuracies, recalls = [], []
    for s in range(seeds):
        classifier = fit_classifier(train.images[repeated], train.labels[repeated], 10, seed=s)
        right = classifier.predict(test.images) == test.labels
        accuracies.append(right.double().mean().item())
        recalls.append(right[test.labels == rare].double().mean().item())
    result = {"accuracy": mean_se(accuracies), "rare_recall": mean_se(recalls)}
    print(
        f"oversampled: accuracy {result['accuracy'][0]:.1%} ± {result['accuracy'][1]:.1%},"
        f" rare digit {rare} recall {result['rare_recall'][0]:.1%} ± {result['rare_recall'][1]:.1%}"
    )
    return result


def write_speed(out: Path) -> dict:
    """10,000 images from mnist-conv, written as an image folder and as Parquet, no datasheet."""
    model = ConditionalVAE.from_pretrained("mnist-conv")
    data = load_dataset("mnist", data_root(), train=False)
    results = {}
    for fmt in ("imagefolder", "parquet"):
        start = time.perf_counter()
        sheet = augment(model, data, out / f"speed-{fmt}", per_class=1000, format=fmt, datasheet=False)
        results[fmt] = {
            "seconds": time.perf_counter() - start,
            "images": sheet.figures["images"],
            "draw_seconds": sheet.figures["draw_seconds"],
            "write_seconds": sheet.figures["write_seconds"],
        }
        print(
            f"{fmt}: {sheet.figures['images']} images in {results[fmt]['seconds']:.1f} s"
            f" (drawing {results[fmt]['draw_seconds']:.1f} s, writing {results[fmt]['write_seconds']:.1f} s)"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="few-labels,rare-class,rare-class-oversampled,write-speed")
    parser.add_argument("--rare", type=int, default=3, help="the rare digit (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write every figure here")
    parser.add_argument("--docs", action="store_true", help="copy the pictures into docs/images")
    args = parser.parse_args()
    print(machine())
    results = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name in args.scenarios.split(","):
            if name == "write-speed":
                results[name] = write_speed(out)
                continue
            if name == "rare-class-oversampled":
                results[name] = oversampled(args.seed, args.rare)
                continue
            data, test, counts = (
                few_labels(args.seed) if name == "few-labels" else rare_class(args.seed, args.rare)
            )
            results[name] = measured(name, out, data, test, counts, args.seed, args.docs)
            if name == "rare-class":
                u, rare = results[name]["utility"], args.rare
                gain = u["real+synthetic"]["recall"][rare] - u["real"]["recall"][rare]
                cost = u["real"]["accuracy"] - u["real+synthetic"]["accuracy"]
                print(
                    f"rare digit {rare}: recall {gain * 100:+.1f} points (target: +5 or more);"
                    f" accuracy {-cost * 100:+.1f} points (target: no worse than -1)"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
