"""Does classifier-free guidance make the defaults' samples of small sets recognisable?

For each set of the small-data panel (`benchmarks/small_data.py`): one model trained as the
panel trains it but without condition dropout (the defaults before guidance) and, beside it,
one trained with condition dropout (`unset="average"`), then both judged as the panel judges
them, the second at several guidance weights.

    CVAE_DATA=../shared/data python experiments/small-data-guidance/study.py \
        --sets fashion-1000,mnist-300 --dropout 0.1 --guidance 0 0.5 1 2 [--json out.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import machine  # noqa: E402
from small_data import accuracy_per_class, sets, shares_of_real, total_variation, train_classifier  # noqa: E402

from cvae import ConditionalVAE, Trainer  # noqa: E402
from cvae.data import VALIDATION_FRACTION, train_test_split  # noqa: E402
from cvae.evaluation import elbo  # noqa: E402
from cvae.evaluation._evaluate import sample_figures  # noqa: E402


def trained(fit, val, seed, **settings):
    torch.manual_seed(seed)
    model = ConditionalVAE.from_data(fit, **settings)
    start = time.perf_counter()
    trainer = Trainer(model, fit, val, seed=seed, verbose=False, progress=False)
    trainer.train()
    return model, trainer, time.perf_counter() - start


@torch.inference_mode()
def judged(model, held_out, clf, real, seed, guidance):
    n = min(100, int(torch.bincount(held_out.labels).min()) // 2 * 2)
    figures = sample_figures(model, held_out, clf, clf.embed, n, seed, {"guidance": guidance})
    samples = model.sample(held_out.labels, 1, generator=torch.Generator().manual_seed(seed),
                           guidance=guidance)
    return {**shares_of_real(figures, real, held_out.class_names),
            "sharpness": total_variation(samples) / total_variation(held_out.images)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="fashion-1000")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--guidance", type=float, nargs="+", default=[0, 0.5, 1, 2])
    parser.add_argument("--no-baseline", action="store_true", help="skip the defaults' model")
    parser.add_argument("--json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    panel, results = sets(), []
    print(f"machine: {machine()}")
    print("| set | model | guidance | recognised | worst class | precision | recall | diversity"
          " | sharpness | nelbo | steps | seconds |")
    print("| --- |" + " ---: |" * 11, flush=True)
    for name in args.sets.split(","):
        train, held_out = panel[name]()
        fit, val = train_test_split(train, VALIDATION_FRACTION, args.seed)
        clf = train_classifier(train)
        real = accuracy_per_class(clf, held_out)
        runs = [] if args.no_baseline else [("no dropout", {"condition_dropout": 0.0}, [0])]
        runs.append((f"dropout {args.dropout:g}", {"condition_dropout": args.dropout, "unset": "average"},
                     args.guidance))
        for label, settings, weights in runs:
            model, trainer, seconds = trained(fit, val, args.seed, **settings)
            nelbo = elbo(model, held_out)["nelbo"]
            for w in weights:
                r = {"set": name, "model": label, "guidance": w, "steps": trainer.global_step,
                     "seconds": seconds, "nelbo": nelbo, **judged(model, held_out, clf, real, args.seed, w)}
                results.append(r)
                print(f"| {name} | {label} | {w:g} | {r['recognised']:.3f} | {r['worst_class']:.3f}"
                      f" ({r['worst_name']}) | {r['precision']:.2f} | {r['recall']:.2f}"
                      f" | {r['diversity']:.2f} | {r['sharpness']:.2f} | {r['nelbo']:.1f} | {r['steps']:,}"
                      f" | {seconds:.0f} |", flush=True)
                if args.json:
                    record = {"machine": machine(), "results": results}
                    Path(args.json).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
