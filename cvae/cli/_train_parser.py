"""`cvae train`'s options: the data, the model, the training and its length, where the run goes."""

from __future__ import annotations

import argparse
from typing import Any

from cvae.cli._options import Formatter, add_data_options, count, fraction, json_object, natural, output
from cvae.cli._train import run_train

__all__ = ["add_train_parser"]


def add_train_parser(sub: Any) -> None:
    """Add the `train` command to the `cvae` command's subparsers `sub`."""
    t = sub.add_parser(
        "train", help="train a model and save it where from_pretrained can load it",
        description="Train a conditional VAE on a labelled dataset with the tutorial's recipe"
                    " (Adam, BCE + KLD) and save config.json, model.safetensors and a model card.",
        epilog="example: cvae train --dataset path/to/folder --output runs/mine\n"
               "on 4 processes: torchrun --nproc_per_node 4 -m cvae.cli train -o runs/mnist",
        formatter_class=Formatter)
    t.set_defaults(func=run_train)
    add_data_options(t, "the dataset to train on (default: mnist)")
    # Most options have no default of their own: unset, they are left out, and the library's
    # signatures decide.
    _model_options(t)
    _length_options(t)
    _objective_options(t)
    _condition_options(t)
    _run_options(t)


def _model_options(t: argparse.ArgumentParser) -> None:
    """`cvae train`'s options on the model's shape: backbone, likelihood, latent size."""
    t.add_argument("--backbone", default=None,
                   help="registered backbone (default: conv for up to {from_data.CONV_UP_TO} images of"
                        " 8x8 pixels or more, else mlp, the tutorial's)")
    t.add_argument("--hidden-dims", type=count, nargs="+", default=None,
                   help="hidden layer widths of the mlp backbone (default: 400)")
    t.add_argument("--backbone-kwargs", type=json_object, default=None, metavar="JSON",
                   help='backbone settings as JSON, for example \'{"channels": [32, 64]}\' for conv')
    t.add_argument("--likelihood", default=None,
                   help="how the decoder scores images: a registered likelihood (see `cvae list`)"
                        " or auto (the default): bernoulli, the tutorial's BCE, for near-binary"
                        " images such as MNIST, gaussian for grey levels and other values")
    t.add_argument("--latent-dim", type=count, default=None,
                   help="latent size (default: {ConditionalVAE.latent_dim})")


def _length_options(t: argparse.ArgumentParser) -> None:
    """`cvae train`'s options on how long to train, and what decides it."""
    t.add_argument("--epochs", type=natural, default=None,
                   help="train exactly this many epochs, on the test (or held-out) split's loss as"
                        " before (default: the data decide: training stops when the loss on"
                        " held-out training images has not improved for --patience epochs, and"
                        " keeps the best epoch's weights)")
    t.add_argument("--patience", type=count, default=None, metavar="EPOCHS",
                   help="epochs without improvement that end the run (default: {stopping.DEFAULT_PATIENCE},"
                        " or as many as span {stopping.PATIENCE_STEPS} optimizer steps where those are"
                        " more)")
    t.add_argument("--min-delta", type=float, default=None, metavar="NATS",
                   help="how much the held-out loss must fall to count as an improvement (default:"
                        " {EarlyStopping.min_delta})")
    t.add_argument("--min-steps", type=natural, default=None,
                   help="without --epochs, do not stop before this many optimizer steps (default:"
                        " {length.FLOOR_STEPS} or {length.FLOOR_EPOCHS} epochs, the more)")
    t.add_argument("--max-steps", type=count, default=None,
                   help="stop before an epoch that would pass this many optimizer steps (default"
                        " without --epochs: {length.CEILING_STEPS} or {length.CEILING_EPOCHS} epochs,"
                        " the more)")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop before an epoch that would pass this many minutes of training")
    t.add_argument("--validation-fraction", type=fraction, default=None, metavar="F",
                   help="without --epochs, the share of each class of the training images held"
                        " out to stop on (default: {splits.VALIDATION_FRACTION})")


def _objective_options(t: argparse.ArgumentParser) -> None:
    """`cvae train`'s options on the optimizer, the objective, and which images train."""
    t.add_argument("--batch-size", type=count, default=None,
                   help="batch size (default: 128; without --epochs, a 16th of the training images"
                        " for fewer than 2,048, at least 16)")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: {optim.DEFAULT_LR})")
    t.add_argument("--lr-schedule", default=None, choices=["constant", "cosine"],
                   help="keep the learning rate, or lower it to 0 along a cosine (default:"
                        " {Trainer.lr_schedule})")
    t.add_argument("--beta", type=float, default=None,
                   help="weight of the KL term (default: {Trainer.beta})")
    t.add_argument("--warmup-epochs", type=float, default=None,
                   help="raise the KL weight from 0 to beta over this many epochs (default:"
                        " {Trainer.warmup_epochs})")
    t.add_argument("--free-bits", type=float, default=None, metavar="NATS",
                   help="nats per latent unit that the KL term does not charge for, against"
                        " posterior collapse (default: {Trainer.free_bits}, the ELBO)")
    t.add_argument("--max-grad-norm", type=float, default=None, metavar="NORM",
                   help="clip the gradients' total norm to NORM before each step (default: no clipping)")
    t.add_argument("--limit", type=count, default=None,
                   help="train on N training images only, drawn from every class in proportion"
                        " with --seed (for quick runs)")
    t.add_argument("--labels-per-class", type=count, default=None, metavar="N",
                   help="keep the labels of N training images of each class (drawn with --seed)"
                        " and train on the rest unlabelled: a semi-supervised model (M2) with a"
                        " classifier of its own (see the guide, Partly labelled data)")
    t.add_argument("--repeat-labelled", type=count, default=1, metavar="R",
                   help="with unlabelled images (--labels-per-class or --unlabelled-folder), put"
                        " each labelled image into an epoch R times (default: 1)")


def _condition_options(t: argparse.ArgumentParser) -> None:
    """`cvae train`'s options on what conditions train, and what samples draw from."""
    t.add_argument("--condition-dropout", type=float, default=None, metavar="P",
                   help="train with the label dropped for this share of the images, so that"
                        " cvae sample --guidance works (0.1 is usual; default:"
                        " {ConditionalVAE.condition_dropout})")
    t.add_argument("--unset", choices=["average", "free", "data"], default=None,
                   help="what a dropped condition trains: 'average' hides it from the decoder only,"
                        " so that a part left unset is drawn as its average and guidance works;"
                        " 'free' hides it from the encoder too, so that the code carries an unset"
                        " part; 'data' (several conditions) trains as 'average' and fills an unset"
                        " part from a training image's (default: average for one label, data for"
                        " several conditions)")
    t.add_argument("--independence", type=float, default=None, metavar="W",
                   help="weight of a penalty on the latent code's correlation with the"
                        " conditions, which keeps them out of the code (default: 0 for one label,"
                        " 1 for several conditions)")
    t.add_argument("--centre-codes", action=argparse.BooleanOptionalAction, default=None,
                   help="several conditions: when training ends, take out of the latent code what a"
                        " linear function of the conditions predicts of it (the decoder adds it"
                        " back: the same images), so that the code carries no linear trace of them"
                        " (default: on for several conditions)")
    t.add_argument("--prior", choices=["fitted", "standard"], default=None,
                   help="what samples draw codes from: 'fitted', a Gaussian fitted to each class's"
                        " training codes when training ends (much better samples from small"
                        " sets), or 'standard', N(0, I) as trained (default: fitted)")
    t.add_argument("--classifier-weight", type=float, default=None,
                   help="with unlabelled images, the weight of the classifier's cross-entropy on"
                        " a labelled image (default: {ConditionalVAE.classifier_weight})")
    t.add_argument("--no-validation", action="store_true",
                   help="hold out no images to stop on, and skip the loss on the test (or held-out)"
                        " split after every epoch (it is still measured once at the end); without"
                        " --epochs, the run then trains --min-steps steps")


def _run_options(t: argparse.ArgumentParser) -> None:
    """`cvae train`'s options on where the run goes, and how it runs."""
    t.add_argument("--seed", type=natural, default=0, help="random seed (default: 0)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    t.add_argument("-o", "--output", type=output, required=True, help="folder to write the model to")
    t.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the loss with torch.compile (the same loss curve, faster epochs"
                        " after seconds of compiling), or not; by default, long runs are compiled"
                        " where torch can (a C++ compiler on a CPU; see the guide, Training)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    t.add_argument("--tensorboard", nargs="?", const="", default=None, metavar="DIR",
                   help="also write the loss curves for TensorBoard, to DIR (default:"
                        " OUTPUT/tensorboard); needs pip install \"torch-cvae[tensorboard]\"."
                        " Every epoch's figures go to OUTPUT/metrics.csv in any case")
    t.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in OUTPUT/checkpoints (written"
                        " after every epoch)")
    t.add_argument("--allow-changes", action="store_true",
                   help="with --resume, go on although the data or training settings differ"
                        " from the checkpoint's (they are refused otherwise)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run that OUTPUT holds (its model and checkpoints); without"
                        " it, a folder that holds a run is refused")
