"""Train the semi-supervised M2 model (Kingma et al. 2014) on MNIST with a few labels.

Keeps the labels of `--labels` training images (the same number of each digit, drawn with
`--seed`; the rest unlabelled), trains `ConditionalVAE(semi_supervised=True)` with the
`Trainer`, and measures on the 10,000 test images: the learned classifier's error, the
error of classifying by Bayes' rule over the model's own `p(x | y)`, and how often the
bundled MNIST classifier recognises the model's samples as the digit asked for. The
architecture is by default the paper's: one hidden layer of 500 units in the encoder,
decoder and classifier, latent size 50; `--backbone conv` trains the convolutional one.
Results go to `OUTPUT/m2_results.json` with the model.

    CVAE_DATA=../shared/data python scripts/train_mnist_m2.py --labels 100 -o runs/m2-100

With 100 labels, the defaults (150 epochs, the learning rate lowered along a cosine) took
49 minutes on a 2-core CPU and gave a test error of 6.17% (the paper's M2: 11.97%);
`--backbone conv --epochs 20 --device cuda` took 2.7 minutes on an H200 and gave 3.04%, with
97.4% of its samples recognised; see the guide, Partly labelled data.
"""

import argparse
import json
import time
from pathlib import Path

import torch

import cvae
from cvae.data._semi import partly_labelled
from cvae.data._splits import stratified_subset
from cvae.evaluation.bayes import bayes_accuracy
from cvae.evaluation.classifier import load_classifier
from cvae.evaluation.metrics import classifier_accuracy, sample_accuracy
from cvae.training.callbacks import Callback
from cvae.training.record import machine_name


class TestError(Callback):
    """Log the classifier's error on some test images after every epoch."""

    def __init__(self, test, n=2000):
        self.test = test.images[:n], test.labels[:n]

    def on_epoch_end(self, trainer, record):
        record["test_error"] = 1 - classifier_accuracy(trainer.model, self.test)
        print(f"epoch {record['epoch']}: loss {record['loss']:.2f},"
              f" test error on {len(self.test[0])} images {record['test_error']:.2%}", flush=True)


def confusion(model, test):
    """How many test images of each digit (rows) `classify` puts in each class (columns)."""
    predicted = torch.cat([model.classify(x.to(model.device)).argmax(1).cpu()
                           for x in test.images.split(1000)])
    return torch.bincount(test.labels * 10 + predicted, minlength=100).view(10, 10).tolist()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=100, help="labelled training images in all")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=50,
                        help="times each labelled image appears in an epoch")
    parser.add_argument("--classifier-weight", type=float, default=50.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", choices=["constant", "cosine"], default="cosine",
                        help="the Trainer's lr_schedule")
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--backbone", default="mlp", help="a registered backbone (`mlp`: the paper's)")
    parser.add_argument("--recipe", default=None,
                        help="JSON settings of the backbone (default for mlp: the paper's"
                             ' {"hidden_dims": [500]}; for conv: its own defaults)')
    parser.add_argument("--limit", type=int, default=None,
                        help="train on N training images only (drawn by class with --seed), for"
                             " quick trials")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("-o", "--output", default="runs/m2")
    args = parser.parse_args()
    train = cvae.load_dataset("mnist")
    test = cvae.load_dataset("mnist", train=False)
    if args.limit:
        train = stratified_subset(train, args.limit, args.seed)
    data = partly_labelled(train, args.labels // 10, seed=args.seed, repeat=args.repeat)
    torch.manual_seed(args.seed)
    recipe = json.loads(args.recipe) if args.recipe else (
        {"hidden_dims": [500]} if args.backbone == "mlp" else {})
    model = cvae.ConditionalVAE(latent_dim=args.latent_dim, backbone=args.backbone, backbone_kwargs=recipe,
                                semi_supervised=True, classifier_weight=args.classifier_weight,
                                class_names=train.class_names)
    # Checkpoints every 10 epochs: the same command, run again, goes on where it stopped.
    trainer = cvae.Trainer(model, data, epochs=args.epochs, lr=args.lr, lr_schedule=args.lr_schedule,
                           seed=args.seed, device=args.device, progress=False,
                           callbacks=[TestError(test)], checkpoint_dir=Path(args.output, "checkpoints"),
                           checkpoint_every=10, resume=True)
    history = trainer.train()
    minutes = sum(record["seconds"] for record in history) / 60  # a resumed run's epochs all count
    model.eval()  # measured where it trained (on a GPU, in seconds); the file gets CPU tensors
    model.save_pretrained(args.output)
    start = time.perf_counter()
    # float32, as the figures in the guide: the same on every machine
    bayes = bayes_accuracy(model, test, k=10, generator=torch.Generator().manual_seed(0),
                           mixed_precision=False)
    per_class = sample_accuracy(model, load_classifier(), 500, generator=torch.Generator().manual_seed(0))
    results = {"labels": args.labels, "seed": args.seed, "epochs": args.epochs, "repeat": args.repeat,
               "latent_dim": args.latent_dim, "backbone": args.backbone,
               "backbone_kwargs": model.config["backbone_kwargs"], "training_images": len(train),
               "classifier_weight": args.classifier_weight, "lr": args.lr,
               "lr_schedule": args.lr_schedule,
               "test_error": 1 - classifier_accuracy(model, test),
               "bayes_error_k10": 1 - bayes["accuracy"],
               "bayes_minutes": (time.perf_counter() - start) / 60,
               "test_confusion": confusion(model, test),  # rows: the true digit
               "sample_accuracy": sum(per_class) / len(per_class),
               "sample_accuracy_per_class": per_class,
               "training_minutes": minutes,
               "machine": machine_name(trainer.device),
               "history": history}
    Path(args.output, "m2_results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "history"}, indent=1))


if __name__ == "__main__":
    main()
