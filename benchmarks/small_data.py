"""The small-data panel: how well the defaults train on data sets a user might bring.

Every set is built offline from what is on this machine: MNIST and Fashion-MNIST subsets of
300, 1,000 and 3,000 images, the same shrunk to 8x8 and 16x16, colourised RGB versions, and
32x32 patches of photographs that scikit-image ships (`skimage.data`: one class a photo).
Each is trained as `cvae train` trains a folder with no option: `ConditionalVAE.from_data`,
then `Trainer` with its own length, batch and early stopping on a tenth of the training
images. The samples are judged by a classifier trained on the set's real training images and
measured on real held-out images that no model saw, drawn as `sample()` draws them (at the
setting the model recommends: for `from_data` models of one label, the guidance weight
chosen from the training images, as `cvae train` chooses it):

- recognised: the samples' accuracy as a share of the classifier's on real held-out images
  (the mean over classes, and the worst class's share of its own real accuracy, named);
- precision, recall and diversity against real held-out images of each class, in the
  classifier's features (`cvae.evaluation.evaluate`), each as a share of real against real;
- sharpness: the samples' mean total variation over the real images' (1.0: as sharp; per-
  pixel noise is far above 1, blur below);
- the held-out negative ELBO, the steps, the wall time (training and the choice of the
  guidance weight); and beside it the oracle: the best held-out negative ELBO over training
  lengths, measured after every epoch of the same run and of its continuation (resumed from
  its last epoch, without early stopping) to half as many epochs again, at least 10 more,
  each with the Gaussian's scale fitted to the validation images as the run fits it.

Usage (2 CPU cores: about a minute to ten a set):

    CVAE_DATA=../shared/data python benchmarks/small_data.py [--sets mnist-300,photos-600]
        [--json panel.json]

`--list` names every set. The table is Markdown, for docs/benchmarks.md.
"""

import argparse
import json
import math
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from common import data_root, machine
from torch import nn

from cvae import ConditionalVAE, Trainer
from cvae.data import VALIDATION_FRACTION, LabelledImages, load_dataset, stratified_subset, train_test_split
from cvae.evaluation import choose_guidance, evaluate
from cvae.training import Callback

HELD_OUT = 1000  # real held-out images of each MNIST-based set, from the test split
PHOTOS = ("chelsea", "coffee", "rocket")  # skimage.data's photographs: one class each


def _digits(name, n, size=None, rgb=False):
    """`n` training images of MNIST or Fashion-MNIST, and `HELD_OUT` test images, transformed alike."""
    parts = []
    for train, count in ((True, n), (False, HELD_OUT)):
        data = stratified_subset(load_dataset(name, data_root(), train=train), count, seed=0)
        images, labels = data.images, data.labels
        if size:
            images = F.interpolate(images, size=(size, size), mode="area")
        if rgb:
            images = _colourised(images, seed=int(train))
        parts.append(LabelledImages(images, labels, data.class_names))
    return parts


def _colourised(images, seed):
    """Grey images as RGB: a random ink and paper colour for each image (not each class)."""
    g = torch.Generator().manual_seed(seed)
    ink, paper = torch.rand(2, len(images), 3, 1, 1, generator=g)
    return paper * (1 - images) + ink * images


def _photos(n, size=32):
    """`n` patches of `size` pixels from the left 70% of each photo; held-out ones from the right 30%."""
    try:
        import skimage.data
    except ImportError:
        sys.exit("the photos sets cut their patches from scikit-image's photos: pip install scikit-image")

    parts = [([], []), ([], [])]
    g = torch.Generator().manual_seed(0)
    for label, name in enumerate(PHOTOS):
        photo = torch.as_tensor(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255
        photo = F.avg_pool2d(photo[None], 2)[0]  # halved: a patch holds a part of the scene
        cut = int(photo.shape[2] * 0.7)
        for part, (lo, hi), count in ((0, (0, cut), n // len(PHOTOS)), (1, (cut, photo.shape[2]), 300)):
            ys = torch.randint(0, photo.shape[1] - size + 1, (count,), generator=g)
            xs = torch.randint(lo, hi - size + 1, (count,), generator=g)
            parts[part][0].append(torch.stack([photo[:, y:y + size, x:x + size] for y, x in zip(ys, xs)]))
            parts[part][1].append(torch.full((count,), label))
    return [LabelledImages(torch.cat(i), torch.cat(y), list(PHOTOS)) for i, y in parts]


def sets():
    """The panel: name -> a function that builds `(train, held_out)`."""
    panel = {}
    for source, short in (("mnist", "mnist"), ("fashion-mnist", "fashion")):
        for n in (300, 1000, 3000):
            panel[f"{short}-{n}"] = lambda s=source, n=n: _digits(s, n)
        for size in (8, 16):
            panel[f"{short}-1000-{size}x{size}"] = lambda s=source, z=size: _digits(s, 1000, z)
        panel[f"{short}-1000-rgb"] = lambda s=source: _digits(s, 1000, rgb=True)
    panel["photos-600"] = lambda: _photos(600)
    panel["photos-1800"] = lambda: _photos(1800)
    return panel


class Classifier(nn.Module):
    """A small CNN for any image size: the judge of the samples, trained on real images."""

    def __init__(self, channels, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 128, 3, padding=1, stride=2), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(512, classes))

    def forward(self, x):
        return self.head(self.embed(x))

    def embed(self, x):
        return self.features(x)


def train_classifier(data, epochs=40, seed=0):
    """The judge: Adam on the real training images, with small random shifts."""
    torch.manual_seed(seed)
    clf = Classifier(data.images.shape[1], int(data.labels.max()) + 1)
    opt = torch.optim.Adam(clf.parameters(), 2e-3, weight_decay=1e-4)
    x, y = data.images, data.labels
    pad = max(1, x.shape[-1] // 14)
    for _ in range(epochs):
        clf.train()
        for idx in torch.randperm(len(x)).split(64):
            batch = F.pad(x[idx], (pad,) * 4, mode="replicate")
            dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()
            batch = batch[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]
            loss = F.cross_entropy(clf(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return clf.eval()


@torch.no_grad()
def accuracy_per_class(clf, data):
    predicted = torch.cat([clf(data.images[i:i + 500]).argmax(1) for i in range(0, len(data), 500)])
    classes = range(int(data.labels.max()) + 1)
    return [(predicted[data.labels == c] == c).float().mean().item() for c in classes]


def total_variation(images):
    """The mean absolute difference of neighbouring pixels, summed over an image; the mean over images."""
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().flatten(1).sum(1)
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().flatten(1).sum(1)
    return (dy + dx).mean().item()


def shares_of_real(figures, real, class_names=None):
    """`evaluate`'s sample figures as shares of real: recognised (and its worst class, named)
    of the judge's accuracy on real images of each class (`real`), precision, recall and
    diversity of real against real."""
    shares = [s / r if r > 0 else math.inf for s, r in zip(figures["sample_accuracy_per_class"], real)]
    worst = shares.index(min(shares))
    return {
        "recognised": figures["sample_accuracy"] / (sum(real) / len(real)),
        "worst_class": shares[worst], "worst_name": class_names[worst] if class_names else str(worst),
        **{key: figures[key] / figures[f"{key}_real"] for key in ("precision", "recall", "diversity")},
    }


class HeldOutCurve(Callback):
    """The held-out negative ELBO after every epoch: the oracle's sweep over training lengths.

    Each epoch's weights with the Gaussian's scale fitted to the validation images, as the
    defaults' run fits it (`ConditionalVAE.calibrate`), in the continuation without early
    stopping too; the scale does not train the weights.
    """

    def __init__(self, held_out, val):
        self.held_out, self.val, self.curve, self.seconds = held_out, val, [], 0.0

    def on_epoch_end(self, trainer, record):
        start = time.perf_counter()
        trainer.model.calibrate([(self.val.images, self.val.labels)])
        self.curve.append(trainer.evaluate(self.held_out)["nelbo"])
        self.seconds += time.perf_counter() - start  # not the defaults' time


def train_defaults(train, seed=0):
    """A model of `train` as `cvae train` makes one with no option (the studies' start):
    `from_data`, the Trainer's own length, a tenth held out. Returns it and its training part."""
    fit, val = train_test_split(train, VALIDATION_FRACTION, seed)
    torch.manual_seed(seed)
    model = ConditionalVAE.from_data(fit)
    Trainer(model, fit, val, seed=seed, verbose=False, progress=False).train()
    return model, fit


def run_set(name, build, seed=0, model_settings=None, trainer_settings=None, oracle=True):
    train, held_out = build()
    fit, val = train_test_split(train, VALIDATION_FRACTION, seed)
    torch.manual_seed(seed)
    model = ConditionalVAE.from_data(fit, **(model_settings or {}))
    curve = HeldOutCurve(held_out, val)
    with tempfile.TemporaryDirectory() as checkpoints:
        start = time.perf_counter()
        trainer = Trainer(model, fit, val, seed=seed, verbose=False, progress=False, callbacks=[curve],
                          checkpoint_dir=checkpoints, checkpoint_every=10**6, **(trainer_settings or {}))
        trainer.train()
        seconds = time.perf_counter() - start - curve.seconds
        nelbo = trainer.evaluate(held_out)["nelbo"]
        # The oracle: the same run, resumed from its last epoch and trained half as long again
        # (at least 10 epochs more) without early stopping, the held-out loss measured after
        # every epoch: the best over all those lengths.
        if oracle:
            epochs = max(len(trainer.history) * 3 // 2, len(trainer.history) + 10)
            # The same architecture (the checkpoint brings the weights), not decided again from the data.
            Trainer(ConditionalVAE.from_config(model.config), fit, val, seed=seed,
                    epochs=epochs, verbose=False, progress=False, callbacks=[curve], early_stopping=False,
                    checkpoint_dir=checkpoints, resume=True, allow_changes=True,
                    batch_size=trainer.batch_size).train()
    best = min(curve.curve)
    start, choice = time.perf_counter(), None
    if model.sampling.get("guidance") is not None:  # as `cvae train` does: the weight chosen from the data
        choice = choose_guidance(model, fit, seed=seed)
        model.set_sampling({**model.sampling, "guidance": choice["chosen"]})
    choosing = time.perf_counter() - start
    clf = train_classifier(train)
    real = accuracy_per_class(clf, held_out)
    n = min(100, int(torch.bincount(held_out.labels).min()) // 2 * 2)
    # The samples that `sample()` draws: at the setting the model recommends, if any.
    figures = evaluate(model, held_out, classifier=clf, features=clf.embed, n_per_class=n,
                       k=10, iwae_images=200, seed=seed, sampling=model.sampling)
    samples = model.sample(held_out.labels, 1, generator=torch.Generator().manual_seed(seed))
    return {
        "set": name, "images": len(train), "shape": list(train.images.shape[1:]),
        "classes": int(train.labels.max()) + 1, "backbone": model.config["backbone"],
        "likelihood": model.config["likelihood"], "batch": trainer.batch_size,
        "steps": trainer.global_step, "epochs": len(trainer.history), "kept_epoch": trainer.kept_epoch,
        "stopped": trainer.stop_reason, "verdict": trainer.verdict.kind, "seconds": seconds + choosing,
        "choosing_seconds": choosing, "guidance_choice": choice and choice["weights"],
        "classifier_accuracy": sum(real) / len(real), **shares_of_real(figures, real, held_out.class_names),
        "sampling": model.sampling, "guidance": model.sampling.get("guidance", 0.0),
        "sharpness": total_variation(samples) / total_variation(held_out.images),
        "scale": getattr(model.likelihood, "log_scale", torch.zeros(0)).exp().tolist(),  # the Gaussian's
        "prior": model.config["prior"],
        "nelbo": nelbo, "oracle_nelbo": best, "oracle_epoch": 1 + curve.curve.index(best),
        "oracle_gap": (nelbo - best) / abs(best),
    }


COLUMNS = (("set", "{}"), ("images", "{}"), ("backbone", "{}"), ("likelihood", "{}"), ("batch", "{}"),
           ("steps", "{:,}"),
           ("seconds", "{:.0f}"), ("guidance", "{:g}"), ("recognised", "{:.3f}"), ("worst_class", "{:.3f}"),
           ("worst_name", "({})"),
           ("precision", "{:.2f}"), ("recall", "{:.2f}"), ("diversity", "{:.2f}"),
           ("sharpness", "{:.2f}"), ("nelbo", "{:.1f}"), ("oracle_nelbo", "{:.1f}"), ("oracle_gap", "{:.1%}"))


def row(result):
    return "| " + " | ".join(fmt.format(result[key]) for key, fmt in COLUMNS) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", help="comma-separated set names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="name the sets and stop")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--model", type=json.loads, default={},
                        help='a study, not the defaults: ConditionalVAE.from_data settings as JSON')
    parser.add_argument("--trainer", type=json.loads, default={},
                        help='a study, not the defaults: Trainer settings as JSON')
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle's sweep (quicker)")
    parser.add_argument("--seed", type=int, default=0,
                        help="of the held-out split, the model and the sampling (the panel's figures: 0)")
    args = parser.parse_args()
    panel = sets()
    if args.list:
        print("\n".join(panel))
        return
    names = args.sets.split(",") if args.sets else list(panel)
    unknown = [n for n in names if n not in panel]
    if unknown:
        sys.exit(f"no set {unknown[0]!r}; the sets are: {', '.join(panel)}")
    study = f"; a study, not the defaults: {args.model} {args.trainer}" if args.model or args.trainer else ""
    print(f"machine: {machine()}{study}{f'; seed {args.seed}' if args.seed else ''}")
    print("| " + " | ".join(key.replace("_", " ") for key, _ in COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS), flush=True)
    results = []
    for name in names:
        results.append(run_set(name, panel[name], seed=args.seed, model_settings=args.model,
                               trainer_settings=args.trainer, oracle=not args.no_oracle))
        print(row(results[-1]), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"machine": machine(), "results": results}, f, indent=1)
    worst = {key: min(r[key] for r in results) for key in ("recognised", "worst_class", "diversity")}
    sharpness = [r["sharpness"] for r in results]
    print(f"worst over the sets: recognised {worst['recognised']:.3f}, worst class"
          f" {worst['worst_class']:.3f}, diversity {worst['diversity']:.2f}; sharpness from"
          f" {min(sharpness):.2f} to {max(sharpness):.2f};"
          f" oracle gap {max(r['oracle_gap'] for r in results):.1%} at most;"
          f" {max(r['seconds'] for r in results) / 60:.1f} minutes at most")


if __name__ == "__main__":
    main()
