"""Train the convolutional MNIST model (`mnist-conv`) and write its card.

Recipe: the `"conv"` backbone with two stages of 32 and 64 channels, each a stride-2
convolution then one stride-1 3x3 convolution (`extra_convs=1`), an 896-wide hidden layer
(5.9M parameters, 23.7 MB: the 25 MB weights limit sets the width), latent size 64, the
tutorial's BCE + KLD (Bernoulli likelihood), Adam with lr 1e-3 falling to 0 along a cosine,
the KL weight raised from 0 to 1 over the first 5 epochs, batch 128, 67 epochs, on the
60,000 MNIST training images; then measured as `cvae eval mnist-conv --full --float32` does.

The design was chosen by `experiments/conv-design/conv_candidates.sh`, which trains designs side by side on
one GPU and measures each: against the 0.2 design (no stride-1 convolutions, a 960-wide
layer, latent size 32), the stride-1 convolutions at full resolution lowered the bound
most; latent size 64 over 32 helped a little more. On a GPU the first bundled weights took
4.4 minutes (an H200 shared with three other designs); on a 2-core AMD EPYC with AVX-512
BF16 an epoch takes about 42 seconds.

The bundled weights since then are those, fine-tuned for 10 epochs with condition dropout
0.05 (`--init`), so that the model samples with guidance; the card says both commands.
Usage, from the repo root:

    CVAE_DATA=../shared/data python scripts/train_mnist_conv.py --device cuda
    CVAE_DATA=../shared/data python scripts/train_mnist_conv.py --init mnist-conv \
        --condition-dropout 0.05 --trainer '{"lr": 2e-4, "warmup_epochs": 0}' --epochs 10
    CVAE_DATA=../shared/data python scripts/train_mnist_conv.py --card-only
    # then the recommended setting, into the config and the card (after the card: --card-only
    # writes the card anew, without it); a bundled folder is not cvae eval's to write
    cp -r cvae/pretrained/mnist-conv /tmp/mc && CVAE_DATA=../shared/data cvae eval /tmp/mc --sweep \
        --temperature 1 1.05 1.1 0.8 --sharpness 1 1.5 1.75 2 --guidance 0 0.1 0.25 0.5 \
        --samples-per-class 400 --recommend \
        && cp /tmp/mc/config.json /tmp/mc/README.md /tmp/mc/sweep.png cvae/pretrained/mnist-conv/
    # a smoke test: a few images, a quick measure, into another folder
    python scripts/train_mnist_conv.py --epochs 1 --limit 256 --eval-limit 100 -o /tmp/conv \
        --checkpoints /tmp/conv-checkpoints
"""

import argparse
import json
from pathlib import Path

import torch
from bundled import command_line, write_card

import cvae
from cvae.hub import training_record
from cvae.hub._layout import HISTORY_NAME
from cvae.training import RunRecord

RECIPE = {"channels": [32, 64], "hidden_dim": 896, "extra_convs": 1}
LATENT_DIM = 64
TRAINER = {"lr": 1e-3, "lr_schedule": "cosine", "warmup_epochs": 5, "batch_size": 128}
# The options that change what is trained, in the command the run's note and card record.
OPTIONS = ("device", "epochs", "seed", "limit", "latent_dim", "recipe", "trainer", "output",
           "condition_dropout", "unset", "init")


def train(args, parser):
    data = cvae.load_dataset("mnist", train=True)
    if args.limit:
        data = cvae.LabelledImages(data.images[:args.limit], data.labels[:args.limit],
                                   data.class_names)
    torch.manual_seed(args.seed)
    model = cvae.ConditionalVAE(latent_dim=args.latent_dim, backbone="conv",
                                backbone_kwargs={**RECIPE, **args.recipe}, class_names=data.class_names,
                                condition_dropout=args.condition_dropout, unset=args.unset)
    earlier = None
    if args.init:
        # Fine-tuning: the same network, its weights taken from a trained one (condition
        # dropout adds no weights, so the bundled model's fit a guiding model's).
        model.load_state_dict(cvae.ConditionalVAE.from_pretrained(args.init).state_dict())
        earlier = earlier_run(args.init, parser)
    size = sum(p.numel() for p in model.parameters())
    print(f"mnist-conv: {size:,} parameters, {size * 4 / 1e6:.1f} MB in float32 (at most 25 MB)")
    settings = {**TRAINER, "warmup_epochs": min(TRAINER["warmup_epochs"], args.epochs), **args.trainer}
    trainer = cvae.Trainer(model, data, epochs=args.epochs, seed=args.seed, device=args.device,
                           progress=False, checkpoint_dir=args.checkpoints, resume=True, **settings)
    trainer.train()
    record = RunRecord.of(trainer, settings=settings,
                          data={"images": len(data), **({"init": earlier} if earlier else {})},
                          command=command_line("train_mnist_conv.py", parser, args, OPTIONS))
    # CPU copies of the weights, wherever it trained
    model.save_pretrained(args.output, extra_files={HISTORY_NAME: record.to_json()})


def earlier_run(name: str, parser) -> dict:
    """What trained the weights a fine-tuning starts from: its command, settings and loss curve."""
    written = training_record(name)  # the file as written, read once
    record = RunRecord.from_dict(written)
    run = record.to_dict()["run"]
    # The minutes the run itself noted (its wall clock), where its epochs' seconds add up to less.
    minutes = written["run"].get("minutes", run["minutes"])
    return {"model": name, "command": run_command(run, parser), "settings": run_settings(run),
            "images": run["images"], "minutes": minutes, "machine": run["machine"],
            "losses": [epoch["loss"] for epoch in record.epochs]}


def run_command(run: dict, parser) -> str:
    # Notes written before they kept the command, seed and settings (the first bundled
    # model's): the run was this command with the recipe's settings and the overrides it noted.
    return run.get("command") or command_line("train_mnist_conv.py", parser, parser.parse_args([]),
                                              ["device"]) + " --device cuda"


def run_settings(run: dict) -> dict:
    return run.get("settings") or {**TRAINER, **run.get("trainer", {})}


def in_words(settings: dict) -> str:
    """The Trainer settings of a run, as the card says them."""
    rest = dict(settings)
    lr, schedule = rest.pop("lr"), rest.pop("lr_schedule")
    warmup = rest.pop("warmup_epochs")
    text = (f"Adam (lr {lr:g}{', cosine to 0' if schedule == 'cosine' else ''}), "
            + (f"KL warm-up over {warmup:g} epoch{'' if warmup == 1 else 's'}" if warmup else "no KL warm-up")
            + f", batch {rest.pop('batch_size')}")
    return text + (f", other Trainer settings {json.dumps(rest)}" if rest else "")


def card(args, parser):
    record = RunRecord.read(args.output)
    config = json.loads(Path(args.output, "config.json").read_text())  # what was trained
    run = record.to_dict()["run"]
    earlier = run.get("init")
    here = f"```\n{run_command(run, parser)}\n```"
    design = (f"Conv backbone {json.dumps(config['backbone_kwargs'])}, latent size"
              f" {config['latent_dim']}, ")
    if earlier:
        dropout = config.get("condition_dropout") or 0
        training = (f"Trained in two runs, from the repository's root. First from a random"
                    f" initialisation, by this command (the earlier `{earlier['model']}`, in the"
                    f" repository's history):\n\n```\n{earlier['command']}\n```\n\n{design}"
                    f"{in_run(earlier, len(earlier['losses']))}\n\nThen fine-tuned from those"
                    f" weights"
                    + (f" with condition dropout {dropout:g} (that share of the images seen"
                       f" without their label, so that the model also decodes without one, for"
                       f" sampling with guidance)" if dropout else "")
                    + f":\n\n{here}\n\n{in_run(run, len(record.epochs))}")
    else:
        training = (f"Trained by this command, from the repository's root:\n\n{here}\n\n{design}"
                    f"{in_run(run, len(record.epochs))}")
    quick = {"eval_limit": args.eval_limit, "k": 5, "n_per_class": 10} if args.eval_limit else {}
    write_card(
        args.output, "mnist-conv",
        description="A convolutional conditional VAE for MNIST digits, better than the "
                    "tutorial's MLP on every measure below. It ships with the `cvae` package "
                    "and loads offline.",
        training=training, earlier_losses=earlier["losses"] if earlier else (), **quick)


def in_run(run: dict, epochs: int) -> str:
    """A run's settings, length and machine, as the card says them."""
    return (f"{in_words(run_settings(run))}, {epochs} epoch{'' if epochs == 1 else 's'} on"
            f" {run['images']} images" + (f", seed {run['seed']}" if "seed" in run else ", seed 0")
            + (", the loss compiled by torch.compile" if run.get("compiled") else "")
            + f"; {run['minutes']:.1f} minutes on {run['machine']}"
            + (f", Python {run['python']}" if run.get("python") else "") + ".")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="cvae/pretrained/mnist-conv")
    parser.add_argument("--epochs", type=int, default=67)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoints", default="runs/mnist-conv/checkpoints",
                        help="checkpoint folder; a killed run started again goes on from it")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    parser.add_argument("--eval-limit", type=int, default=None,
                        help="a quick measure on the first N test images (not for the card)")
    parser.add_argument("--latent-dim", type=int, default=LATENT_DIM)
    parser.add_argument("--condition-dropout", type=float, default=0.0,
                        help="share of images trained without their label, for sampling with"
                             " guidance (0.1 for a model that guides)")
    parser.add_argument("--unset", choices=["average", "free"], default=None,
                        help="what a dropped label trains (ConditionalVAE's unset; default: average)")
    parser.add_argument("--init", default=None,
                        help="start from this model's weights (a folder or a bundled name) instead of"
                             " a random initialisation: a fine-tuning run")
    parser.add_argument("--recipe", type=json.loads, default={},
                        help="JSON settings of the conv backbone that replace the recipe's, to try"
                             " another design")
    parser.add_argument("--trainer", type=json.loads, default={},
                        help="JSON settings of the Trainer that replace the recipe's (beta,"
                             " free_bits, batch_size, lr, ...), to try another recipe")
    parser.add_argument("--train-only", action="store_true", help="train, without the card")
    parser.add_argument("--card-only", action="store_true",
                        help="measure the saved model and rewrite its card, without training")
    args = parser.parse_args()
    if not args.card_only:
        train(args, parser)
    if not args.train_only:
        card(args, parser)


if __name__ == "__main__":
    main()
