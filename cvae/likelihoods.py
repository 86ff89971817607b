"""Likelihoods `p(x | z, y)`: how the decoder's output scores an image, and what it means.

The decoder returns one unconstrained value per pixel, `eta`. Each likelihood reads it its
own way:

- `"bernoulli"` (the tutorial's, the default): pixel probability `sigmoid(eta)`; its
  negative log-likelihood is the binary cross-entropy. For images in [0, 1], best for
  near-binary ones such as MNIST.
- `"continuous-bernoulli"` (Loaiza-Ganem and Cunningham 2019): the same `sigmoid(eta)`,
  with the normalising constant that makes it a proper density on [0, 1], so the bound is
  a real log-likelihood for grey-level images. Its mean is not `sigmoid(eta)`; `decode`
  returns the mean.
- `"gaussian"`: mean `eta`, standard deviation `exp(log_scale)`, one learned value per
  channel (a calibrated decoder, as in Rybkin et al. 2021). For any real-valued images.
  The scale starts at 1 and is learned with the other weights; Adam moves it by about the
  learning rate per step, so it takes a few epochs to settle.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["LIKELIHOODS", "check_likelihood", "nll", "mean", "parameter", "value_range"]

LIKELIHOODS = ("bernoulli", "continuous-bernoulli", "gaussian")

_SMALL = 1e-2  # below this |eta|, the continuous Bernoulli uses its Taylor expansions


def check_likelihood(name: str) -> str:
    """Return `name` if it is a known likelihood.

    Raises:
        ValueError: If it is not; the message lists the known ones.
    """
    if name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {list(LIKELIHOODS)}")
    return name


def value_range(name: str) -> tuple[float, float]:
    """The pixel values that the likelihood accepts, `(low, high)`."""
    return (-math.inf, math.inf) if check_likelihood(name) == "gaussian" else (0.0, 1.0)


def _cb_log_norm(eta: torch.Tensor) -> torch.Tensor:
    """`log C(sigmoid(eta))`, the continuous Bernoulli's log normaliser, stable for any eta.

    With `lambda = sigmoid(eta)`, `C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)`, which
    simplifies to `eta / tanh(eta / 2)`: about `2 + eta^2 / 6` near 0, and `|eta|` far out.
    """
    small = eta.abs() < _SMALL
    safe = torch.where(small, torch.ones_like(eta), eta)
    exact = torch.log(safe / torch.tanh(safe / 2))
    return torch.where(small, math.log(2) + eta.pow(2) / 12, exact)


def nll(name: str, eta: torch.Tensor, x: torch.Tensor,
        log_scale: torch.Tensor | None = None) -> torch.Tensor:
    """The negative log-likelihood of each pixel of `x`, in nats, the shape of `x`.

    Args:
        name: The likelihood.
        eta: The decoder's output (logits, or the Gaussian's mean), the shape of `x`.
        x: The images, `(B, C, H, W)`.
        log_scale: For `"gaussian"`: the log standard deviation, one per channel `(C,)`.
    """
    if name == "gaussian":
        if log_scale is None:
            raise ValueError("the gaussian likelihood needs log_scale, the log standard deviation")
        log_scale = log_scale.view(-1, *([1] * (x.dim() - 2)))  # broadcast over H, W
        return 0.5 * ((x - eta) * torch.exp(-log_scale)).pow(2) + log_scale + 0.5 * math.log(
            2 * math.pi)
    bce = F.binary_cross_entropy_with_logits(eta, x, reduction="none")
    return bce - _cb_log_norm(eta) if name == "continuous-bernoulli" else bce


def parameter(name: str, eta: torch.Tensor) -> torch.Tensor:
    """The distribution's parameter from the decoder's output: `sigmoid(eta)`, or the mean."""
    return eta if name == "gaussian" else torch.sigmoid(eta)


def mean(name: str, eta: torch.Tensor) -> torch.Tensor:
    """The expected image under the likelihood: what `decode` and `sample` return."""
    if name != "continuous-bernoulli":
        return parameter(name, eta)
    # E[x] = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)) = (1 + L(eta / 2)) / 2,
    # with L(x) = coth(x) - 1/x the Langevin function; its series near 0 avoids the
    # cancellation between coth(x) and 1/x.
    x = eta / 2
    small = x.abs() < 0.25
    safe = torch.where(small, torch.ones_like(x), x)
    langevin = torch.where(small, x / 3 - x.pow(3) / 45 + 2 * x.pow(5) / 945,
                           1 / torch.tanh(safe) - 1 / safe)
    return ((1 + langevin) / 2).clamp(0, 1)
