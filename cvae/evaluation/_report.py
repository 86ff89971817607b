"""How `cvae eval` prints its figures: one table, the same for every model."""

from __future__ import annotations

from typing import Any

__all__ = ["format_results"]


def format_results(results: dict[str, Any], likelihood: str) -> str:
    """`cvae.evaluation.evaluate`'s figures as the aligned two-column table that `cvae eval` prints.

    Args:
        results: What `evaluate` returned, with the figures `cvae eval` adds (the model's
            classifier's accuracy, Bayes' rule's).
        likelihood: The label of the model's likelihood, as in "reconstruction (BCE)".

    Returns:
        The table, one figure a line.
    """
    rows = [("negative ELBO (nats/image)", f"{results['nelbo']:.2f}"),
            (f"  reconstruction ({likelihood})", f"{results['reconstruction']:.2f}"),
            ("  KL", f"{results['kl']:.2f}"),
            (f"IWAE bound, k={results['k']}, {results['iwae_images']:,} images, decoded in"
             f" {results['iwae_precision']} (nats/image)",
             f"{results['iwae']:.2f} ± {results['iwae_se']:.2f}"),
            ("reconstruction MSE (per pixel)", f"{results['reconstruction_mse']:.5f}"),
            ("active latent units", f"{results['active_units']} of {results['latent_dim']}")]
    if "classifier_accuracy" in results:
        rows += [("classified by the model's classifier", f"{results['classifier_accuracy']:.2%}")]
    if "bayes_accuracy" in results:
        rows += [(f"classified by Bayes' rule, k={results['bayes_k']}",
                  f"{results['bayes_accuracy']:.2%} in {results['bayes_seconds']:.0f} s")]
    if "sample_accuracy" in results:
        per_class = results["sample_accuracy_per_class"]
        rows += [("samples classified as asked", f"{results['sample_accuracy']:.2%}"),
                 ("  per class", " ".join(f"{a:.1%}" for a in per_class)),
                 ("Frechet distance (classifier features)", f"{results['frechet_distance']:.2f}"),
                 ("  real against real (the floor)", f"{results['frechet_distance_real']:.2f}")]
        for name, what in (("precision", "precision (samples that look real)"),
                           ("recall", "recall (real variety drawn)"),
                           ("diversity", "diversity (sample / real spread)")):
            rows += [(what, f"{results[name]:.3f}"),
                     ("  real against real", f"{results[name + '_real']:.3f}")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
