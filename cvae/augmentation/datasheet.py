"""`Datasheet`: what a synthetic set is, and whether it is any good, as JSON and Markdown.

Its first line is the verdict: whether a classifier trained on the real images and the
synthetic ones beat the same classifier trained on the real images only, on held-out real
images, and for which classes that were given synthetic images it did not. A change counts
where it is more than twice its standard error over the classifier's seeds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Datasheet", "verdict"]

CLEAR = 2.0  # standard errors a difference must exceed to count


def _change(utility: dict[str, Any], key: str, index: int | None = None) -> tuple[float, float]:
    """real+synthetic minus real: the difference of means, and its standard error."""
    a, b = utility["real+synthetic"], utility["real"]
    if index is None:
        return a[key] - b[key], math.hypot(a[f"{key}_se"], b[f"{key}_se"])
    return a[key][index] - b[key][index], math.hypot(a[f"{key}_se"][index], b[f"{key}_se"][index])


def _clear(difference: float, se: float, sign: int) -> bool:
    """Whether `difference` is clearly of `sign` (with one seed, any difference counts)."""
    bound = 0.0 if math.isnan(se) else CLEAR * se
    return sign * difference > bound


def verdict(utility: dict[str, Any], counts: list[int], names: list[str]) -> dict[str, Any]:
    """Whether the synthetic set helped: overall accuracy and the recall of each class.

    It helped where accuracy rose clearly; or, for a set that adds images to some classes
    only (a rare class, say), where the recall of one of them rose clearly and accuracy did
    not clearly fall.

    Returns:
        `helped` (bool), `line` (the sentence), and the classes `helped_classes`,
        `not_helped` (given images, recall not clearly higher) and `hurt` (recall clearly lower).
    """
    difference, se = _change(utility, "accuracy")
    changes = [_change(utility, "recall", c) for c in range(len(names))]
    given = [c for c, n in enumerate(counts) if n > 0]
    helped_classes = [names[c] for c in given if _clear(*changes[c], +1)]
    hurt = [names[c] for c in range(len(names)) if _clear(*changes[c], -1)]
    not_helped = [names[c] for c in given if not _clear(*changes[c], +1) and names[c] not in hurt]
    targeted = len(given) < len(names)
    helped = (
        _clear(difference, se, +1) or targeted and bool(helped_classes) and not _clear(difference, se, -1)
    )
    a, b = utility["real+synthetic"], utility["real"]
    line = (
        f"{'Helped' if helped else 'Did not help'}: accuracy {_with_se(a['accuracy'], a['accuracy_se'])}"
        f" with the synthetic images, {_with_se(b['accuracy'], b['accuracy_se'])} on the real ones"
        f" only ({difference * 100:+.1f} points)"
    )
    if helped_classes:
        line += "; recall rose for " + ", ".join(helped_classes)
    if not_helped:
        line += "; did not help for " + ", ".join(not_helped)
    if hurt:
        line += "; recall fell for " + ", ".join(hurt)
    return {
        "helped": helped,
        "line": line + ".",
        "helped_classes": helped_classes,
        "not_helped": not_helped,
        "hurt": hurt,
    }


def _with_se(value: float, se: float) -> str:
    """`78.0% ± 0.2%`; `78.0%` where there is no standard error (one seed); `–` for no value."""
    return _cell(value) if math.isnan(value) or math.isnan(se) else f"{value:.1%} ± {se:.1%}"


def _cell(value: float, percent: bool = True) -> str:
    if value is None or isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{value:.1%}" if percent else f"{value:.2f}"


@dataclass
class Datasheet:
    """A synthetic set's datasheet: `figures` (everything, as JSON) and its Markdown.

    Attributes:
        path: The folder the set was written to.
        figures: Counts, classes, the model and sampling setting, the per-class table
            (`classes`), `memorisation`, `utility` and `verdict` (see `cvae.augment`).
    """

    path: Path
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """The one-line verdict, or a note that the set was not measured."""
        found = self.figures.get("verdict")
        return found["line"] if found else "Not measured (datasheet=False)."

    def to_json(self) -> str:
        """The figures as indented JSON (NaN written as null)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return json.dumps(clean(self.figures), indent=2, ensure_ascii=False) + "\n"

    def to_markdown(self) -> str:
        """The verdict, then the tables: per class, utility, memorisation, and how it was made."""
        f = self.figures
        lines = [f"# Datasheet: {f['images']} synthetic images", "", f"**{self.verdict}**", ""]
        lines += [
            f"Written as `{f['format']}` in `{f['entry']}/`, drawn by {f['model']} at"
            f" {_setting(f['sampling'])}, seed {f['seed']}."
        ]
        if "utility" in f:
            lines += ["", *_utility_table(f), "", *_class_table(f), "", *_memorised(f)]
        lines += [
            "",
            f"Real images: {f['real_images']} for training, {f['test_images']} held out"
            f" ({f['test_split']}). Classifier: {f['classifier']}.",
        ]
        return "\n".join(lines) + "\n"


def _setting(setting: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in setting.items())


def _utility_table(f: dict[str, Any]) -> list[str]:
    rows = [
        "## Utility: a classifier tested on held-out real images",
        "",
        f"| trained on | accuracy (± SE over {f['seeds']} seeds) |",
        "|---|---|",
    ]
    for name, u in f["utility"].items():
        rows.append(f"| {name} | {_with_se(u['accuracy'], u['accuracy_se'])} |")
    return rows


def _class_table(f: dict[str, Any]) -> list[str]:
    u, sets = f["utility"], ("real", "synthetic", "real+synthetic")
    rows = [
        "## Per class: the synthetic images",
        "",
        "Recognised: the share the real-only classifier (seed 0) calls their class, beside its"
        " recall on held-out real images of the class. Precision, recall and diversity: against"
        " the real training images of the class, in that classifier's features.",
        "",
        "| class | real | synthetic | recognised | on real | precision | recall | diversity | memorised |",
        "|---|" + "---:|" * 8,
    ]
    for row in f["classes"]:
        rows.append(
            f"| {row['name']} | {row['real']} | {row['synthetic']} | {_cell(row['recognised'])} |"
            f" {_cell(row['judge_recall'])} | {_cell(row['precision'])} | {_cell(row['recall'])} |"
            f" {_cell(row['diversity'], False)} | {_cell(row['memorised'])} |"
        )
    rows += [
        "",
        "## Per class: utility",
        "",
        "The recall of the class on held-out real images, of a classifier trained on each set.",
        "",
        "| class | " + " | ".join(sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]
    for c, row in enumerate(f["classes"]):
        cells = [_with_se(u[s]["recall"][c], u[s]["recall_se"][c]) for s in sets]
        rows.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return rows


def _memorised(f: dict[str, Any]) -> list[str]:
    m = f["memorisation"]
    return [
        "## Memorisation",
        "",
        f"{m['rate']:.2%} of the synthetic images are nearer a training image than"
        f" {1 - m['quantile']:.0%} of the real training images are to their nearest other one"
        f" (distance {m['threshold']:.3g} in the classifier's features).",
        "",
        f"![The synthetic images nearest a training image (top) and that image (below)]({m['picture']})",
    ]
