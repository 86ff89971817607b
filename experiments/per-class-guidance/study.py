"""One guidance weight for every class, or one for each? The choices against the panel's judge.

For each set of the small-data panel named, a model is trained as the panel trains it
(`ConditionalVAE.from_data`, the Trainer's own length, a tenth held out for early
stopping), and `choose_guidance` (the library's) scores each weight on the training images.
The panel's judge (a classifier of the set's real training images, measured on real
held-out images) labels 100 samples of each class at each weight, and measures their
within-class diversity in its features against the class's real held-out images. Printed:
the judge's mean and worst class share of real at the one weight `choose_guidance` chose,
at a weight for each class chosen from the same scores (that class's best capped share;
of shares within 0.02 of it, the smallest weight), and at the judge's own best weight for
each class (no selector can do better: an oracle).

    CVAE_DATA=../shared/data python experiments/per-class-guidance/study.py \
        --sets fashion-300,fashion-1000,fashion-1000-8x8,mnist-1000-16x16,mnist-300,mnist-1000
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import small_data  # noqa: E402  (the panel's sets and judge)

from cvae.evaluation import choose_guidance  # noqa: E402
from cvae.evaluation.diversity import diversity_ratio  # noqa: E402
from cvae.evaluation.guidance import TIE, WEIGHTS  # noqa: E402


@torch.no_grad()
def judged(model, judge, held_out, weight, real, n=100):
    """The judge's share of real for each class's samples at `weight`, and their diversity."""
    g = torch.Generator().manual_seed(1)
    shares, diversity = [], []
    for c in range(model.num_classes):
        images = model.sample(c, n, generator=g, mixed_precision=False, guidance=weight)
        shares.append((judge(images).argmax(1) == c).float().mean().item() / real[c])
        real_features = judge.embed(held_out.images[held_out.labels == c])
        diversity.append(diversity_ratio(real_features, judge.embed(images)))
    return shares, diversity


def per_class_choice(choice, key="shares", cap=1.0):
    """For each class, the smallest weight within `TIE` of its best score: its share of real
    capped at 1 (`"shares"`), or its samples' accuracy, uncapped (`"recognised"`)."""
    rows = choice["weights"]
    chosen = []
    for c in range(len(rows[0][key])):
        scores = [min(cap, row[key][c]) for row in rows]
        chosen.append(min(row["guidance"] for row, s in zip(rows, scores) if s >= max(scores) - TIE))
    return chosen


def summary(label, shares, diversity):
    mean, worst = sum(shares) / len(shares), min(shares)
    print(f"  {label:<28} recognised {mean:.3f}  worst {worst:.3f} (class {shares.index(worst)})"
          f"  diversity {sum(diversity) / len(diversity):.2f}", flush=True)


def study(name):
    train, held_out = small_data.sets()[name]()
    model, fitted = small_data.train_defaults(train)
    choice = choose_guidance(model, fitted, seed=0)
    judge = small_data.train_classifier(train)
    real = small_data.accuracy_per_class(judge, held_out)
    table = {w: judged(model, judge, held_out, w, real) for w in WEIGHTS}
    classes = range(model.num_classes)
    print(f"== {name}: judge's shares by weight (rows) and class (columns)")
    for w, (shares, diversity) in table.items():
        print(f"  {w:>4g}: " + " ".join(f"{s:.2f}" for s in shares)
              + "   diversity " + " ".join(f"{d:.2f}" for d in diversity))
    each, raw = per_class_choice(choice), per_class_choice(choice, "recognised", cap=float("inf"))
    best = [max(WEIGHTS, key=lambda w: min(1.0, table[w][0][c])) for c in classes]
    summary(f"one weight ({choice['chosen']:g})", *table[choice["chosen"]])
    summary(f"one per class {each}", [table[w][0][c] for c, w in zip(classes, each)],
            [table[w][1][c] for c, w in zip(classes, each)])
    summary(f"per class, accuracy {raw}", [table[w][0][c] for c, w in zip(classes, raw)],
            [table[w][1][c] for c, w in zip(classes, raw)])
    summary(f"judge's best per class {best}", [table[w][0][c] for c, w in zip(classes, best)],
            [table[w][1][c] for c, w in zip(classes, best)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", required=True, help="comma-separated panel sets")
    for name in parser.parse_args().sets.split(","):
        study(name)
