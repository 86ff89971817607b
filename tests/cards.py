"""The figures in the bundled models' cards, for the tests that check them."""

import re

import cvae

NELBO, IWAE = "negative ELBO (nats per image)", "IWAE bound, k = 100 (nats per image)"
ACCURACY = "samples classified as the digit asked for (%)"


def card_metrics(name):
    """The figures in a bundled model's card, by name."""
    card = (cvae.hub.BUNDLED_DIR / name / "README.md").read_text()
    return {key: float(value) for key, value in
            re.findall(r"^\| (.+?) \| ([\d.]+) \|$", card, re.MULTILINE)}
