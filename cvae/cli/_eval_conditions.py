"""`cvae eval` of a model with several conditions: each part measured on samples and in the code."""

from __future__ import annotations

from typing import Any

__all__ = ["condition_figures", "format_conditions"]


def condition_figures(model: Any, train: Any, test: Any, seed: int) -> dict[str, Any]:
    """Fidelity on samples and on real images, leakage into the code, and spread when unset.

    The samples are measured by a `ConditionPredictor` trained here on up to 10,000 of the
    training images (3 epochs): its score on the real test images says how far it can be
    trusted. The leakage is read by a linear probe and by an MLP, which also reads what
    differs in the codes' shape. `cvae eval` prints these, and `cvae train` puts them in the card.
    """
    from cvae.conditions import Continuous
    from cvae.evaluation import condition_fidelity, fit_predictor, latent_leakage, unset_spread

    print(f"measuring each condition: a predictor trained on {min(len(train), 10_000):,} training"
          f" images measures the samples")
    predictor = fit_predictor(train, model.conditions, epochs=3, n=10_000, seed=seed)
    n = min(len(test), 2000)
    figures: dict[str, Any] = {
        "images": n,
        "samples": condition_fidelity(model, test, predictor.measure, n=n, seed=seed),
        "real": condition_fidelity(model, test, predictor.measure, n=n, real=True),
        "leakage": latent_leakage(model, train, test, n=10_000),
        "leakage_mlp": latent_leakage(model, train, test, n=10_000, probe="mlp", seed=seed)}
    if model.condition_dropout:
        figures["unset_spread"] = {part.name: unset_spread(model, test, predictor.measure, part.name,
                                                           n=n, seed=seed)
                                   for part in model.conditions if isinstance(part, Continuous)}
    return figures


def _score(score: dict[str, float]) -> str:
    if "recognised" in score:
        return f"{score['recognised']:.1%} recognised"
    if "r" in score:
        return f"r {score['r']:.3f}, error {score['mae']:.3g}"
    return f"{score['tags_right']:.1%} of tags right"


def format_conditions(figures: dict[str, Any]) -> str:
    """The figures as a table: one row per part, then the spread of each part left unset."""
    names = list(figures["leakage"])
    width = max(len(name) for name in names)
    lines = [f"Conditions, on {figures['images']:,} test images' conditions (asked vs measured):",
             f"  {'part':<{width}}  {'samples':<28}{'real images':<28}from the latent code (linear; MLP)"]
    for name in names:
        leak, mlp = figures["leakage"][name], figures.get("leakage_mlp", {}).get(name)
        code = (f"{leak['accuracy']:.1%}" + (f"; {mlp['accuracy']:.1%}" if mlp else "")
                + f" (chance {leak['chance']:.1%})" if "accuracy" in leak
                else f"R^2 {leak['r2']:.3f}" + (f"; {mlp['r2']:.3f}" if mlp else ""))
        sample = _score(figures["samples"][name]) if name in figures["samples"] else "-"
        lines.append(f"  {name:<{width}}  {sample:<28}{_score(figures['real'][name]):<28}{code}")
    for name, ratio in figures.get("unset_spread", {}).items():
        lines.append(f"  {name} left unset: the samples spread {ratio:.2f} times as widely as the"
                     f" test images")
    return "\n".join(lines)
