"""Fine-tune a trained MNIST model with condition dropout, then sweep its sampling settings.

Where should a dropped label be hidden, for classifier-free guidance to work in a VAE?
This fine-tunes the weights of `--init` (the `mnist-conv` network) for `--epochs` with
`condition_dropout` and `unset` as given, then prints the negative ELBO on the MNIST test
set and the sample figures at each sampling setting (`cvae.evaluation.sweep`):

    CVAE_DATA=../shared/data python experiments/guidance-unset/finetune.py --init FOLDER \\
        --unset average --condition-dropout 0.1 --output /tmp/average-0.1

The training is `scripts/train_mnist_conv.py --init ... --trainer '{"lr": 2e-4,
"warmup_epochs": 0}' --epochs 10`'s (Adam 2e-4 along a cosine, batch 128, seed 0).
"""

import argparse
import json

import cvae
from cvae.evaluation import elbo
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.sweep import sweep


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, help="the trained model to start from")
    parser.add_argument("--unset", choices=["average", "free"], required=True)
    parser.add_argument("--condition-dropout", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--output", required=True, help="folder to save the fine-tuned model in")
    parser.add_argument("--sharpness", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--samples-per-class", type=int, default=100)
    args = parser.parse_args()
    start = cvae.ConditionalVAE.from_pretrained(args.init)
    model = cvae.ConditionalVAE.from_config({**start.config, "condition_dropout": args.condition_dropout,
                                             "unset": args.unset})
    model.load_state_dict(start.state_dict())
    cvae.Trainer(model, cvae.load_dataset("mnist", train=True), epochs=args.epochs, lr=2e-4,
                 lr_schedule="cosine", warmup_epochs=0, batch_size=128, seed=0, progress=False).train()
    model.save_pretrained(args.output)
    test = cvae.load_dataset("mnist", train=False)
    print("test negative ELBO:", json.dumps(elbo(model.eval(), test)))
    found = sweep(model, test, load_classifier(), temperature=[1.0], sharpness=args.sharpness,
                  guidance=args.guidance, n_per_class=args.samples_per_class)
    for row in found["settings"]:
        print(json.dumps({key: round(value, 3) if isinstance(value, float) else value
                          for key, value in row.items()}))


if __name__ == "__main__":
    main()
