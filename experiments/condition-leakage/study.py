"""Where does a model of several conditions leak them into its latent code, and what stops it?

Trains the `mnist-morpho` recipe (`scripts/train_morpho_mnist.py`: digit, thickness and
slant; the conv backbone) for a few epochs under each setting asked for, then measures
how well a linear probe reads each part from the latent code
(`cvae.evaluation.latent_leakage`), the samples' fidelity and the spread of each
continuous part left unset (`condition_fidelity`, `unset_spread`, at temperature 1).
Usage, from the repository's root:

    CVAE_DATA=../shared/data python experiments/condition-leakage/study.py \
        --settings '{"unset": "free"}' '{"unset": "average"}' --epochs 6
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import cvae
from cvae.conditions import Continuous
from cvae.evaluation import condition_fidelity, latent_leakage, unset_spread
from cvae.models._independence import decorrelation  # the library's penalty, as `independence=` adds it

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]
from morphometry import measure  # noqa: E402
from train_morpho_mnist import BACKBONE, morpho_mnist  # noqa: E402

OWN = {"temperature": 1.0, "sharpness": 1.0, "guidance": 0.0}


def split_decorrelation(mu, rows):
    """The same, unbiased: each correlation measured on one half of the batch times on the other.

    Its expectation is the squared correlation without the floor that chance correlations in
    a batch add (about units x columns / batch), so its gradient follows what both halves share.
    """
    half = len(mu) // 2

    def corr(m, r):
        m, r = m - m.mean(0), r - r.mean(0)
        return (m.T @ r) / (m.norm(dim=0)[:, None] * r.norm(dim=0)[None, :] + 1e-6)

    return (corr(mu[:half], rows[:half]) * corr(mu[half:2 * half], rows[half:2 * half])).sum()


def correlations(mu, rows, normalised=True):
    """`(D, W)`: each latent unit's correlation with each condition column, over the batch.

    Not `normalised`: the unit's covariance with the column over the column's standard
    deviation (the shift of the unit's mean per standard deviation of the condition), so
    that a unit the KL term has left flat counts nothing.
    """
    mu, rows = mu - mu.mean(0), rows - rows.mean(0)
    scale = mu.norm(dim=0)[:, None] if normalised else len(mu) ** 0.5
    return (mu.T @ rows) / (scale * rows.norm(dim=0)[None, :] + 1e-6)


class Running:
    """The batch's correlations weighted by their running average (detached): the gradient
    follows the correlation that persists from batch to batch, not one batch's chance."""

    def __init__(self, momentum=0.02, normalised=True):
        self.momentum, self.average, self.normalised = momentum, None, normalised

    def __call__(self, mu, rows):
        now = correlations(mu, rows, self.normalised)
        if self.average is None:
            self.average = now.detach().clone()
        self.average.lerp_(now.detach(), self.momentum)
        return (self.average * now).sum()


class _Reversed(torch.autograd.Function):
    """Identity forward; the gradient reversed backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Adversary(cvae.ConditionalVAE):
    """A linear probe trained beside the model to read the conditions from the code (Fader
    networks, Lample et al. 2017): its weights remember across batches what one batch's
    correlations cannot. The encoder is trained either by the probe's reversed gradient
    (`confuse` False: it maximises the probe's error, Ganin & Lempitsky 2015) or to leave the
    probe at chance (`confuse` True: each class guessed uniformly, each value as its mean)."""

    weight = 0.0
    confuse = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.probe = torch.nn.Linear(self.latent_dim, self.conditions.width)

    def loss(self, x, y, **settings):
        out = super().loss(x, y, **settings)
        if not self.training or not self.weight:
            return out
        rows = self.condition_rows(y)
        mu, _ = self.encoder(x.to(self.dtype), rows)
        if self.confuse:  # the probe learns on the codes as they are; the encoder, against a fixed probe
            penalty = _probe_error(self.probe(mu.detach()), rows, self.conditions)
            fixed = torch.nn.functional.linear(mu, self.probe.weight.detach(), self.probe.bias.detach())
            penalty = penalty + self.weight * _probe_error(fixed, rows, self.conditions, chance=True)
        else:
            penalty = self.weight * _probe_error(self.probe(_Reversed.apply(mu)), rows, self.conditions)
        return out._replace(loss=out.loss + penalty)


def _probe_error(guess, rows, conditions, chance=False):
    """The probe's error on each part, summed over the batch; `chance`: against a guess of
    every class alike and every value at its mean (0, standardised)."""
    error = 0.0
    for part, columns in zip(conditions, _columns(conditions)):
        target, said = rows[:, columns], guess[:, columns]
        if part.kind == "categorical":
            error = error + (-said.log_softmax(1).mean(1)).sum() if chance else error + (
                torch.nn.functional.cross_entropy(said, target.argmax(1), reduction="sum"))
        else:  # a continuous value (its first column) or tags
            width = 1 if part.kind == "continuous" else columns.stop - columns.start
            goal = torch.zeros_like(target[:, :width]) if chance else target[:, :width]
            error = error + (said[:, :width] - goal).pow(2).sum()
    return error


def _columns(conditions):
    start, spans = 0, []
    for part in conditions:
        spans.append(slice(start, start + part.width))
        start += part.width
    return spans


class Decorrelated(cvae.ConditionalVAE):
    """A penalty `weight * decorrelation` per image, on a second encoder pass (a study's shortcut)."""

    weight = 0.0
    penalty = staticmethod(decorrelation)

    def loss(self, x, y, **settings):
        out = super().loss(x, y, **settings)
        if not self.training or not self.weight:
            return out
        mu, _ = self.encoder(x.to(self.dtype), self.condition_rows(y))
        penalty = self.penalty(mu, self.condition_rows(y))
        return out._replace(loss=out.loss + self.weight * len(x) * penalty)


def _imq(a, b, scale):
    """The inverse multiquadratic kernel `C / (C + |a - b|^2)` (Tolstikhin et al. 2018, WAE)."""
    return scale / (scale + torch.cdist(a, b).pow(2))


def class_mmd(z, classes, generator=None):
    """Each class's codes against as many draws from the prior: the squared MMD (unbiased),
    summed over the classes of the batch. At zero every class's codes are distributed as
    N(0, I), so no probe of any kind reads the class (InfoVAE, Zhao et al. 2019, per class)."""
    total, scale = z.new_zeros(()), 2.0 * z.shape[1]
    for k in classes.unique():
        mine = z[classes == k]
        m = len(mine)
        if m < 2:
            continue
        prior = torch.randn(m, z.shape[1], dtype=z.dtype, device=z.device)
        off = 1 - torch.eye(m, dtype=z.dtype, device=z.device)
        within = (_imq(mine, mine, scale) * off).sum() / (m * (m - 1))
        drawn = (_imq(prior, prior, scale) * off).sum() / (m * (m - 1))
        total = total + within + drawn - 2 * _imq(mine, prior, scale).mean()
    return total


class Matched(cvae.ConditionalVAE):
    """A penalty `weight * class_mmd` per batch (times its size) on sampled codes, a second
    encoder pass (a study's shortcut), the first categorical part's classes."""

    weight = 0.0

    def loss(self, x, y, **settings):
        out = super().loss(x, y, **settings)
        if not self.training or not self.weight:
            return out
        mu, logvar = self.encoder(x.to(self.dtype), self.condition_rows(y))
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        classes = y[:, self.conditions.columns(self.conditions.first_categorical.name)][:, 0]
        known = ~torch.isnan(classes)
        penalty = class_mmd(z[known].float(), classes[known])
        return out._replace(loss=out.loss + self.weight * len(x) * penalty)


class Critic(cvae.ConditionalVAE):
    """A penalty on the mutual information of the code and the conditions, as an MLP
    estimates it (FactorVAE's density-ratio trick, Kim & Mnih 2018, on the pair of code and
    condition): a critic learns to tell a batch's pairs `(mu, row)` from the same codes with
    the rows shuffled, so that its logit estimates `log q(mu, y) / (q(mu) q(y))`; the
    encoder is charged `weight` times that logit on its own pairs. At zero the code is
    independent of the conditions, which no probe of any kind can then read. One optimizer
    trains both: the critic learns from detached codes, the encoder against the critic's
    detached weights (a study's shortcut: a second encoder pass)."""

    weight = 0.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        width = self.latent_dim + self.conditions.width
        self.critic = torch.nn.Sequential(torch.nn.Linear(width, 256), torch.nn.ReLU(),
                                          torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                          torch.nn.Linear(256, 1))

    def loss(self, x, y, **settings):
        out = super().loss(x, y, **settings)
        if not self.training or not self.weight:
            return out
        rows = torch.nan_to_num(self.condition_rows(y).float())
        mu = self.encoder(x.to(self.dtype), self.condition_rows(y))[0].float()
        shuffled = rows[torch.randperm(len(rows), device=rows.device)]
        joint = self.critic(torch.cat([mu.detach(), rows], 1))[:, 0]
        apart = self.critic(torch.cat([mu.detach(), shuffled], 1))[:, 0]
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        critic_loss = bce(joint, torch.ones_like(joint)) + bce(apart, torch.zeros_like(apart))
        frozen = {k: v.detach() for k, v in self.critic.named_parameters()}
        ratio = torch.func.functional_call(self.critic, frozen, (torch.cat([mu, rows], 1),))[:, 0]
        return out._replace(loss=out.loss + len(x) * critic_loss + self.weight * ratio.sum())


def measured(model, train, test, n=2000):
    """Leakage, fidelity and unset spread, each part's figure in one flat dict."""
    from cvae.evaluation import load_classifier

    judge = load_classifier()

    def measure_all(images):
        with torch.no_grad():
            digit = judge(images.float()).argmax(1)
        return {"digit": digit, **measure(images)}

    row = {}
    for name, score in latent_leakage(model, train, test, n=10_000).items():
        row[f"leak_{name}"] = round(score.get("accuracy", score.get("r2")), 3)
    for name, score in latent_leakage(model, train, test, n=10_000, probe="mlp").items():
        row[f"mlp_leak_{name}"] = round(score.get("accuracy", score.get("r2")), 3)
    for name, score in condition_fidelity(model, test, measure_all, n=n, **OWN).items():
        row[f"fid_{name}"] = round(score.get("recognised", score.get("r")), 3)
    for part in model.conditions:
        if isinstance(part, Continuous):
            spread = unset_spread(model, test, measure_all, part.name, n=n, **OWN)
            row[f"spread_{part.name}"] = round(spread, 3)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", type=json.loads, default=[{}],
                        help="constructor settings to compare, each a JSON dict")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test = morpho_mnist(train=True), morpho_mnist(train=False)
    for settings in args.settings:
        torch.manual_seed(args.seed)
        start = time.perf_counter()
        # The library's own penalty only where a setting asks for it (`from_data` adds it now).
        settings = {"independence": 0.0, **settings}
        Decorrelated.weight = settings.pop("decorrelation", 0.0)
        Adversary.weight = settings.pop("adversary", 0.0)
        Adversary.confuse = settings.pop("confuse", False)
        Matched.weight = settings.pop("mmd", 0.0)
        Critic.weight = settings.pop("critic", 0.0)
        split, running = settings.pop("split", False), settings.pop("running", False)
        normalised = settings.pop("normalised", True)
        chosen = (Running(normalised=normalised) if running
                  else split_decorrelation if split else decorrelation)
        Decorrelated.penalty = staticmethod(chosen)
        kind = (Adversary if Adversary.weight else Matched if Matched.weight
                else Critic if Critic.weight else Decorrelated)
        model = kind.from_data(train, backbone="conv", backbone_kwargs=BACKBONE,
                               likelihood="bernoulli", **settings)
        trainer = cvae.Trainer(model, train, test, epochs=args.epochs, seed=args.seed, progress=False)
        trainer.train()
        loss = trainer.history[-1]["val_loss"] if "val_loss" in trainer.history[-1] else None
        row = {"settings": settings, "epochs": args.epochs, "val_loss": loss,
               "minutes": round((time.perf_counter() - start) / 60, 1), **measured(model, train, test)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
