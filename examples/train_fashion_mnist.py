"""Train a convolutional conditional VAE on Fashion-MNIST, then draw every class by name.

Fashion-MNIST's images are grey levels, not near-binary strokes, so this uses the
continuous Bernoulli likelihood (a proper density on [0, 1]) and a short KL warm-up.

    python examples/train_fashion_mnist.py [--epochs 10] [--limit 60000] [-o fashion-conv]

Convolutions are slow on a CPU: on a 2-core one, try `--limit 5000` first, or use a GPU.
"""

import argparse

import torch

import cvae

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--limit", type=int, default=None, help="use the first N images only")
parser.add_argument("-o", "--output", default="fashion-conv")
args = parser.parse_args()

data = cvae.load_dataset("fashion-mnist", train=True)
train = cvae.LabelledImages(data.images[: args.limit], data.labels[: args.limit], data.class_names)
test = cvae.load_dataset("fashion-mnist", train=False)
val = (test.images[:2000], test.labels[:2000])  # a validation loss each epoch, kept quick

torch.manual_seed(0)
model = cvae.ConditionalVAE(image_shape=(1, 28, 28), num_classes=10, latent_dim=16,
                            backbone="conv", likelihood="continuous-bernoulli",
                            class_names=data.class_names)
trainer = cvae.Trainer(model, train, val, epochs=args.epochs, warmup_epochs=min(2, args.epochs),
                       seed=0)
trainer.train()
model.save_pretrained(args.output)

print("classes:", ", ".join(model.class_names))
grid = torch.cat([model.sample(name, n=8) for name in ("Sneaker", "Bag", "Dress")])
cvae.save_grid(grid, f"{args.output}/sneakers-bags-dresses.png", nrow=8, scale=3)
print(f"wrote {args.output}/sneakers-bags-dresses.png (rows: Sneaker, Bag, Dress)")
