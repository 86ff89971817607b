"""The figures in the bundled models' cards, for the tests that check them."""

import re

import cvae

NELBO, IWAE = "negative ELBO (nats per image)", "IWAE bound, k = 100 (nats per image)"
ACCURACY = "samples classified as the digit asked for (%)"


def diversity_rows(results):
    """The card rows of the Frechet distance, precision, recall, diversity and active units,
    as `evaluate` gives them."""
    return {"Frechet distance, classifier features (real vs real: "
            f"{results['frechet_distance_real']:.2f})": results["frechet_distance"],
            f"precision (real vs real: {results['precision_real']:.3f})": results["precision"],
            f"recall (real vs real: {results['recall_real']:.3f})": results["recall"],
            f"diversity ratio (real vs real: {results['diversity_real']:.3f})": results["diversity"],
            f"active latent units (of {results['latent_dim']})": results["active_units"]}


def card_metrics(name):
    """The figures in a bundled model's card, by name."""
    card = (cvae.hub.BUNDLED_DIR / name / "README.md").read_text()
    return {key: float(value) for key, value in
            re.findall(r"^\| (.+?) \| ([\d.]+) \|$", card, re.MULTILINE)}
