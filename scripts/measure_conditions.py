"""Measure a model with several conditions part by part, and write its card and guide images.

Shared by `train_morpho_mnist.py` and `train_shapes.py`: each gives the model folder, its
test and training data, and a `measure` (images -> each part measured back). The figures
come from `cvae.evaluation.condition_fidelity`, `latent_leakage` and `unset_spread`.
"""

import json
import sys
from pathlib import Path

import torch

import cvae
from cvae.conditions import Continuous
from cvae.evaluation import condition_fidelity, latent_leakage, load_classifier, unset_spread
from cvae.hub._card import make_model_card
from cvae.hub._layout import CARD_NAME, HISTORY_NAME

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from morphometry import measure as morphometry  # noqa: E402

IMAGES = Path(__file__).parents[1] / "docs" / "images"


def measure_all(model, test, train, measure, n=2000):
    """Every per-part figure: fidelity (at temperature 1, and at the model's recommended
    setting if it has one), on real images, leakage (a linear and an MLP probe), and the
    spread of each continuous part left unset and asked for (at temperature 1, the model's own
    distribution, and at the recommended setting, which `sample()` draws where a call sets none)."""
    own = {"temperature": 1.0, "sharpness": 1.0, "guidance": 0.0}
    figures = {
        "fidelity": condition_fidelity(model, test, measure, n=n, **own),
        "real": condition_fidelity(model, test, measure, n=n, real=True),
        "leakage": latent_leakage(model, train, test, n=10_000),
        "leakage_mlp": latent_leakage(model, train, test, n=10_000, probe="mlp"),
        "unset_spread": {
            p.name: unset_spread(model, test, measure, p.name, n=n, **own)
            for p in model.conditions
            if isinstance(p, Continuous)
        },
    }
    figures["asked_spread"] = {name: asked_spread(model, test, measure, name, n=n, **own)
                               for name in figures["unset_spread"]}
    if model.sampling:
        figures["recommended"] = model.sampling
        figures["fidelity_recommended"] = condition_fidelity(model, test, measure, n=n)
        figures["unset_spread_recommended"] = {name: unset_spread(model, test, measure, name, n=n)
                                               for name in figures["unset_spread"]}
        figures["asked_spread_recommended"] = {name: asked_spread(model, test, measure, name, n=n)
                                               for name in figures["unset_spread"]}
    print(json.dumps(figures, indent=1))
    return figures


@torch.inference_mode()
def asked_spread(model, test, measure, part, n=2000, seed=0, **sampling):
    """The spread of `part` measured on samples asked for every test row's values (none unset),
    over the real images': what the model's own error adds to a spread asked for. The rows
    are those `unset_spread` draws."""
    rows = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n]
    samples = model.sample(test.labels[rows], 1, generator=torch.Generator().manual_seed(seed), **sampling)
    real = measure(test.images[rows])[part].double().std()
    return float(measure(samples)[part].double().std() / real)


def _fidelity_lines(fidelity, real, at):
    lines = []
    for name, score in fidelity.items():
        if "recognised" in score:
            lines.append(
                f"- `{name}`{at}: {score['recognised']:.2%} of samples recognised as asked"
                f" (real test images: {real[name]['recognised']:.2%})"
            )
        elif "r" in score:
            lines.append(
                f"- `{name}`{at}: asked against measured, Pearson r = {score['r']:.3f}, mean"
                f" absolute error {score['mae']:.3g} (real test images: r = {real[name]['r']:.3f})"
            )
        else:
            lines.append(f"- `{name}`{at}: {score['tags_right']:.2%} of tags right")
    return lines


def _spread_lines(unset, asked, at):
    return [f"- `{name}` left unset ({at}): samples spread {ratio:.2f} times as widely as the test"
            f" images" + ("" if name not in asked else f" (asked for each test image's value:"
                                                        f" {asked[name]:.2f} times)")
            for name, ratio in unset.items()]


def figure_lines(figures) -> str:
    """The figures as Markdown bullets, for the card and the guide."""
    lines = _fidelity_lines(figures["fidelity"], figures["real"], " at temperature 1")
    at = ", ".join(f"{k} {v:g}" for k, v in figures.get("recommended", {}).items())
    if "fidelity_recommended" in figures:
        lines += _fidelity_lines(figures["fidelity_recommended"], figures["real"], f" at {at}")
    for name, score in figures["leakage"].items():
        mlp = figures["leakage_mlp"][name]
        said = (
            f"accuracy {score['accuracy']:.1%} (an MLP: {mlp['accuracy']:.1%}) against chance"
            f" {score['chance']:.1%}"
            if "accuracy" in score
            else f"R^2 = {score['r2']:.3f} (an MLP: {mlp['r2']:.3f})"
        )
        lines.append(f"- `{name}` predicted from the latent code by a linear probe: {said}")
    lines += _spread_lines(figures["unset_spread"], figures.get("asked_spread", {}), "temperature 1")
    if "unset_spread_recommended" in figures:
        lines += _spread_lines(figures["unset_spread_recommended"], figures["asked_spread_recommended"], at)
    return "\n".join(lines)


def morpho_measure(images):
    """Digit by the bundled MNIST classifier, thickness and slant by `benchmarks/morphometry.py`."""
    classifier = load_classifier()
    return {"digit": classifier.predict(images.cpu()), **morphometry(images.cpu())}


def morpho_images(model):
    """The guide's pictures: thickness and slant swept for each digit, with one style each."""
    generator = torch.Generator().manual_seed(3)
    z = torch.randn(10, model.latent_dim, generator=generator)
    rows = {"thickness": [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5], "slant": [-30, -20, -10, 0, 10, 20, 30]}
    for name, values in rows.items():
        strips = [
            model.interpolate_classes(
                {"digit": d, name: values[0]}, {name: values[-1]}, steps=len(values), z=z[d],
                generator=torch.Generator().manual_seed(d),  # the part left unset: one training value a row
            )
            for d in range(10)
        ]
        cvae.save_grid(torch.cat(strips), IMAGES / f"morpho-{name}.png", nrow=len(values))
        print(f"wrote {IMAGES / f'morpho-{name}.png'}")


def morpho_card(folder, test, train, temperature=None):
    """Measure the Morpho-MNIST model in `folder`, write its card and the guide's images.

    With `temperature`, it becomes the model's recommended setting (saved in its config),
    which `sample` uses where a call sets none; the card gives the figures at both. A
    temperature of 1 is the model's own distribution: the config then recommends nothing.
    """
    model = cvae.ConditionalVAE.from_pretrained(folder)
    if temperature is not None:
        model.set_sampling(None if temperature == 1 else {"temperature": temperature})
        model.save_pretrained(folder)  # the config gains the setting; the weights stay
    figures = measure_all(model, test, train, morpho_measure)
    history = json.loads(Path(folder, HISTORY_NAME).read_text())
    run, config = history.get("run", {}), model.config
    at = "" if not model.sampling else f" (temperature {model.sampling['temperature']:g})"
    best = figures.get("fidelity_recommended", figures["fidelity"])
    card = make_model_card(
        model,
        name="mnist-morpho",
        dataset="mnist",
        license="cc-by-sa-3.0",
        description="A conditional VAE for MNIST digits conditioned on three parts: the digit, "
        "the stroke thickness (pixels) and the slant (degrees), measured from every "
        "image after Castro et al. 2019 (Morpho-MNIST). Any part can be left unset.",
        metrics={
            f"digit recognised{at} (%)": 100 * best["digit"]["recognised"],
            f"thickness, Pearson r asked vs measured{at}": best["thickness"]["r"],
            f"slant, Pearson r asked vs measured{at}": best["slant"]["r"],
        },
        sections={
            "How the results were measured": "One sample for each of the first 2,000 MNIST test "
            "images' conditions (digit, thickness, slant), seed 0; the digit recognised by the "
            "bundled MNIST classifier, thickness and slant measured by `benchmarks/morphometry.py` "
            "(the same measures on the real test images beside). Leakage: a linear probe, and a "
            "two-layer MLP probe, from the posterior means of 10,000 training images to each part, "
            "scored on 10,000 test images. "
            "Spread: 2,000 test images drawn at random (seed 0), asked for with the part unset, "
            "the part measured on the samples and on the real images. "
            "`sample()` draws at the recommended setting in the config where a call sets none; "
            "`temperature=1.0` draws the model's own distribution. By "
            f"`scripts/train_morpho_mnist.py --card-only`, on a 2-core AMD EPYC:\n\n{figure_lines(figures)}",
            "Training data": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), 60,000 training "
            "images, with thickness and slant measured by `benchmarks/morphometry.py`; "
            "Creative Commons Attribution-Share Alike 3.0, as the weights.",
            "Training": f"`{run.get('command', 'scripts/train_morpho_mnist.py')}`: the "
            f"{config['backbone']} backbone ({json.dumps(config['backbone_kwargs'])}), condition "
            f"dropout {config['condition_dropout']:g} per part (unset: `{config.get('unset')}`), "
            f"independence {config.get('independence', 0):g}"
            f"{', codes centred on the conditions' if config.get('centre_codes') else ''}, "
            f"{len(history['epochs'])} epochs, Adam "
            f"lr 1e-3, batch 128; final training loss {history['epochs'][-1]['loss']:.2f} nats per image "
            "(with the images whose parts were dropped, decoded without them, and the penalty).",
        },
    )
    Path(folder, CARD_NAME).write_text(card)
    morpho_images(model)
    return figures
