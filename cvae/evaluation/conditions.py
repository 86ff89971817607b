"""Measures of a model with several conditions, part by part.

Three questions, each answered per part of `model.conditions`:

- `condition_fidelity`: does a sample show what it was asked for? One sample is drawn for
  each test image's conditions and measured back by `measure` (a function of images, such
  as `benchmarks/morphometry.py`, or a `ConditionPredictor` trained on real images): a
  categorical part scores the share recognised as asked, a continuous part the Pearson
  correlation and mean absolute error between asked and measured, a multi-label part the
  share of tags right.
- `latent_leakage`: does the latent code carry the condition? It should not: the code
  carries the style, the condition the rest. A probe (linear, or an MLP) is fitted from the
  posterior means of training images to each part and scored on test images: accuracy
  against chance (the commonest class), or R^2.
- `unset_spread`: does leaving a part unset give samples that vary in it as the data do?
  The standard deviation of the measured part over samples with it unset, as a share of
  the same measure over real images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from cvae.conditions import Categorical, Continuous, MultiLabel
from cvae.data import LabelledData, as_labelled
from cvae.models import ConditionalVAE

__all__ = ["PROBES", "Measure", "condition_fidelity", "latent_leakage", "unset_spread"]

#: Measures images `(N, C, H, W)`: part name -> `(N,)` values (a continuous part), `(N,)`
#: class indices or `(N, K)` scores (a categorical part), `(N, K)` 0/1 or scores (tags).
Measure = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def _table(model: ConditionalVAE, data: LabelledData, n: int | None) -> tuple[Any, torch.Tensor]:
    data = as_labelled(data)
    if model.conditions.is_single:
        raise ValueError("these measures are for a model with several conditions; for one label,"
                         " use cvae.evaluation.sample_accuracy")
    model.match_conditions(data.conditions, data.class_names, "test")
    return data, data.labels[:n].cpu()


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12))


def _compare(part: Any, asked: torch.Tensor, measured: torch.Tensor) -> dict[str, float]:
    """The part's score, over the rows where it was asked (not NaN)."""
    known = ~torch.isnan(asked).any(1)
    asked, measured = asked[known], measured[known.to(measured.device)].cpu()
    if isinstance(part, Categorical):
        predicted = measured.argmax(1) if measured.dim() == 2 else measured.long()
        return {"recognised": float((predicted == asked[:, 0].long()).double().mean())}
    if isinstance(part, MultiLabel):
        return {"tags_right": float(((measured > 0.5).double() == asked.double()).double().mean())}
    values = measured.double().flatten()
    return {"r": _pearson(asked[:, 0], values), "mae": float((values - asked[:, 0].double()).abs().mean())}


@torch.inference_mode()
def condition_fidelity(model: ConditionalVAE, data: LabelledData, measure: Measure, *,
                       n: int | None = 2000, seed: int = 0, real: bool = False,
                       **sampling: Any) -> dict[str, dict[str, float]]:
    """How faithfully samples show the conditions asked for, part by part.

    Args:
        model: A model with several conditions.
        data: Test images with their conditions; their first `n` rows are asked for, one
            sample each (rows where a part is missing leave it unset, and do not score it).
        measure: Measures the samples (`Measure`); parts it does not return are left out.
        n: How many rows; `None`: all.
        seed: Seed of the samples.
        real: Measure the real images instead of samples: how far `measure` itself can be
            trusted (the figures that samples may reach).
        **sampling: `temperature`, `sharpness`, `guidance` for `sample`.

    Returns:
        Part name -> `{"recognised"}` (categorical), `{"r", "mae"}` (continuous) or
        `{"tags_right"}` (multi-label).
    """
    data, table = _table(model, data, n)
    images = (data.images[:n] if real else
              model.sample(table, 1, generator=torch.Generator().manual_seed(seed), **sampling))
    measured = measure(images)
    schema = model.conditions
    return {part.name: _compare(part, table[:, schema.columns(part.name)], measured[part.name])
            for part in schema if part.name in measured}


def _standardised(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    return (train - mean) / std, (test - mean) / std


def _logistic(x: torch.Tensor, y: torch.Tensor, classes: int) -> torch.nn.Linear:
    """A multinomial logistic regression from `x` to `y`, fitted by L-BFGS (lightly L2-regularised)."""
    probe = torch.nn.Linear(x.shape[1], classes).double()
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(probe(x), y) + 1e-4 * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return probe


PROBES = ("linear", "mlp")
"""What `latent_leakage` reads the code with: a linear probe, or a two-layer MLP (256 units each)."""


def _mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out[:, 0], target)


def _mlp(x: torch.Tensor, target: torch.Tensor, outputs: int,
         loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], seed: int,
         epochs: int = 60) -> Callable[[torch.Tensor], torch.Tensor]:
    """A two-layer MLP with `outputs` outputs fitted to `target` by `loss`, Adam, batches of 128."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the probe's initial weights leave the caller's RNG alone
        torch.manual_seed(seed)
        probe = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, outputs)).double()
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(128):
            optimizer.zero_grad()
            loss(probe(x[idx]), target[idx]).backward()
            optimizer.step()
    return probe.requires_grad_(False)


def _r2(y_test: torch.Tensor, fitted: torch.Tensor) -> dict[str, float]:
    residual = (y_test - fitted).pow(2).sum() / (y_test - y_test.mean()).pow(2).sum().clamp(min=1e-12)
    return {"r2": float(1 - residual)}


def _probe_score(part: Any, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor,
                 y_test: torch.Tensor, probe: str, seed: int) -> dict[str, float]:
    if isinstance(part, Continuous):  # scored by R^2 on the test codes
        if probe == "mlp":
            mean, std = y[:, 0].mean(), y[:, 0].std().clamp(min=1e-12)
            fit = _mlp(x, (y[:, 0] - mean) / std, 1, _mse, seed)
            return _r2(y_test[:, 0], fit(x_test)[:, 0] * std + mean)
        design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
        weights = torch.linalg.lstsq(design, y.double()).solution
        return _r2(y_test, torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x.dtype)], 1) @ weights)
    if isinstance(part, MultiLabel):
        if probe == "mlp":  # one probe for every tag
            guessed = _mlp(x, y, y.shape[1], F.binary_cross_entropy_with_logits, seed)(x_test) > 0
        else:
            guessed = torch.stack([_logistic(x, y[:, c].long(), 2)(x_test).argmax(1)
                                   for c in range(y.shape[1])], 1)
        commonest = torch.maximum(y_test.mean(0), 1 - y_test.mean(0))
        return {"accuracy": float((guessed.double() == y_test).double().mean()),
                "chance": float(commonest.mean())}
    labels, labels_test = y[:, 0].long(), y_test[:, 0].long()
    classes = part.num_classes
    fit = (_mlp(x, labels, classes, F.cross_entropy, seed) if probe == "mlp"
           else _logistic(x, labels, classes))
    right = float((fit(x_test).argmax(1) == labels_test).double().mean())
    chance = torch.bincount(labels_test, minlength=classes).max() / len(labels_test)
    return {"accuracy": right, "chance": float(chance)}


def latent_leakage(model: ConditionalVAE, train: LabelledData, test: LabelledData, *,
                   n: int | None = 10_000, probe: str = "linear",
                   seed: int = 0) -> dict[str, dict[str, float]]:
    """How well each part can be predicted from the latent code, by a probe.

    The probe maps the posterior means of up to `n` training images (encoded with their
    own conditions) to each part, and is scored on up to `n` test images: accuracy and
    chance (the share of the commonest class; for tags, averaged over tags) for a
    categorical or multi-label part, R^2 for a continuous one. Near chance, and R^2 near 0,
    mean the code leaves the part to the condition, as it should. A linear probe reads
    what the codes' means tell apart; an MLP also reads what differs in their shape: on
    `mnist-morpho` it reads the digit 56.0% of the time where the linear probe reads 13.7%.

    Args:
        model: A model with several conditions.
        train: Images the probe is fitted on, with their conditions.
        test: Images it is scored on.
        n: How many images of each; `None`: all.
        probe: `"linear"` (logistic regression, or least squares for a continuous part) or
            `"mlp"` (two hidden layers of 256, Adam, 60 passes).
        seed: Seed of the MLP's initial weights and order.

    Returns:
        Part name -> `{"accuracy", "chance"}` or `{"r2"}`.

    Raises:
        ValueError: If `probe` is not one of `PROBES`, or the model has one label.
    """
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {list(PROBES)}, got {probe!r}")
    (train_data, train_table), (test_data, test_table) = _table(model, train, n), _table(model, test, n)
    with torch.no_grad():  # not inference mode: the probes are fitted by autograd on these
        codes = [model.encode(d.images[:n].to(model.device), t.to(model.device))[0].double().cpu()
                 for d, t in ((train_data, train_table), (test_data, test_table))]
    x, x_test = _standardised(*codes)
    scores = {}
    for part in model.conditions:
        cols = model.conditions.columns(part.name)
        y, y_test = train_table[:, cols].double(), test_table[:, cols].double()
        keep, keep_test = ~torch.isnan(y).any(1), ~torch.isnan(y_test).any(1)
        scores[part.name] = _probe_score(part, x[keep], y[keep], x_test[keep_test], y_test[keep_test],
                                         probe, seed)
    return scores


@torch.inference_mode()
def unset_spread(model: ConditionalVAE, data: LabelledData, measure: Measure, part: str, *,
                 n: int | None = 2000, seed: int = 0, **sampling: Any) -> float:
    """The spread of a continuous part over samples that leave it unset, as a share of the data's.

    `n` test rows, drawn at random with `seed` (the first rows of a set need not spread as
    the set does: MNIST's first 2,000 test digits' thickness spreads 0.86 times as widely as
    all 10,000's), are asked for with `part` unset (the others as they are); the standard
    deviation of `measure(samples)[part]` is divided by that of `measure(real images)[part]`
    over the same rows. 1 means the samples vary in the part as the data do.
    `**sampling` (`temperature`, ...) goes to `sample`: at a temperature below 1 the samples
    vary less, by design.

    Raises:
        ValueError: If `part` is not a continuous part of the model.
    """
    data, table = _table(model, data, None)
    if not isinstance(model.conditions[part], Continuous):
        raise ValueError(f"unset_spread measures a continuous part; {part!r} is"
                         f" {model.conditions[part].kind}")
    rows = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))[:n]
    table = table[rows].clone()
    table[:, model.conditions.columns(part)] = float("nan")
    samples = model.sample(table, 1, generator=torch.Generator().manual_seed(seed), **sampling)
    spread = measure(samples)[part].double().std()
    return float(spread / measure(data.images[rows])[part].double().std().clamp(min=1e-12))
