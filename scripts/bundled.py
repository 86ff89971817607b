"""What the scripts that train bundled MNIST models share: the machine line and the card.

The card's test figures are computed by `cvae.evaluation.evaluate` as `cvae eval NAME --full
--float32` computes them (the importance-weighted bound on every test image, in float32 on
every machine), so that command prints the same numbers.
"""

import json
from pathlib import Path

import cvae
from cvae._files import write_text
from cvae.evaluation import evaluate
from cvae.evaluation.classifier import load_classifier
from cvae.hub._card import make_model_card
from cvae.hub._layout import CARD_NAME, HISTORY_NAME

# The tutorial's average training loss per image at these epochs.
TUTORIAL = {1: 162.79, 11: 102.25, 21: 99.71, 51: 97.11, 91: 95.72}


def command_line(script: str, parser, args, options) -> str:
    """The command that trains what `args` train: `script` with each of `options` (names of
    `args`) that differs from the parser's default, for the card and the run's note."""
    parts = [f"CVAE_DATA=../shared/data python scripts/{script}"]
    for dest in options:
        value = getattr(args, dest)
        if value != parser.get_default(dest):
            text = f"'{json.dumps(value)}'" if isinstance(value, dict) else str(value)
            parts.append(f"--{dest.replace('_', '-')} {text}")
    return " ".join(parts)


def write_card(folder, name: str, description: str, training: str, eval_limit=None,
               earlier_losses=(), **eval_kwargs):
    """Measure the model in `folder` on the MNIST test set and write its card beside it.

    `earlier_losses`: the loss curve of the run a fine-tuning started from, which the card's
    curve shows before the fine-tuning's own epochs."""
    model = cvae.ConditionalVAE.from_pretrained(folder)
    history = json.loads(Path(folder, HISTORY_NAME).read_text())["epochs"]
    test = cvae.load_dataset("mnist", train=False)
    if eval_limit:
        test = cvae.LabelledImages(test.images[:eval_limit], test.labels[:eval_limit],
                                   test.class_names)
    r = evaluate(model, test, classifier=load_classifier(),
                 **{"iwae_images": None, "mixed_precision": False, **eval_kwargs})
    print(json.dumps(r, indent=1))
    losses = [*earlier_losses, *(epoch["loss"] for epoch in history)]
    ends = {len(earlier_losses), len(earlier_losses) + 1} if earlier_losses else set()
    epochs = sorted({*TUTORIAL, *ends, len(losses)} & set(range(1, len(losses) + 1)))
    rows = ["| epoch | this model | tutorial |", "| --- | --- | --- |"]
    rows += [f"| {e} | {losses[e - 1]:.2f} | {TUTORIAL.get(e, '')} |" for e in epochs]
    curve = "Average training loss per image, next to the tutorial's"
    if earlier_losses:
        curve += (f" (epochs {len(earlier_losses) + 1} to {len(losses)}: the fine-tuning, whose"
                  f" loss includes the images seen without their label)")
    per_digit = ", ".join(f"{d}: {a:.1%}" for d, a in enumerate(r["sample_accuracy_per_class"]))
    card = make_model_card(
        model, name=name, dataset="mnist", license="cc-by-sa-3.0", description=description,
        metrics={"negative ELBO (nats per image)": r["nelbo"],
                 "reconstruction term, BCE (nats per image)": r["reconstruction"],
                 "KL term (nats per image)": r["kl"],
                 "IWAE bound, k = 100 (nats per image)": r["iwae"],
                 "samples classified as the digit asked for (%)": 100 * r["sample_accuracy"],
                 "Frechet distance, classifier features (real vs real: "
                 f"{r['frechet_distance_real']:.2f})": r["frechet_distance"],
                 f"precision (real vs real: {r['precision_real']:.3f})": r["precision"],
                 f"recall (real vs real: {r['recall_real']:.3f})": r["recall"],
                 f"diversity ratio (real vs real: {r['diversity_real']:.3f})": r["diversity"],
                 f"active latent units (of {r['latent_dim']})": r["active_units"]},
        sections={
            "How the results were measured": f"On the 10,000 MNIST test images by "
                f"`cvae eval {name} --full --float32` (seed 0), which prints these figures; the IWAE "
                f"bound's standard error over the images is {r['iwae_se']:.2f}. Without "
                "`--full`, `cvae eval` measures the bound on 1,000 of the images (in a "
                "minute on a CPU) and prints it with its own standard error. Sample accuracy: "
                "500 samples per digit from the model's own distribution (temperature 1, "
                "sharpness 1, no guidance, whatever setting the model recommends), labelled by "
                f"the bundled MNIST classifier (`cvae/classifiers/mnist-cnn`); per digit: {per_digit}. "
                "Precision, recall and diversity (in the classifier's features): each digit's 500 samples "
                "against 500 of its test images, averaged over digits, beside another 500 test "
                "images of each digit in the samples' place (see the guide, Evaluating a model).",
            "Training data": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), 60,000 training "
                "images, distributed under Creative Commons Attribution-Share Alike 3.0; the "
                "weights are shared under the same licence.",
            "Training": training,
            "Loss curve": curve + ":\n\n" + "\n".join(rows),
        })
    # The card alone: the weights and the training history beside it stay as they are.
    write_text(Path(folder) / CARD_NAME, card)
    print(f"wrote {Path(folder) / CARD_NAME}")
