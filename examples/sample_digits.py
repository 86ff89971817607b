"""Draw every digit with the bundled MNIST model and write one grid: a row per digit.

    python examples/sample_digits.py [-o digits.png]
"""

import argparse

import torch

import cvae

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("-o", "--output", default="digits.png")
args = parser.parse_args()

model = cvae.ConditionalVAE.from_pretrained("mnist-mlp")
generator = torch.Generator().manual_seed(0)
images = model.sample(list(range(10)), n=10, generator=generator)  # 10 of each digit, in order
cvae.save_grid(images, args.output, nrow=10, scale=3)
print(f"wrote {args.output}")
