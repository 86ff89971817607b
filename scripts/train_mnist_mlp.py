"""Train the bundled `mnist-mlp` model with the tutorial's exact recipe and write its card.

Recipe: the MLP backbone (794-400-(20, 20) / 30-400-784), BCE(sum) + KLD, Adam lr 1e-3,
batch 128, 100 epochs, on the 60,000 MNIST training images. The card's test figures are
computed by `cvae.evaluation.evaluate` with the defaults of `cvae eval`, so that
`cvae eval mnist-mlp` prints the same numbers. Usage, from the repo root:

    CVAE_DATA=../shared/data python scripts/train_mnist_mlp.py            # train + card
    CVAE_DATA=../shared/data python scripts/train_mnist_mlp.py --card-only
"""

import argparse

import torch
from bundled import command_line, write_card

import cvae
from cvae.hub._layout import HISTORY_NAME
from cvae.training import RunRecord


def train(args, parser):
    train = cvae.load_dataset("mnist", train=True)
    torch.manual_seed(args.seed)
    model = cvae.ConditionalVAE(class_names=train.class_names)
    trainer = cvae.Trainer(model, train, epochs=args.epochs, seed=args.seed, progress=False)
    trainer.train()
    command = command_line("train_mnist_mlp.py", parser, args, ("epochs", "seed", "output"))
    record = RunRecord.of(trainer, command=command, data={"images": len(train)})
    model.save_pretrained(args.output, extra_files={HISTORY_NAME: record.to_json()})


def card(args, parser):
    record = RunRecord.read(args.output)
    epochs, run = len(record.epochs), record.to_dict()["run"]
    # A record written before it kept the command and seed (the bundled model's): the default command.
    command = run.get("command") or command_line("train_mnist_mlp.py", parser, args, ())
    write_card(
        args.output, "mnist-mlp",
        description="The tutorial's conditional VAE for MNIST digits, trained with its exact "
                    "recipe. It ships with the `cvae` package and loads offline.",
        training="Trained on the CPU by this command, from the repository's root:\n\n"
                 f"```\n{command}\n```\n\n"
                 f"MLP backbone, latent size 20, Adam (lr 1e-3), batch 128, {epochs} "
                 f"epochs, seed {run.get('seed', args.seed)}"
                 + (", the loss compiled by torch.compile" if run.get("compiled") else "")
                 + f"; {run['minutes']:.1f} minutes on {run['machine']}, "
                 f"Python {run['python']}.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="cvae/pretrained/mnist-mlp")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--card-only", action="store_true",
                        help="measure the saved model and rewrite its card, without training")
    args = parser.parse_args()
    if not args.card_only:
        train(args, parser)
    card(args, parser)


if __name__ == "__main__":
    main()
