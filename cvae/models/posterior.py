"""`DiagonalGaussian`: the encoder's posterior `q(z | x, y)`, its draws, density and KL.

The model, the loss and the metrics all go through this one object, so the Gaussian's
maths is written once (as diffusers' `DiagonalGaussianDistribution` is for its VAEs).
"""

from __future__ import annotations

import math

import torch

from cvae._devices import randn

__all__ = ["DiagonalGaussian"]

_LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """A Gaussian with a diagonal covariance per row: `N(mean, diag(exp(logvar)))`.

    Args:
        mean: Means, `(B, D)`.
        logvar: Log-variances, `(B, D)`.

    Example:
        ```python
        q = model.posterior(images, labels)   # what the encoder says of each image
        z = q.rsample()                       # one draw per image, differentiable
        q.kl().mean()                         # nats per image against the N(0, I) prior
        ```
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} must have"
                             f" one shape, (B, D)")
        self.mean, self.logvar = mean, logvar

    @property
    def std(self) -> torch.Tensor:
        """Standard deviations, `exp(logvar / 2)`."""
        return torch.exp(0.5 * self.logvar)

    def rsample(self, generator: torch.Generator | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """A draw `mean + eps * std` with `eps ~ N(0, I)`, through which gradients flow.

        Args:
            generator: Random generator for `eps`; a CPU generator gives the same draws on
                any device.
            noise: `eps` drawn by the caller, the shape of `mean` (or with leading sample
                dimensions, `(k, B, D)`, for `k` draws per row); nothing is drawn then.
        """
        if noise is None:  # randn_like is also what torch.compile can trace
            noise = (torch.randn_like(self.mean) if generator is None
                     else randn(self.mean.shape, generator, self.mean.device, self.mean.dtype))
        return self.mean + noise * self.std

    def mode(self) -> torch.Tensor:
        """The most likely point: the mean."""
        return self.mean

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """`log q(z)` of each row, summed over the `D` dimensions: `(B,)`, or `(k, B)` for `(k, B, D)`."""
        return -0.5 * ((z - self.mean).pow(2) / self.logvar.exp() + self.logvar + _LOG_2PI).sum(-1)

    def kl_per_unit(self) -> torch.Tensor:
        """`KL(q || N(0, I))` of each row and latent unit, `(B, D)`, in nats."""
        return -0.5 * (1 + self.logvar - self.mean.pow(2) - self.logvar.exp())

    def kl(self) -> torch.Tensor:
        """`KL(q || N(0, I))` of each row, `(B,)`, in nats (Kingma and Welling 2014, appendix B)."""
        return self.kl_per_unit().sum(-1)

    @staticmethod
    def standard_log_prob(z: torch.Tensor) -> torch.Tensor:
        """`log N(z; 0, I)` of each row, summed over the last dimension: the prior's density."""
        return -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
