"""The VAE loss: the reconstruction term (the tutorial's BCE by default) plus the KL divergence."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from cvae._checks import check_float
from cvae.models.likelihoods import Likelihood, get_likelihood
from cvae.models.posterior import DiagonalGaussian

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
    return DiagonalGaussian(mu, logvar).kl()


def vae_loss(
    recon_x: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float | torch.Tensor = 1.0,
    reduction: Reduction = "sum",
    *,
    logits: bool = False,
    likelihood: Likelihood | str = "bernoulli",
    log_scale: torch.Tensor | None = None,
    free_bits: float = 0.0,
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
        likelihood: A likelihood object, such as a model's `model.likelihood` (which
            carries its learned parameters), or a registered name such as
            `"continuous-bernoulli"` (see `cvae.models.likelihoods`).
        log_scale: With the name `"gaussian"`: the log standard deviation per channel,
            `(C,)`. A model's Gaussian carries its own; pass `model.likelihood` instead.
        free_bits: Nats per latent unit that the KL term does not charge for (Kingma et
            al. 2016): the loss counts each unit's KL, averaged over the batch, as at least
            `free_bits`, so the encoder loses nothing by using a unit that little and the
            posterior does not collapse onto the prior. 0 (the default) is the plain ELBO.
            The `kl` returned is the true KL either way. Needs `reduction` `"sum"` or
            `"mean"`: it is a property of a batch.

    Returns:
        A `VAELoss` of `(loss, reconstruction, kl)`.

    Raises:
        ValueError: If the shapes disagree, `reduction` or `likelihood` is unknown, or a
            likelihood with learned parameters is named without them.
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
    if free_bits:
        free_bits = check_float("free_bits", free_bits)
    if free_bits and reduction == "none":
        raise ValueError("free_bits applies to a batch, not to one image: use reduction 'sum' or"
                         " 'mean'")
    lik = _likelihood(likelihood, x, log_scale)
    per_pixel = lik(recon_x, x) if logits else lik.nll_of_parameter(recon_x, x)
    if reduction == "none":
        rec = per_pixel.flatten(1).sum(1)
        kld = DiagonalGaussian(mu, logvar).kl()
        return VAELoss(rec + beta * kld, rec, kld)
    rec = per_pixel.sum()
    posterior = DiagonalGaussian(mu, logvar)
    kld = posterior.kl().sum()
    charged = kld
    if free_bits and len(mu):  # each unit's KL, averaged over the batch, counted as at least free_bits
        charged = posterior.kl_per_unit().mean(0).clamp(min=free_bits).sum() * x.shape[0]
    if reduction == "mean":
        rec, kld, charged = rec / x.shape[0], kld / x.shape[0], charged / x.shape[0]
    return VAELoss(rec + beta * charged, rec, kld)


def _likelihood(likelihood: Likelihood | str, x: torch.Tensor,
                log_scale: torch.Tensor | None) -> Likelihood:
    """The likelihood object for `vae_loss`: as given, or built from a registered name."""
    if isinstance(likelihood, Likelihood):
        if log_scale is not None:
            raise ValueError("log_scale goes with a likelihood's name; a likelihood object"
                             " carries its own parameters")
        return likelihood
    lik = get_likelihood(likelihood)(tuple(x.shape[1:]) or (1,))
    learned = sorted(name for name, _ in lik.named_parameters())
    if log_scale is not None:
        if learned != ["log_scale"]:
            raise ValueError(f"the {likelihood} likelihood takes no log_scale")
        # The caller's tensor replaces the fresh parameter, so that gradients reach it, and
        # is used as it is.
        del lik.log_scale
        lik.log_scale, lik.calibrated = log_scale, False
    elif learned:
        raise ValueError(f"the {likelihood} likelihood has learned parameters {learned}: pass the"
                         f" model's own, likelihood=model.likelihood")
    return lik
