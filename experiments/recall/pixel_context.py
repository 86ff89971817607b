"""Does a decoder whose pixels depend on each other raise recall, or only the likelihood?

`recall_ceiling.py` shows that `mnist-conv`'s recall is held back by its decoder's blurred
means: it scores every pixel independently given the code. The cheapest decoder whose
pixels see each other is a local autoregressive head, as in PixelVAE (Gulrajani et al.
2017): each pixel's logit is the conv decoder's, corrected from the pixels already drawn
above and to its left (a k x k masked convolution) and the decoder's last feature map,
through two 1x1 layers. The context is the image binarised (each pixel drawn from
`Bernoulli(x)`), the image a sample's context is too; with the grey image as targets, the
expected loss is the model's negative log-likelihood of the binarised image, as the
tutorial's BCE is for its factorised decoder. (With the grey image itself as context, the
head predicts each pixel from its grey neighbours, and in a trial the KL fell fast: the
code was left with less to carry.)

This fine-tunes the bundled `mnist-conv` with such a head (zero at the start, so training
starts from the bundled model), then prints on the 10,000 test digits the negative ELBO
(one draw of `z` and of the context) and the KL, and, in the bundled classifier's features
as `cvae eval` measures them (each digit's 500 samples against 500 of its test digits),
precision, recall, diversity and the share recognised as the digit asked for, of:

- `bundled`: the bundled model's samples;
- `fine-tuned, no head`: the fine-tuned decoder's means, without the head;
- `head, probabilities`: samples drawn pixel by pixel (a binary image), shown as each
  pixel's probability given the pixels drawn before it: grey edges, as real digits have;
- `head, binary`: the binary images drawn.

    CVAE_DATA=../shared/data python experiments/recall/pixel_context.py [--epochs 3] [--kernel 9] \
        [--width 128]
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from studies import data_root, embed, machine, print_scores, sample_scores, test_digits
from torch import nn

import cvae
from cvae.evaluation.classifier import load_classifier
from cvae.models.loss import kl_divergence

PER_CLASS = 500


class PixelHead(nn.Module):
    """A logit correction for each pixel from the pixels above and to its left."""

    def __init__(self, features: int, kernel: int, width: int):
        super().__init__()
        self.kernel = kernel
        self.context = nn.Conv2d(1, width, kernel, padding=kernel // 2, bias=False)
        mask = torch.ones(kernel, kernel)
        mask[kernel // 2, kernel // 2:] = 0  # the pixel itself and those right of it
        mask[kernel // 2 + 1:] = 0  # the rows below
        self.register_buffer("mask", mask)
        self.condition = nn.Conv2d(features + 1, width, 1)
        self.mid = nn.Conv2d(width, width, 1)
        self.last = nn.Conv2d(width, 1, 1)
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def tail(self, h: torch.Tensor) -> torch.Tensor:
        return self.last(F.silu(self.mid(F.silu(h))))

    def forward(self, context, features, logits):
        seen = F.conv2d(context, self.context.weight * self.mask, padding=self.kernel // 2)
        return logits + self.tail(seen + self.condition(torch.cat([features, logits], 1)))

    @torch.inference_mode()
    def sample(self, features, logits, generator):
        """Draw `(probabilities, binary image)` pixel by pixel: only each pixel's own
        neighbourhood is computed, so a draw costs 784 small steps, not 784 passes."""
        n, _, height, width = logits.shape
        r = self.kernel // 2
        # The mask leaves rows above and the current row's left part: r + 1 rows of taps.
        taps = (self.context.weight * self.mask)[:, 0, :r + 1].reshape(self.context.out_channels, -1)
        given = self.condition(torch.cat([features, logits], 1))
        drawn = torch.zeros(n, height + r, width + 2 * r)
        probs = torch.zeros(n, height, width)
        for i in range(height):
            for j in range(width):
                seen = drawn[:, i:i + r + 1, j:j + self.kernel].reshape(n, -1) @ taps.T
                h = (seen + given[:, :, i, j])[:, :, None, None]
                p = torch.sigmoid(self.tail(h)[:, 0, 0, 0] + logits[:, 0, i, j])
                probs[:, i, j] = p
                drawn[:, i + r, j + r] = torch.bernoulli(p, generator=generator)
        return probs[:, None], drawn[:, None, r:, r:width + r]


def decoder_features(model, z, y):
    """The conv decoder's logits and the feature map its last layer reads."""
    seen = []
    hook = model.decoder.out.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    try:
        logits = model.decode_logits(z, y)
    finally:
        hook.remove()
    return seen[0], logits


def loss(model, head, x, y, generator=None):
    """Negative ELBO and KL per image, summed over the batch."""
    mu, logvar = model.encode(x, y)
    features, logits = decoder_features(model, model.reparameterize(mu, logvar, generator), y)
    out = head(torch.bernoulli(x, generator=generator), features, logits)
    kl = kl_divergence(mu, logvar).sum()
    return model.likelihood(out, x).sum() + kl, kl


def fine_tune(model, head, data, epochs: float, generator):
    optimizer = torch.optim.Adam([{"params": model.parameters(), "lr": 3e-4},
                                  {"params": head.parameters(), "lr": 1e-3}])
    per_epoch = len(data.images) // 128
    steps = int(epochs * per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    start = time.perf_counter()
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(data.images), generator=generator)
        picks = order[step % per_epoch * 128:][:128]
        total, kl = loss(model, head, data.images[picks], data.labels[picks], generator)
        optimizer.zero_grad()
        (total / 128).backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % per_epoch == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps}: loss {total.item() / 128:.2f}, KL {kl.item() / 128:.2f}"
                  f" ({time.perf_counter() - start:.0f} s)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--kernel", type=int, default=9)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    bundled = cvae.ConditionalVAE.from_pretrained("mnist-conv").eval()
    model = cvae.ConditionalVAE.from_pretrained("mnist-conv").train()
    head = PixelHead(model.decoder.out.in_channels, args.kernel, args.width)
    fine_tune(model, head, cvae.load_dataset("mnist", data_root()), args.epochs, g)
    model.eval()
    test = cvae.load_dataset("mnist", data_root(), train=False)
    with torch.inference_mode():
        sums = [loss(model, head, test.images[i:i + 1000], test.labels[i:i + 1000], g)
                for i in range(0, len(test.images), 1000)]
    nelbo, kl = (sum(s[j].item() for s in sums) / len(test.images) for j in (0, 1))
    print(f"fine-tuned with the head, on the test digits: negative ELBO {nelbo:.2f}, KL {kl:.2f}"
          f" nats an image (the bundled model's card: 86.12 and 19.68)")

    classifier = load_classifier()
    scores = {}
    for digit in range(10):
        y = torch.full((PER_CLASS,), digit)
        z = torch.randn(PER_CLASS, model.latent_dim, generator=g)
        with torch.inference_mode():
            features, logits = decoder_features(model, z, y)
            kinds = {"bundled": bundled.decode(z, y), "fine-tuned, no head": torch.sigmoid(logits)}
        kinds["head, probabilities"], kinds["head, binary"] = head.sample(features, logits, g)
        real = embed(classifier, test_digits(test, digit)[0])
        for kind, images in kinds.items():
            scores.setdefault(kind, []).append(sample_scores(classifier, real, images, digit))
    print("prior samples, each digit's 500 against 500 test digits, the classifier's features")
    print_scores(scores, width=20)


if __name__ == "__main__":
    main()
