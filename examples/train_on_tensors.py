"""Train a conditional VAE on your own labelled images, given as two tensors, then save,
reload and sample it. Fashion-MNIST stands in for "your data" here.

    python examples/train_on_tensors.py [--epochs 10] [--limit 60000] [-o fashion-cvae]
"""

import argparse

import torch

import cvae

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--limit", type=int, default=None, help="use the first N images only")
parser.add_argument("-o", "--output", default="fashion-cvae")
args = parser.parse_args()

# Any float tensor (N, C, H, W) in [0, 1] and integer labels (N,) will do.
data = cvae.load_dataset("fashion-mnist", train=True)
images, labels = data.images[: args.limit], data.labels[: args.limit]

torch.manual_seed(0)
model = cvae.ConditionalVAE(image_shape=images.shape[1:], num_classes=10,
                            class_names=data.class_names)
history = cvae.Trainer(model, (images, labels), epochs=args.epochs, seed=0).train()
model.save_pretrained(args.output)

reloaded = cvae.ConditionalVAE.from_pretrained(args.output)
sneakers = reloaded.sample("Sneaker", n=16)
cvae.save_grid(sneakers, f"{args.output}/sneakers.png", scale=3)
print(f"final loss {history[-1]['loss']:.2f}; wrote {args.output}/sneakers.png")
