"""The VAE loss: the reconstruction term (the tutorial's BCE by default) plus the KL divergence."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from .likelihoods import check_likelihood, nll

__all__ = ["VAELoss", "vae_loss", "kl_divergence"]

Reduction = Literal["sum", "mean", "none"]


class VAELoss(NamedTuple):
    """The loss and its two terms, as returned by `vae_loss`.

    It unpacks like a tuple (`loss, bce, kld = vae_loss(...)`), and `as_dict()` gives
    plain floats for logging.

    Attributes:
        loss: `reconstruction + beta * kl`, the negative ELBO when `beta == 1`.
        reconstruction: The reconstruction term, `-log p(x | z, y)` in nats (the binary
            cross-entropy for the Bernoulli likelihood).
        kl: The KL divergence from the approximate posterior to the N(0, I) prior, in nats.
    """

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        """Return the three terms as Python floats (for scalar reductions)."""
        return {name: float(value) for name, value in self._asdict().items()}


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) for each row, summed over latent dimensions.

    Args:
        mu: Posterior means, `(B, D)`.
        logvar: Posterior log-variances, `(B, D)`.

    Returns:
        A `(B,)` tensor, in nats (Kingma and Welling 2014, appendix B).
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def vae_loss(
    recon_x: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float | torch.Tensor = 1.0,
    reduction: Reduction = "sum",
    *,
    logits: bool = False,
    likelihood: str = "bernoulli",
    log_scale: torch.Tensor | None = None,
) -> VAELoss:
    """The VAE loss, `reconstruction + beta * KLD`: the tutorial's `BCE(sum) + KLD` by default.

    Args:
        recon_x: Reconstructions, the same shape as `x`: the decoder's output as logits if
            `logits=True` (the stable and faster form, which the Trainer uses), else the
            likelihood's parameter (probabilities in [0, 1] for the Bernoulli likelihoods,
            the mean for the Gaussian). Probabilities of exactly 0 or 1 give a finite loss:
            log-probabilities are clamped at -100, as
            `torch.nn.functional.binary_cross_entropy` does.
        x: Target images, `(B, C, H, W)` or any shape: in [0, 1] for the Bernoulli
            likelihoods, any real values for the Gaussian.
        mu: Posterior means, `(B, D)`.
        logvar: Posterior log-variances, `(B, D)`.
        beta: Weight of the KL term (1.0 gives the ELBO; see Higgins et al. 2017).
        reduction: `"sum"` over the batch (the tutorial's), `"mean"` per image (the sum
            divided by the batch size), or `"none"` for one value per image, shape `(B,)`.
        logits: Whether `recon_x` holds logits rather than the likelihood's parameter.
        likelihood: `"bernoulli"`, `"continuous-bernoulli"` or `"gaussian"` (see
            `cvae.likelihoods`); a model's is `model.likelihood`.
        log_scale: For the Gaussian: the log standard deviation per channel, `(C,)`; a
            model's is `model.log_scale`.

    Returns:
        A `VAELoss` of `(loss, reconstruction, kl)`.

    Raises:
        ValueError: If the shapes disagree, or `reduction` or `likelihood` is unknown.
    """
    if recon_x.shape != x.shape:
        raise ValueError(f"recon_x has shape {tuple(recon_x.shape)} but x has {tuple(x.shape)}")
    if mu.shape != logvar.shape or mu.shape[0] != x.shape[0]:
        raise ValueError(
            f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must both be (B, D)"
            f" with B = {x.shape[0]}, the batch size of x"
        )
    if reduction not in ("sum", "mean", "none"):
        raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")
    check_likelihood(likelihood)
    if likelihood == "bernoulli" and not logits:
        per_pixel = F.binary_cross_entropy(recon_x, x, reduction="none")  # the tutorial's
    else:
        eta = recon_x if logits or likelihood == "gaussian" else torch.logit(recon_x, eps=1e-6)
        per_pixel = nll(likelihood, eta, x, log_scale)
    if reduction == "none":
        rec = per_pixel.flatten(1).sum(1)
        kld = kl_divergence(mu, logvar)
    else:
        rec = per_pixel.sum()
        kld = kl_divergence(mu, logvar).sum()
        if reduction == "mean":
            rec, kld = rec / x.shape[0], kld / x.shape[0]
    return VAELoss(rec + beta * kld, rec, kld)
