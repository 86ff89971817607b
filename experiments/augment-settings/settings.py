"""Does a sampling setting or a likelihood make Fashion-MNIST's few-label synthetic set help?

The guide's few-labels scenario (`benchmarks/augment.py`): 100 images of each class, a
model trained with the defaults, 100 synthetic images of each class, the datasheet's
utility on the 10,000 test images. Here the same model is drawn from at lower
temperatures, and a second model is trained with another likelihood; each set gets its
datasheet (3 seeds of the reference classifier).

    CVAE_DATA=../shared/data python experiments/augment-settings/settings.py [--json out.json]
        [--temperatures 1,0.7,0.5] [--likelihoods continuous-bernoulli] [--guidances 1]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from augment import few_labels  # noqa: E402  (the benchmark's data, exactly)

from cvae import augment  # noqa: E402
from cvae.augmentation._augment import _trained  # noqa: E402  (as augment trains a model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--temperatures", default="1,0.7,0.5")
    parser.add_argument("--likelihoods", default="continuous-bernoulli")
    parser.add_argument("--guidances", default="1", help="guidance weights (the defaults' model: 1)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    train, test, counts = few_labels(0)
    models = {"gaussian (the default)": _trained(train, 0)}
    for likelihood in filter(None, args.likelihoods.split(",")):
        models[likelihood] = _trained(train, 0, likelihood=likelihood)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            settings = [(float(t), float(w)) for t in args.temperatures.split(",")
                        for w in args.guidances.split(",")]
            for t, w in settings:
                model.sampling = {"temperature": t, "guidance": w}
                sheet = augment(model, train, Path(tmp) / f"{len(rows)}", test=test, **counts)
                u = sheet.figures["utility"]
                recognised = [c["recognised"] for c in sheet.figures["classes"]]
                rows.append({"model": name, "temperature": t, "guidance": w, "verdict": sheet.verdict,
                             "memorised": sheet.figures["memorisation"]["rate"],
                             "recognised": sum(recognised) / len(recognised),
                             **{s: (u[s]["accuracy"], u[s]["accuracy_se"]) for s in u}})
                r = rows[-1]
                print(f"| {name} | {t:g} | {w:g} | {r['recognised']:.1%} | "
                      + " | ".join(f"{m:.1%} ± {se:.1%}" for m, se in (r[s] for s in u))
                      + f" | {r['memorised']:.1%} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
