"""Train the bundled `mnist-mlp` model with the tutorial's exact recipe and write its card.

Recipe: the MLP backbone (794-400-(20, 20) / 30-400-784), BCE(sum) + KLD, Adam lr 1e-3,
batch 128, 100 epochs, on the 60,000 MNIST training images. Usage, from the repo root:

    CVAE_DATA=../shared/data python scripts/train_mnist_mlp.py [--output cvae/pretrained/mnist-mlp]
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

import cvae
from cvae.classifier import load_classifier
from cvae.hub import make_model_card
from cvae.metrics import sample_accuracy

# The tutorial's average training loss per image at these epochs.
TUTORIAL = {1: 162.79, 11: 102.25, 21: 99.71, 51: 97.11, 91: 95.72}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="cvae/pretrained/mnist-mlp")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = cvae.load_dataset("mnist", train=True)
    test = cvae.load_dataset("mnist", train=False)
    torch.manual_seed(args.seed)
    model = cvae.ConditionalVAE(class_names=train.class_names)
    trainer = cvae.Trainer(model, train, epochs=args.epochs, seed=args.seed, progress=False)
    history = trainer.train()
    test_loss = trainer.evaluate(test)
    print(f"====> Test set loss: {test_loss['loss']:.4f}")
    model.eval()
    accuracy = sample_accuracy(model, load_classifier(), n_per_class=500,
                               generator=torch.Generator().manual_seed(0))
    per_digit = ", ".join(f"{d}: {a:.1%}" for d, a in enumerate(accuracy))
    print(f"samples classified as the digit asked for: {sum(accuracy) / 10:.2%} ({per_digit})")

    epochs = sorted({*TUTORIAL, args.epochs} & set(range(1, args.epochs + 1)))
    rows = ["| epoch | this model | tutorial |", "| --- | --- | --- |"]
    rows += [f"| {e} | {history[e - 1]['loss']:.2f} | {TUTORIAL.get(e, '')} |" for e in epochs]
    minutes = sum(h["seconds"] for h in history) / 60
    machine = f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    card = make_model_card(
        model, name="mnist-mlp", dataset="mnist", license="cc-by-sa-3.0",
        description="The tutorial's conditional VAE for MNIST digits, trained with its exact "
                    "recipe. It ships with the `cvae` package and loads offline.",
        metrics={"MNIST test loss (negative ELBO, nats per image)": test_loss["loss"],
                 "MNIST test reconstruction (BCE, nats per image)": test_loss["reconstruction"],
                 "MNIST test KL (nats per image)": test_loss["kl"],
                 "samples classified as the digit asked for (%)": 100 * sum(accuracy) / 10},
        sections={
            "Training data": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), 60,000 training "
                             "images, distributed under Creative Commons Attribution-Share "
                             "Alike 3.0; the weights are shared under the same licence. The "
                             "test figures use the 10,000 test images, one draw of z each.",
            "Training": "Trained on the CPU by this command, from the repository's root:\n\n"
                        "```\nCVAE_DATA=../shared/data python scripts/train_mnist_mlp.py"
                        + ("" if args.epochs == 100 else f" --epochs {args.epochs}")
                        + "\n```\n\n"
                        f"MLP backbone, latent size 20, Adam (lr 1e-3), batch 128, "
                        f"{args.epochs} epochs, seed {args.seed}; {minutes:.1f} minutes on "
                        f"{machine}, Python {sys.version.split()[0]}.",
            "Loss curve": "Average training loss per image, next to the tutorial's:\n\n"
                          + "\n".join(rows),
            "Generated digits": "500 samples per digit (temperature 1.0, seed 0), labelled by "
                                "the bundled MNIST classifier (`cvae/classifiers/mnist-cnn`): "
                                + per_digit + ".",
        })
    model.save_pretrained(args.output, model_card=card)
    Path(args.output, "training_history.json").write_text(json.dumps(history, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
