"""Why does the defaults' model of colourised Fashion-MNIST collapse, and what lets it out?

Trains a set of the small-data panel as the panel does (`ConditionalVAE.from_data`, a tenth
held out), but for a fixed number of epochs and with the settings asked for, and prints the
curve: every third epoch's training reconstruction / KL (nats an image) and held-out
negative ELBO. A collapsed run has its KL near 0 and its reconstruction stuck at the
colours' variance (about 230 nats on fashion-1000-rgb); a run that uses its code falls far
below. Besides the Trainer's settings, three a study needs: `lr_warmup` (steps of a linear
learning-rate warm-up, through the Trainer's `scheduler`), and for the model `logvar_bias`
(the encoder's log-variance head started at this bias: a narrow posterior) and
`fixed_scale` (the Gaussian's scale fixed, not calibrated to each batch).

    CVAE_DATA=../shared/data python experiments/colour-collapse/study.py fashion-1000-rgb \
        --model '{}' --trainer '{"epochs": 40, "batch_size": 64, "lr": 1e-4}'
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path
from unittest import mock

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import small_data  # noqa: E402  (the panel's sets)

from cvae import ConditionalVAE, Trainer  # noqa: E402
from cvae.data import VALIDATION_FRACTION, train_test_split  # noqa: E402


def build(fit, settings):
    settings = dict(settings)
    logvar_bias, fixed_scale = settings.pop("logvar_bias", None), settings.pop("fixed_scale", None)
    if settings.pop("start_at_mean", True):
        model = ConditionalVAE.from_data(fit, **settings)
    else:  # the decoder started where its initialisation puts it, as before
        with mock.patch("cvae.models._from_data.start_at_mean", lambda model, images: None):
            model = ConditionalVAE.from_data(fit, **settings)
    if fixed_scale is not None:
        model.likelihood.calibrated = False
        model.likelihood.log_scale.data.fill_(math.log(fixed_scale))
    if logvar_bias is not None:
        model.encoder.logvar.bias.data.fill_(logvar_bias)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("set", help="a panel set, such as fashion-1000-rgb")
    parser.add_argument("--model", type=json.loads, default={}, help="from_data settings, and the study's")
    parser.add_argument("--trainer", type=json.loads, default={"epochs": 40, "batch_size": 64},
                        help="Trainer settings, and lr_warmup")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, _ = small_data.sets()[args.set]()
    fit, val = train_test_split(train, VALIDATION_FRACTION, 0)
    torch.manual_seed(args.seed)
    model = build(fit, args.model)
    settings = dict(args.trainer)
    warmup = settings.pop("lr_warmup", None)
    if warmup:
        settings["scheduler"] = lambda opt: torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: min(1.0, (step + 1) / warmup))
        settings["scheduler_interval"] = "step"
    trainer = Trainer(model, fit, val, seed=args.seed, verbose=False, progress=False, **settings)
    start = time.perf_counter()
    try:
        trainer.train()
    except FloatingPointError as err:  # a run that blows up is a result too
        print("FAILED:", err)
    curve = " ".join(f"{i + 1}:{r['reconstruction']:.0f}/{r['kl']:.1f}|{r['val_nelbo']:.0f}"
                     for i, r in enumerate(trainer.history) if i % 3 == 0 or i == len(trainer.history) - 1)
    print(f"{args.set} model {args.model} trainer {args.trainer} seed {args.seed}:"
          f" {time.perf_counter() - start:.0f}s, epoch:reconstruction/KL|held-out {curve}", flush=True)


if __name__ == "__main__":
    main()
