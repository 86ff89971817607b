"""A penalty that keeps the conditions out of the latent code: its correlation with them, squared.

The code should carry the style, the condition the rest. A conditional VAE's code leaks the
condition all the same: each class's styles differ (a one's slant, a zero's width), and the
encoder, free to place each class's codes where it likes, places them apart. On
`mnist-morpho` a linear probe read the digit from the code 31.6% of the time against 11.3%
by chance, and a part set in `sample` then fights the code's own idea of it.

The penalty is the sum, over every latent unit and every column of the condition rows, of
their squared correlation across the batch: a linear-kernel HSIC (Lopez et al. 2018,
"Information constraints on auto-encoding variational Bayes", the scVI authors' remedy for
the same leak), normalised so that the encoder cannot shrink a unit to hide it. At zero,
every class's codes have the same mean and no continuous part moves them along any
direction: a linear probe reads nothing. It does not make each class's codes spread alike,
which a nonlinear probe reads (`latent_leakage(..., probe="mlp")`: the digit 56.0% of the
time on `mnist-morpho`). What the penalty leaves in the means, `centre_codes` takes out
when training ends (`cvae.models._centring`). Its weight is `ConditionalVAE(independence=)`;
the study is `experiments/condition-leakage/`.
"""

from __future__ import annotations

import torch

from cvae.models.loss import VAELoss

__all__ = ["decorrelation", "with_independence"]


def decorrelation(mu: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The squared correlations of every latent unit with every condition column, summed.

    Args:
        mu: The posterior means of a batch, `(B, D)`.
        rows: Their condition rows, `(B, W)`; a column constant in the batch counts 0.

    Returns:
        A scalar: 0 where the code is uncorrelated with the conditions, up to `D * W`.
    """
    mu, rows = mu - mu.mean(0), rows - rows.mean(0)
    n = max(1, len(mu) - 1)
    cov = mu.T @ rows / n
    spread = torch.outer(mu.norm(dim=0), rows.norm(dim=0)) / n  # the two standard deviations' product
    return (cov / (spread + 1e-6)).pow(2).sum()


def with_independence(terms: VAELoss, mu: torch.Tensor, rows: torch.Tensor, weight: float,
                      reduction: str) -> VAELoss:
    """`terms` with `weight * decorrelation(mu, rows)` added to each image's loss.

    The terms (reconstruction, KL) are left as they are: the ELBO the model reports is its own.
    """
    penalty = weight * decorrelation(mu.float(), rows.float())
    added = penalty * len(mu) if reduction == "sum" else penalty
    return terms._replace(loss=terms.loss + added)
