"""The `cvae` command: sample, train, evaluate and push models, and list what is bundled."""

from __future__ import annotations

import argparse

from cvae.cli import _commands as commands
from cvae.cli._augment import add_augment_parser
from cvae.cli._eval import run_eval
from cvae.cli._options import (
    Formatter,
    add_data_options,
    add_inputs,
    count,
    fraction,
    json_object,
    natural,
    output,
    positive,
)
from cvae.cli._train import run_train
from cvae.version import __version__

__all__ = ["build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `cvae` command."""
    parser = argparse.ArgumentParser(
        prog="cvae",
        description="Conditional VAEs: generate images of a chosen class, or train a model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "sample", formatter_class=Formatter, help="write a PNG grid of new images of one class",
        description="Generate new images of one class with a model and write them as a PNG grid.",
        epilog="example: cvae sample --digit 7 -n 16 -o sevens.png")
    s.set_defaults(func=commands.run_sample)
    # Classes stay text: the model reads a name first, an index only if no class has that name.
    # --label first: the usage line shows it, and a model of clothes has no digits.
    s.add_argument("--label", "--digit", dest="label", default=None, metavar="CLASS",
                   help="the class to draw: its name (as the model's class names spell it), or"
                        " its index if no class has that name (a digit for MNIST; --digit is the"
                        " same option); for a model with several conditions, its first"
                        " categorical one")
    s.add_argument("--condition", action="append", default=None, metavar="NAME=VALUE",
                   help="a condition of a model with several, by name: a class, a number, or"
                        " tags separated by commas (repeat it: --condition digit=7 --condition"
                        " thickness=2.5); a condition left out is unset, for a model trained with"
                        " condition dropout")
    s.add_argument("-n", type=count, default=16, help="how many images (default: 16)")
    s.add_argument("-o", "--output", type=output, default=None,
                   help="PNG file to write (default: samples-CLASS.png, named after the class)")
    s.add_argument("--model", default=None,
                   help="a bundled model's name, a folder from `cvae train`, or a Hub repo id"
                        " (default: the default bundled model, mnist-conv)")
    s.add_argument("--temperature", type=float, default=None,
                   help="scale of the prior noise (default: {sample.temperature})")
    s.add_argument("--sharpness", type=float, default=None,
                   help="multiply the decoder's logits by this: above 1, crisper images (default:"
                        " {sample.sharpness}; Bernoulli likelihoods)")
    s.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance: push images away from the model's unlabelled"
                        " ones, for a model trained with --condition-dropout (default:"
                        " {sample.guidance})")
    s.add_argument("--prior", choices=["standard", "fitted"], default=None,
                   help="draw the codes from N(0, I) ('standard') or from the Gaussians fitted to"
                        " the training codes ('fitted'; default: the model's own)")
    s.add_argument("--seed", type=natural, default=None, help="seed for reproducible images")
    s.add_argument("--nrow", type=count, default=None, help="images per row of the grid")
    s.add_argument("--scale", type=count, default=1, help="enlarge each pixel this many times")

    t = sub.add_parser(
        "train", help="train a model and save it where from_pretrained can load it",
        description="Train a conditional VAE on a labelled dataset with the tutorial's recipe"
                    " (Adam, BCE + KLD) and save config.json, model.safetensors and a model card.",
        epilog="example: cvae train --dataset path/to/folder --output runs/mine\n"
               "on 4 processes: torchrun --nproc_per_node 4 -m cvae.cli train -o runs/mnist",
        formatter_class=Formatter)
    t.set_defaults(func=run_train)
    add_data_options(t, "the dataset to train on (default: mnist)")
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
    # No default of their own: unset, they are left out, and the library's signatures decide.
    t.add_argument("--latent-dim", type=count, default=None,
                   help="latent size (default: {ConditionalVAE.latent_dim})")
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

    add_augment_parser(sub)

    e = sub.add_parser(
        "eval", formatter_class=Formatter,
        help="measure a model on a labelled test set; print a table, write JSON",
        description="Measure a model on a test set: negative ELBO and its terms, the "
                    "importance-weighted bound, reconstruction error and, for MNIST (with the "
                    "bundled classifier), sample accuracy and Frechet distance.",
        epilog="example: cvae eval mnist-mlp -o mnist-mlp.json --plots plots/")
    e.set_defaults(func=run_eval)
    e.add_argument("model", help="a bundled model's name, a model folder, or a Hub repo id")
    add_data_options(e, "the dataset whose test (or held-out) split to measure on (default: the one"
                        " that cvae train recorded in the model's folder, else mnist)")
    e.add_argument("-k", type=count, default=None, help="importance samples (default: {evaluate.k})")
    e.add_argument("--iwae-images", type=count, default=None,
                   help="measure the importance-weighted bound on N test images, drawn from every"
                        " class in proportion with --seed, with its standard error (default:"
                        " {evaluate.iwae_images})")
    e.add_argument("--full", action="store_true",
                   help="measure the importance-weighted bound on every test image (k decoder"
                        " passes each: minutes on a CPU)")
    e.add_argument("--float32", action="store_true",
                   help="run the bound's network passes (and --bayes-k's) in float32 on a CPU with"
                        " native bfloat16 too: slower, the same figures on every machine (the"
                        " default moves the bound by thousandths of a nat)")
    e.add_argument("--samples-per-class", type=count, default=None,
                   help="samples per class for the sample accuracy (default: {evaluate.n_per_class})")
    e.add_argument("--bayes-k", type=count, default=None, metavar="K",
                   help="also classify the test images by Bayes' rule over the model's classes,"
                        " with K importance samples per class (K decoder passes per image and"
                        " class), and report its accuracy")
    e.add_argument("--limit", type=count, default=None,
                   help="use N test images only, drawn from every class in proportion with --seed")
    e.add_argument("--seed", type=natural, default=0, help="seed of every draw (default: 0)")
    e.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    e.add_argument("-o", "--output", type=output, default="eval.json", help="JSON file to write")
    e.add_argument("--sweep", action="store_true",
                   help="instead of the figures above, measure the samples at every combination of"
                        " --temperature, --sharpness and --guidance (each a list; by default the"
                        " values that apply to the model), print the table, add it to the JSON and"
                        " draw the precision-recall curve beside it (OUTPUT-sweep.png)")
    e.add_argument("--temperature", type=float, nargs="+", default=None, metavar="T",
                   help="with --sweep: prior temperatures to try")
    e.add_argument("--sharpness", type=float, nargs="+", default=None, metavar="S",
                   help="with --sweep: sharpness values to try")
    e.add_argument("--guidance", type=float, nargs="+", default=None, metavar="W",
                   help="with --sweep: guidance weights to try")
    e.add_argument("--min-precision", type=positive, default=None, metavar="P",
                   help="with --sweep: the share of real images' precision that the recommended"
                        " setting must reach; of those that do, the most varied is recommended"
                        " (default: {sweep.min_precision})")
    e.add_argument("--recommend", action="store_true",
                   help="with --sweep: save the recommended setting into the model folder (its"
                        " config and card), where sample() then uses it")
    e.add_argument("--plots", metavar="DIR", type=output, default=None,
                   help="also write samples.png, latent_space.png and loss_curves.png here"
                        " (needs matplotlib)")

    p = sub.add_parser(
        "push", help="upload a model folder to the Hugging Face Hub",
        description="Upload a model folder (from `cvae train` or save_pretrained) to a Hub repo:"
                    " config.json, model.safetensors, README.md and training_history.json. The"
                    " folder is loaded first, so a broken one is never uploaded. The token comes"
                    " from --token, HF_TOKEN or `hf auth login`; HF_ENDPOINT picks the server.",
        epilog="example: cvae push runs/mnist my-org/mnist-cvae")
    p.set_defaults(func=commands.run_push)
    p.add_argument("folder", help="the model folder")
    p.add_argument("repo_id", help="the Hub repository, org/name (created if missing)")
    p.add_argument("--branch", default=None, help="branch to push to (default: main)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload cvae model", help="the commit message")
    p.add_argument("--token", default=None, help="Hub token (default: the saved one)")

    x = sub.add_parser(
        "transfer", help="redraw images as every class, keeping their style (a PNG grid)",
        description="Encode images with their own labels and decode the same latent codes with"
                    " every class: one row per image, the input first, then one column per class.",
        epilog="example: cvae transfer --index 0 1 2 3 -o transfer.png")
    x.set_defaults(func=commands.run_transfer)
    add_inputs(x, "test-set images to redraw (default: 0 1 2 3)", [0, 1, 2, 3])
    x.add_argument("--to", nargs="+", default=None,
                   help="the classes to draw them as (default: all)")
    x.add_argument("-o", "--output", type=output, default="transfer.png", help="PNG file to write")
    x.add_argument("--scale", type=count, default=2, help="enlarge each pixel this many times")

    i = sub.add_parser(
        "interpolate", help="morph one image into another, or one class into another (PNG strip)",
        description="Decode points between the latent codes of two images (spherical or linear),"
                    " or, with --classes, keep one latent code and move its label from one class"
                    " to another. Writes a PNG strip, and an animated GIF with --gif.",
        epilog="example: cvae interpolate --index 0 1 --steps 10 -o strip.png --gif strip.gif")
    i.set_defaults(func=commands.run_interpolate)
    add_inputs(i, "the two test-set images to morph between (default: 0 1)", [0, 1])
    i.add_argument("--classes", nargs=2, metavar=("FROM", "TO"), default=None,
                   help="morph between two classes at one latent code instead")
    i.add_argument("--steps", type=count, default=10, help="images in the strip (default: 10)")
    i.add_argument("--method", choices=["slerp", "linear"], default="slerp",
                   help="path between the codes (default: slerp)")
    i.add_argument("--seed", type=natural, default=None, help="seed of the code, with --classes")
    i.add_argument("-o", "--output", type=output, default="interpolation.png", help="PNG file to write")
    i.add_argument("--gif", default=None, help="also write an animated GIF here")
    i.add_argument("--scale", type=count, default=2, help="enlarge each pixel this many times")

    ex = sub.add_parser(
        "export", help="write a model's decoder and encoder as ONNX files",
        description="Export a model for onnxruntime (Python, C++, the browser): decoder.onnx"
                    " (z and a one-hot label to an image), encoder.onnx (an image and its one-hot"
                    " label to mu and logvar) and cvae.json (shapes and class names). Needs"
                    ' pip install "torch-cvae[onnx]".',
        epilog="example: cvae export mnist-mlp -o mnist-onnx")
    ex.set_defaults(func=commands.run_export)
    ex.add_argument("model", nargs="?", default=None,
                    help="a bundled model's name, a model folder or a Hub repo id"
                         " (default: the default bundled model, mnist-conv)")
    ex.add_argument("-o", "--output", type=output, required=True, help="folder to write the files to")

    sub.add_parser("list", help="list bundled models, backbones, likelihoods and datasets",
                        description="List the bundled models and the registered backbones,"
                                    " likelihoods and datasets.").set_defaults(func=commands.run_list)
    return parser
