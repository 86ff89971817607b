"""Model cards: the README.md beside a model's weights, with metadata the Hub understands."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from torch import nn

__all__ = ["make_model_card"]


def _slug(text: str) -> str:
    """A metric id for the Hub's `model-index`: lower case, words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_model_card(model: nn.Module, *, name: str | None = None,
                    description: str | None = None, dataset: str | None = None,
                    license: str | None = None, metrics: Mapping[str, float] | None = None,
                    sections: Mapping[str, str] | None = None, split: str = "test") -> str:
    """Markdown for a model card with metadata the Hub understands.

    Args:
        model: The model the card describes (its `config` and parameters).
        name: How users load it (a bundled name or a Hub repo id), for the usage snippet.
        description: A paragraph under the title.
        dataset: The dataset it was trained on, as a Hub dataset id (for example `"mnist"`).
        license: The licence of the weights, as a Hub licence id (for example `"cc-by-sa-3.0"`).
        metrics: Figures measured on held-out images, shown in a table.
        sections: More sections, `{heading: markdown}`, appended in order.
        split: Which split `metrics` were measured on: `"test"`, or `"held-out"` for a
            share held out of data without a test split.

    Returns:
        The card, YAML front matter first.
    """
    from huggingface_hub import EvalResult, ModelCardData

    cfg = model.config  # type: ignore[attr-defined]
    # The Hub reads test-set figures from `model-index`; the table below repeats them.
    results = [EvalResult(task_type="image-generation", dataset_type=dataset, dataset_name=dataset,
                          dataset_split=split, metric_type=_slug(key), metric_name=key,
                          metric_value=value if isinstance(value, int) else round(float(value), 4))
               for key, value in (metrics or {}).items()] if dataset else None
    data = ModelCardData(library_name="cvae", license=license, model_name=name or "cvae-model",
                         datasets=[dataset] if dataset else None, eval_results=results or None,
                         tags=["cvae", "conditional-vae", "image-generation", "pytorch"])
    load = name or "path/to/this/folder"
    # Sampling by name, where there are names: an index depends on the classes' order.
    first = json.dumps(cfg["class_names"][0], ensure_ascii=False) if cfg["class_names"] else "0"
    lines = [
        f"---\n{data.to_yaml()}\n---\n",
        f"# {name or 'cvae model'}\n",
        description or "A conditional variational autoencoder made with "
        "[torch-cvae](https://pypi.org/project/torch-cvae/).",
        "",
        "## Usage\n",
        "```python",
        "from cvae import ConditionalVAE\n",
        f'model = ConditionalVAE.from_pretrained("{load}")',
        f"images = model.sample({_sample_arguments(cfg, first)})  # {(16, *cfg['image_shape'])},"
        " values in [0, 1]",
        "```\n",
        "## Architecture\n",
        f"- backbone: `{cfg['backbone']}` {json.dumps(cfg['backbone_kwargs'])}",
        _conditions_line(cfg),
        f"- latent size: {cfg['latent_dim']}",
        f"- likelihood: `{cfg['likelihood']}`",
        *_prior_line(cfg),
        *_sampling_line(cfg),
        f"- parameters: {sum(p.numel() for p in model.parameters()):,}",
        "",
    ]
    if metrics:
        lines += ["## Results\n", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {value if isinstance(value, int) else f'{value:.2f}'} |"
                  for key, value in metrics.items()]
        lines.append("")
    for heading, text in (sections or {}).items():
        lines += [f"## {heading}\n", text.strip(), ""]
    return "\n".join(lines)


def _sample_arguments(cfg: Mapping[str, Any], first: str) -> str:
    """`sample`'s arguments in the card's example: the first class, by part name if there are several."""
    parts = cfg.get("conditions") or []
    if len(parts) < 2:
        return f"{first}, n=16"
    named = next((p for p in parts if p["kind"] == "categorical"), None)
    return f"n=16, {named['name']}={first}" if named else "n=16"


def _prior_line(cfg: Mapping[str, Any]) -> list[str]:
    """The architecture's line on a fitted prior, which samples draw codes from; none for N(0, I)."""
    if cfg.get("prior") != "fitted":
        return []
    whose = "all the" if len(cfg.get("conditions") or []) > 1 else "each class's"
    return [f"- prior for sampling: `fitted`, a Gaussian fitted to {whose} training codes"
            ' (`sample(..., prior="standard")` draws from N(0, I))']


def _sampling_line(cfg: Mapping[str, Any]) -> list[str]:
    """The architecture's line on condition dropout and the setting `sample()` uses; none without them."""
    lines = []
    if cfg.get("condition_dropout"):
        lines.append(f"- condition dropout: {cfg['condition_dropout']:g} (unset: `{cfg.get('unset')}`),"
                     " so `sample(..., guidance=w)` can guide"
                     + (": a part left unset takes a training image's value" if cfg.get("unset") == "data"
                        else ""))
    if cfg.get("independence"):
        lines.append(f"- independence: {cfg['independence']:g}, the weight of a penalty on the latent"
                     " code's correlation with the conditions in training")
    if cfg.get("centre_codes"):
        lines.append("- codes centred on their conditions: what a linear function of the conditions"
                     " predicts of the latent code, fitted when training ended, is taken out of it"
                     " and added back before the decoder")
    if cfg.get("sampling"):
        setting = ", ".join(f"{key} {value:g}" for key, value in cfg["sampling"].items())
        lines.append(f"- sampling: {setting} where a call sets none (`cvae eval --sweep --recommend`"
                     " measures others)")
    return lines


def _conditions_line(cfg: Mapping[str, Any]) -> str:
    """The architecture's line on what the model is conditioned on: its classes, or its parts."""
    parts = cfg.get("conditions") or []
    if len(parts) < 2:
        return (f"- image shape: {tuple(cfg['image_shape'])}, classes: {cfg['num_classes']}"
                + (f" ({', '.join(cfg['class_names'])})" if cfg["class_names"] else ""))
    return (f"- image shape: {tuple(cfg['image_shape'])}, conditioned on "
            + ", ".join(f"{p['name']} ({p['kind']})" for p in parts))
