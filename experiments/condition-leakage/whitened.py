"""Is the digit an MLP reads from `mnist-morpho`'s code in each digit's mean and spread, or deeper?

Encodes 10,000 training and 10,000 test digits with their own conditions (posterior means,
as `cvae.evaluation.latent_leakage` does), then, before the probes read them, moves each
digit's codes by that digit's mean over the training codes (`mean`), or also whitens them
by its covariance (`mean+cov`: each digit's codes then have mean 0 and covariance I).
Anything a probe still reads after `mean+cov` lies beyond the first two moments: no
penalty on class means or covariances (the library's `independence=`, a per-class moment
match) and no class-conditional Gaussian prior could take it away. The probes are the
library's own (linear: logistic regression; MLP: two hidden layers of 256). Usage, from
the repository's root:

    CVAE_DATA=../shared/data python experiments/condition-leakage/whitened.py [MODEL]
"""

import argparse
import sys
from pathlib import Path

import torch

import cvae
from cvae.evaluation.conditions import _probe_score, _standardised, _table

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]
from train_morpho_mnist import morpho_mnist  # noqa: E402

N = 10_000


def moves(codes: torch.Tensor, digits: torch.Tensor, whiten: bool) -> dict:
    """Each digit's mean and linear map (its whitening, or the identity), from its training codes."""
    eye = torch.eye(codes.shape[1], dtype=codes.dtype)
    out = {}
    for k in digits.unique().tolist():
        mine = codes[digits == k]
        linear = eye
        if whiten:
            values, vectors = torch.linalg.eigh(torch.cov(mine.T) + 1e-6 * eye)
            linear = vectors @ torch.diag(values.rsqrt()) @ vectors.T
        out[k] = (mine.mean(0), linear)
    return out


def moved(codes: torch.Tensor, digits: torch.Tensor, by: dict | None) -> torch.Tensor:
    """`codes` moved by their digit's mean and linear map; as they are where `by` is None."""
    if by is None:
        return codes
    out = torch.empty_like(codes)
    for k, (shift, linear) in by.items():
        mine = digits == k
        out[mine] = (codes[mine] - shift) @ linear.T
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="mnist-morpho")
    args = parser.parse_args()
    model = cvae.ConditionalVAE.from_pretrained(args.model)
    (train, train_table), (test, test_table) = (_table(model, morpho_mnist(t), N) for t in (True, False))
    with torch.no_grad():
        codes = [model.encode(data.images[:N], table)[0].double()
                 for data, table in ((train, train_table), (test, test_table))]
    columns = model.conditions.columns("digit")
    y, y_test = train_table[:, columns].double(), test_table[:, columns].double()
    digits, digits_test = y[:, 0].long(), y_test[:, 0].long()
    print("| codes moved by each digit's | linear probe | MLP probe |\n| --- | ---: | ---: |")
    for mode in ("none", "mean", "mean+cov"):
        by = None if mode == "none" else moves(codes[0], digits, whiten=mode == "mean+cov")
        x, x_test = _standardised(moved(codes[0], digits, by), moved(codes[1], digits_test, by))
        part = model.conditions["digit"]
        read = [_probe_score(part, x, y, x_test, y_test, probe, 0) for probe in ("linear", "mlp")]
        print(f"| {mode} | {read[0]['accuracy']:.1%} | {read[1]['accuracy']:.1%} |", flush=True)
    print(f"(chance: {read[0]['chance']:.1%})")


if __name__ == "__main__":
    main()
