"""How should `choose_guidance` train its classifier? Its choices against the panel's judge.

For each set of the small-data panel named, a model is trained as the panel trains it
(`ConditionalVAE.from_data`, the Trainer's own length, a tenth held out for early
stopping). The panel's judge (a classifier of the set's real training images, measured on
real held-out images) scores 200 samples of each class at each guidance weight: the mean
over classes and the worst class, as shares of its accuracy on real images. Then the
selector's recipe, in four variants: a `ReferenceClassifier` on four fifths of the training
images, measured on the other fifth, trained as long as the first version of
`choose_guidance` (40 epochs, 200 to 1,000 steps) or three times as long, and with or
without random shifts of the images; each prints its scores and the weight it chooses (the
smallest of the near-best; "nearest1": the near-best nearest to 1).

    CVAE_DATA=../shared/data python experiments/guidance-choice/study.py \
        --sets mnist-300,mnist-1000-8x8,photos-600,fashion-300,fashion-1000,mnist-1000-16x16
"""

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import small_data  # noqa: E402  (the panel's sets and judge)

from cvae.data import LabelledImages, train_test_split  # noqa: E402
from cvae.evaluation.reference import ReferenceClassifier  # noqa: E402

WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def fit(images, labels, classes, steps, shift, seed=0):
    """`fit_classifier`'s recipe, with images shifted by up to `shift` pixels if asked."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = ReferenceClassifier(images.shape[1], classes)
    opt = torch.optim.Adam(clf.parameters(), 1e-3)
    clf.train()
    done = 0
    while done < steps:
        for idx in torch.randperm(len(images), generator=g).split(64)[: steps - done]:
            x = images[idx]
            if shift:
                x = F.pad(x, (shift,) * 4, mode="replicate")
                dy, dx = torch.randint(0, 2 * shift + 1, (2,), generator=g).tolist()
                x = x[..., dy:dy + images.shape[-2], dx:dx + images.shape[-1]]
            opt.zero_grad()
            F.cross_entropy(clf(x), labels[idx]).backward()
            opt.step()
            done += 1
    return clf.eval()


@torch.no_grad()
def per_class(model, clf, weight, n=200):
    g = torch.Generator().manual_seed(0)
    return [(clf(model.sample(c, n, generator=g, mixed_precision=False, guidance=weight)).argmax(1) == c)
            .float().mean().item() for c in range(model.num_classes)]


def score(shares):
    capped = [min(1, v) for v in shares if not math.isnan(v)]
    return sum(capped) / len(capped) + min(capped)


def choose(scores, prefer=None, tie=0.02):
    near = [w for w, s in scores.items() if s >= max(scores.values()) - tie]
    return min(near) if prefer is None else min(near, key=lambda w: abs(w - prefer))


def study(name):
    train, held_out = small_data.sets()[name]()
    model, fitted = small_data.train_defaults(train)
    judge = small_data.train_classifier(train)
    real = small_data.accuracy_per_class(judge, held_out)
    shares = {w: [a / r for a, r in zip(per_class(model, judge, w), real)] for w in WEIGHTS}
    print(f"== {name}: judge (mean, worst) by weight:",
          {w: (round(sum(s) / len(s), 3), round(min(s), 3)) for w, s in shares.items()}, flush=True)
    part, rest = train_test_split(LabelledImages(fitted.images, fitted.labels), 0.2, 0)
    steps = min(1000, max(200, 40 * math.ceil(len(part) / 64)))
    for label, shift in (("noaug", 0), ("shift", max(1, train.images.shape[-1] // 14))):
        for times, budget in ((1, steps), (3, min(3000, 3 * steps))):
            clf = fit(part.images, part.labels, model.num_classes, budget, shift)
            with torch.no_grad():
                right = clf(rest.images).argmax(1) == rest.labels
            real_c = [right[rest.labels == c].float().mean().item() for c in range(model.num_classes)]
            scores = {w: score([a / r if r > 0 else math.nan
                                for a, r in zip(per_class(model, clf, w), real_c)]) for w in WEIGHTS}
            print(f"  {label} x{times}: real acc {sum(real_c) / len(real_c):.2f} scores",
                  {w: round(v, 3) for w, v in scores.items()},
                  "-> smallest", choose(scores), "nearest1", choose(scores, prefer=1.0), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", required=True, help="comma-separated panel sets")
    for name in parser.parse_args().sets.split(","):
        study(name)
