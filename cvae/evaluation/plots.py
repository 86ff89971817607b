"""Pictures of a model: samples per class, loss curves, and its latent space.

matplotlib is an optional extra (`pip install "torch-cvae[plots]"`), imported only here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from cvae._files import atomic_write
from cvae.data._labelled import LabelledImages
from cvae.images import save_grid
from cvae.models.conditional_vae import ConditionalVAE

__all__ = ["plot_samples", "plot_loss_curves", "plot_latent_space", "plot_sweep"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError('plots need matplotlib: pip install "torch-cvae[plots]"') from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_samples(model: ConditionalVAE, path: str | os.PathLike[str], n_per_class: int = 10,
                 seed: int = 0) -> Path:
    """Write a grid of samples: one row per class, `n_per_class` images each.

    Args:
        model: The model.
        path: The PNG file to write.
        n_per_class: Images per row.
        seed: Seed for the draws.
    """
    images = model.sample(list(range(model.num_classes)), n_per_class,
                          generator=torch.Generator(model.device).manual_seed(seed))
    return save_grid(images, path, nrow=n_per_class, scale=2)


def plot_loss_curves(history: Sequence[dict[str, float]], path: str | os.PathLike[str]) -> Path:
    """Plot the average loss per image by epoch (training, and validation when recorded).

    Args:
        history: `Trainer.train()`'s history (or `training_history.json`).
        path: The PNG file to write.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [h["epoch"] for h in history]
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if all(key in h for h in history):
            ax.plot(epochs, [h[key] for h in history], label=label)
    ax.set(xlabel="epoch", ylabel="loss per image (nats)", title="Loss curves")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


@torch.inference_mode()
def plot_latent_space(model: ConditionalVAE, data: LabelledImages, path: str | os.PathLike[str],
                      max_points: int = 5000) -> Path:
    """Scatter the posterior means of images in 2-D (their first two principal axes), by class.

    In a conditional VAE the label is given to the decoder, so the latent code is free to
    hold style rather than class: well-mixed colours are what a good model shows.

    Args:
        model: The model.
        data: Labelled images.
        path: The PNG file to write.
        max_points: How many images to plot at most.
    """
    plt = _pyplot()
    model.eval()
    x = data.images[:max_points].to(model.device, model.dtype)
    y = data.labels[:max_points].to(model.device)
    mu, _ = model.encode(x, y)
    mu = mu - mu.mean(0)
    points = (mu @ torch.linalg.svd(mu, full_matrices=False).Vh[:2].T).cpu()
    names = model.class_names or [str(c) for c in range(model.num_classes)]
    fig, ax = plt.subplots(figsize=(6, 6))
    cmap = plt.get_cmap("tab10" if model.num_classes <= 10 else "tab20")
    for c in range(model.num_classes):
        mask = (y == c).cpu()
        ax.scatter(points[mask, 0], points[mask, 1], s=3, color=cmap(c % cmap.N), label=names[c])
    ax.set(title="Latent space (posterior means, 2 principal axes)", xlabel="PC 1", ylabel="PC 2")
    ax.legend(markerscale=4, fontsize="small", loc="best")
    return _save(fig, path)


def plot_sweep(rows: Sequence[dict], path: str | os.PathLike[str],
               recommended: dict | None = None, min_precision: float | None = None) -> Path:
    """Write the precision-recall trade-off of a `sweep`: each setting a point, shares of real.

    Only the settings on the frontier (those no other setting beats in both shares) and the
    recommended one are named, so that a large grid stays legible; the sweep's table names
    every point.

    Args:
        rows: `sweep(...)["settings"]`.
        path: The PNG file to write.
        recommended: The row to mark (`sweep(...)["recommended"]`).
        min_precision: The precision share the recommended setting had to reach, drawn as a
            dashed line (`sweep(...)["min_precision"]`).

    Returns:
        The path written.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([r["recall_share"] for r in rows], [r["precision_share"] for r in rows], "o", color="tab:blue")
    named = _frontier(rows)
    if recommended is not None and recommended not in named:
        named.append(recommended)
    for row in named:
        ax.annotate(f"T{row['temperature']:g} s{row['sharpness']:g} w{row['guidance']:g}",
                    (row["recall_share"], row["precision_share"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 3))
    if min_precision is not None:
        ax.axhline(min_precision, color="tab:red", lw=0.8, ls="--",
                   label=f"precision share {min_precision:g}")
    if recommended is not None:
        ax.plot([recommended["recall_share"]], [recommended["precision_share"]], "*", markersize=16,
                color="tab:red", label="recommended")
    if recommended is not None or min_precision is not None:
        ax.legend(loc="lower left")
    ax.axhline(1, color="grey", lw=0.5)
    ax.axvline(1, color="grey", lw=0.5)
    ax.set(title="Sampling settings: precision against recall (shares of real against real)",
           xlabel="recall share (variety drawn)", ylabel="precision share (samples that look real)")
    ax.title.set_fontsize(9)
    return _save(fig, path)


def _frontier(rows: Sequence[dict]) -> list[dict]:
    """The rows that no other row beats: as high in both precision and recall share, higher in one."""
    def beats(other: dict, row: dict) -> bool:
        p, r = other["precision_share"], other["recall_share"]
        return p >= row["precision_share"] and r >= row["recall_share"] and \
            (p, r) != (row["precision_share"], row["recall_share"])

    return [row for row in rows if not any(beats(other, row) for other in rows)]


def _save(fig, path: str | os.PathLike[str]) -> Path:
    fig.tight_layout()
    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=100, format=Path(path).suffix[1:] or "png"))
    finally:
        _pyplot().close(fig)
