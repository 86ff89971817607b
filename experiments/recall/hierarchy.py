"""Does a hierarchy of latents, a global code over a spatial one, give sharp varied samples?

`recall_ceiling.py` and `recall_vs_kl.py` show that recall asks for decoded means that are
sharp, that is codes that carry much more than today's 20 nats, with a prior learned to
match them so that the ELBO pays for what they carry. The smallest such design is two
levels, as in the ladder VAE (Sønderby et al. 2016) and NVAE (Vahdat & Kautz 2020):

- a global code `z1` (standard normal prior, as the bundled models have), read from the
  encoder's last feature map;
- a spatial code `z2` (`channels` per position of a `size` x `size` grid) whose prior
  `p(z2 | z1, y)` is a convolution of the decoder's feature map at that size, and whose
  posterior is that prior shifted and scaled by a convolution that also sees the
  encoder's feature map there (NVAE's residual form: a posterior starts at its prior);
- the decoder continues from that feature map with `z2` added in, up to the image's
  logits, read by the tutorial's Bernoulli likelihood (BCE on the grey pixels).

It trains such a model from scratch on MNIST (Adam, lr 1e-3 cosine to 0, batch 128, KL
warm-up over the first epoch; `--spatial-beta` below 1 weighs the spatial code's KL less,
so that it carries more than the ELBO pays for), then prints on the test digits the
negative ELBO (one draw), each level's KL and the IWAE bound (k = 100, on the first 1,000
test digits), and, as `cvae eval` measures them (each digit's 500 samples against 500 of
its test digits, in the bundled classifier's features), precision, recall, diversity and
the share recognised as the digit asked for, of its prior samples (decoded means) and its
decoded posterior draws of training digits, beside the bundled `mnist-conv`'s samples.

    CVAE_DATA=../shared/data python experiments/recall/hierarchy.py [--epochs 20] [--size 7] [--channels 8]
        [--spatial-beta 1]
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
from cvae.models.backbones import _FewOutputsConv

PER_CLASS = 500
CLASSES = 10


def conv(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.SiLU())


def up(cin, cout):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1), nn.SiLU())


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p):
    """KL(q || p) between diagonal Gaussians, summed over all but the batch dimension."""
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)
    return kl.flatten(1).sum(1)


def draw(mu, logvar):
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def gaussian_logpdf(z, mu, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp())).flatten(1).sum(1)


class TwoLevel(nn.Module):
    """A conditional VAE with a global code over a spatial one (see the module's docstring)."""

    def __init__(self, size: int = 7, channels: int = 8, global_dim: int = 32, width: int = 64):
        super().__init__()
        self.size, self.global_dim = size, global_dim
        # Bottom-up: 28 -> 14 -> 7, the label as constant planes.
        self.down14 = nn.Sequential(conv(1 + CLASSES, width, 2), conv(width, width))
        self.down7 = nn.Sequential(conv(width, width, 2), conv(width, width))
        self.q1 = nn.Sequential(nn.Linear(width * 49 + CLASSES, 512), nn.SiLU(),
                                nn.Linear(512, 2 * global_dim))
        # Top-down: [z1, y] -> 7x7 (-> 14x14), where z2 lives.
        self.top = nn.Sequential(nn.Linear(global_dim + CLASSES, 512), nn.SiLU(),
                                 nn.Linear(512, width * 49), nn.SiLU())
        self.to_size = nn.Sequential(conv(width, width)) if size == 7 else nn.Sequential(
            up(width, width), conv(width, width))
        self.prior = nn.Conv2d(width, 2 * channels, 3, 1, 1)
        self.posterior = nn.Sequential(conv(2 * width, width), nn.Conv2d(width, 2 * channels, 3, 1, 1))
        nn.init.zeros_(self.posterior[-1].weight)
        nn.init.zeros_(self.posterior[-1].bias)
        self.merge = nn.Conv2d(channels, width, 1)
        tail = [conv(width, width)] + ([up(width, width), conv(width, width)] if size == 7 else [])
        self.bottom = nn.Sequential(*tail, up(width, 32), _FewOutputsConv(32, 1, 3, padding=1))

    def planes(self, x, y):
        # channels-last: oneDNN's convolutions run faster on a CPU (benchmarks/conv_step.py)
        planes = torch.cat([x, y[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return planes.contiguous(memory_format=torch.channels_last)

    def features(self, z1, y):
        """The decoder's feature map at z2's size, and z2's prior's mean and log-variance."""
        d = self.top(torch.cat([z1, y], 1)).view(len(z1), -1, 7, 7)
        d = self.to_size(d.contiguous(memory_format=torch.channels_last))
        mu, logvar = self.prior(d).chunk(2, 1)
        return d, mu, logvar.clamp(-8, 4)

    def logits(self, d, z2):
        return self.bottom(d + self.merge(z2))

    def encode(self, x, y):
        """The encoder's feature map at z2's size, and z1's posterior mean and log-variance."""
        h14 = self.down14(self.planes(x, y))
        h7 = self.down7(h14)
        mu1, logvar1 = self.q1(torch.cat([h7.flatten(1), y], 1)).chunk(2, 1)
        return (h7 if self.size == 7 else h14), mu1, logvar1.clamp(-8, 4)

    def posterior2(self, d, h, mu_p, logvar_p):
        """z2's posterior: its prior shifted and scaled, from both feature maps."""
        shift, scale = self.posterior(torch.cat([d, h], 1)).chunk(2, 1)
        return mu_p + shift, (logvar_p + scale).clamp(-8, 4)

    def forward(self, x, labels, draws: int = 1):
        """Per image: the negative log-likelihood of one draw, KL of z1, KL of z2, and (with
        `draws` > 1) the IWAE bound over that many draws."""
        y = F.one_hot(labels, CLASSES).to(x.dtype)
        h, mu1, logvar1 = self.encode(x, y)
        if draws > 1:  # the same image `draws` times
            x, y, h, mu1, logvar1 = (t.repeat_interleave(draws, 0) for t in (x, y, h, mu1, logvar1))
        z1 = draw(mu1, logvar1)
        d, mu_p, logvar_p = self.features(z1, y)
        mu2, logvar2 = self.posterior2(d, h, mu_p, logvar_p)
        z2 = draw(mu2, logvar2)
        nll = F.binary_cross_entropy_with_logits(self.logits(d, z2), x, reduction="none").flatten(1).sum(1)
        kl1 = gaussian_kl(mu1, logvar1, torch.zeros_like(mu1), torch.zeros_like(logvar1))
        kl2 = gaussian_kl(mu2, logvar2, mu_p, logvar_p)
        if draws == 1:
            return nll, kl1, kl2
        zeros = torch.zeros_like(mu1)
        log_w = (-nll + gaussian_logpdf(z1, zeros, zeros) - gaussian_logpdf(z1, mu1, logvar1)
                 + gaussian_logpdf(z2, mu_p, logvar_p) - gaussian_logpdf(z2, mu2, logvar2))
        return -(log_w.view(-1, draws).logsumexp(1) - math.log(draws))

    @torch.no_grad()
    def sample(self, labels, generator=None):
        """Decoded means of prior draws: z1 ~ N(0, I), z2 ~ p(z2 | z1, y)."""
        y = F.one_hot(labels, CLASSES).float()
        z1 = torch.randn(len(labels), self.global_dim, generator=generator)
        d, mu_p, logvar_p = self.features(z1, y)
        z2 = mu_p + torch.randn(mu_p.shape, generator=generator) * (0.5 * logvar_p).exp()
        return torch.sigmoid(self.logits(d, z2))

    @torch.no_grad()
    def reconstruct(self, x, labels):
        """Decoded means of posterior draws of `x`."""
        y = F.one_hot(labels, CLASSES).float()
        h, mu1, logvar1 = self.encode(x, y)
        d, mu_p, logvar_p = self.features(draw(mu1, logvar1), y)
        return torch.sigmoid(self.logits(d, draw(*self.posterior2(d, h, mu_p, logvar_p))))


def train(model, data, epochs: float, batch: int = 128, spatial_beta: float = 1.0):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    per_epoch = len(data.images) // batch
    steps = int(epochs * per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    start, sums = time.perf_counter(), torch.zeros(3)
    for step in range(steps):
        if step % per_epoch == 0:
            order = torch.randperm(len(data.images))
        picks = order[step % per_epoch * batch:][:batch]
        nll, kl1, kl2 = model(data.images[picks], data.labels[picks])
        beta = min(1.0, (step + 1) / per_epoch)
        loss = (nll + beta * (kl1 + spatial_beta * kl2)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        sums += torch.stack([nll.mean(), kl1.mean(), kl2.mean()]).detach()
        if (step + 1) % per_epoch == 0 or step + 1 == steps:
            n = (step % per_epoch) + 1
            nll_, kl1_, kl2_ = (sums / n).tolist()
            print(f"epoch {(step + 1) / per_epoch:.1f}: loss {nll_ + kl1_ + kl2_:.2f} (BCE {nll_:.2f},"
                  f" KL {kl1_:.2f} + {kl2_:.2f}) ({time.perf_counter() - start:.0f} s)", flush=True)
            sums.zero_()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=20)
    parser.add_argument("--size", type=int, choices=(7, 14), default=7)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--global-dim", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--spatial-beta", type=float, default=1.0,
                        help="KL weight of the spatial code in training (below 1, it carries more)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    torch.manual_seed(0)
    model = TwoLevel(args.size, args.channels, args.global_dim, args.width)
    model = model.to(memory_format=torch.channels_last)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters; z2: {args.channels} x {args.size}"
          f" x {args.size}, z1: {args.global_dim}", flush=True)
    data = cvae.load_dataset("mnist", data_root())
    train(model, data, args.epochs, spatial_beta=args.spatial_beta)
    model.eval()
    test = cvae.load_dataset("mnist", data_root(), train=False)
    with torch.no_grad():
        parts = [torch.stack([t.sum() for t in model(test.images[i:i + 1000], test.labels[i:i + 1000])])
                 for i in range(0, len(test.images), 1000)]
        nll, kl1, kl2 = (torch.stack(parts).sum(0) / len(test.images)).tolist()
        iwae = torch.cat([model(test.images[i:i + 50], test.labels[i:i + 50], draws=100)
                          for i in range(0, 1000, 50)])
    print(f"test digits: negative ELBO {nll + kl1 + kl2:.2f} (BCE {nll:.2f}, KL {kl1:.2f} + {kl2:.2f});"
          f" IWAE (k = 100, first 1,000) {iwae.mean():.2f} +- {iwae.std() / len(iwae) ** 0.5:.2f}"
          f" (mnist-conv's card: 86.12, IWAE 83.58)")

    classifier = load_classifier()
    bundled = cvae.ConditionalVAE.from_pretrained("mnist-conv").eval()
    g = torch.Generator().manual_seed(0)
    scores = {}
    for digit in range(10):
        labels = torch.full((PER_CLASS,), digit)
        train_digits = data.images[data.labels == digit][:PER_CLASS]
        with torch.inference_mode():
            kinds = {"mnist-conv, prior": bundled.sample(digit, PER_CLASS),
                     "two levels, prior": model.sample(labels, g),
                     "two levels, posterior": model.reconstruct(train_digits, labels[:len(train_digits)])}
            real = embed(classifier, test_digits(test, digit)[0])
            for kind, images in kinds.items():
                scores.setdefault(kind, []).append(sample_scores(classifier, real, images, digit))
    print("each digit's 500 against 500 test digits, in the bundled classifier's features")
    print_scores(scores)


if __name__ == "__main__":
    main()
