"""Would a sharpness setting lift the variety of the defaults' samples of small digit sets?

On the small-data panel the defaults' samples of mnist-300 and mnist-1000 vary less than real
digits do (diversity 0.76 and 0.86 of real in the judge's features), at every guidance
weight (experiments/per-class-guidance/). The Bernoulli decoder's mean is a grey, soft
digit; the bundled `mnist-conv` recommends sharpness 2 (its logits doubled), which raised
its recall. For each set named, a model is trained as the panel trains it, its guidance
weight chosen as `cvae train` chooses it, then the panel's judge measures the samples at
each sharpness (and temperature) asked for, the guidance kept: recognised and the worst
class (shares of real), precision, recall and diversity (shares of real against real), and
the samples' total variation over real images'.

    CVAE_DATA=../shared/data python experiments/small-data-sharpness/study.py \
        --sets mnist-300,mnist-1000,mnist-3000 --sharpness 1 1.5 2 3 --temperature 1
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import small_data  # noqa: E402  (the panel's sets and judge)
from common import machine  # noqa: E402

from cvae.evaluation import choose_guidance, evaluate  # noqa: E402


def study(name, sharpnesses, temperatures):
    train, held_out = small_data.sets()[name]()
    model, fitted = small_data.train_defaults(train)
    guidance = choose_guidance(model, fitted, seed=0)["chosen"]
    judge = small_data.train_classifier(train)
    real = small_data.accuracy_per_class(judge, held_out)
    n = min(100, int(torch.bincount(held_out.labels).min()) // 2 * 2)
    print(f"== {name} ({model.config['likelihood']}), guidance {guidance:g}", flush=True)
    for temperature in temperatures:
        for sharpness in sharpnesses:
            setting = {"temperature": temperature, "sharpness": sharpness, "guidance": guidance}
            figures = evaluate(model, held_out, classifier=judge, features=judge.embed, n_per_class=n,
                               k=10, iwae_images=10, seed=0, sampling=setting)
            shares = small_data.shares_of_real(figures, real, held_out.class_names)
            samples = model.sample(held_out.labels, 1, generator=torch.Generator().manual_seed(0), **setting)
            tv = small_data.total_variation(samples) / small_data.total_variation(held_out.images)
            print(f"  temperature {temperature:g} sharpness {sharpness:g}:"
                  f" recognised {shares['recognised']:.3f}"
                  f" worst {shares['worst_class']:.3f} ({shares['worst_name']})"
                  f" precision {shares['precision']:.2f} recall {shares['recall']:.2f}"
                  f" diversity {shares['diversity']:.2f} total variation {tv:.2f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", required=True, help="comma-separated panel sets (Bernoulli ones)")
    parser.add_argument("--sharpness", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--temperature", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    print("machine:", machine())
    for name in args.sets.split(","):
        study(name, args.sharpness, args.temperature)
