"""Likelihoods `p(x | z, y)`: how the decoder's output scores an image, and what it means.

The decoder returns one unconstrained value per pixel, `eta`. A likelihood is a small
`nn.Module` that reads it: its negative log-likelihood (calling it), its mean (what
`decode` and `sample` return), the pixel values it accepts, and any parameters of its own,
which are then part of the model's weights. Three are registered:

- `"bernoulli"` (the tutorial's, the default): pixel probability `sigmoid(eta)`; its
  negative log-likelihood is the binary cross-entropy. For images in [0, 1], best for
  near-binary ones such as MNIST.
- `"continuous-bernoulli"` (Loaiza-Ganem and Cunningham 2019): the same `sigmoid(eta)`,
  with the normalising constant that makes it a proper density on [0, 1], so the bound is
  a real log-likelihood for grey-level images. Its mean is not `sigmoid(eta)`; `decode`
  returns the mean.
- `"gaussian"`: mean `eta`, standard deviation `exp(log_scale)`, one for all channels, set
  in training to the error of each batch (a calibrated decoder, as in Rybkin et al. 2021).
  For images with grey levels and any real-valued ones.

A new one is a subclass registered with `register_likelihood` (see the likelihoods guide).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from cvae._registry import Registry

__all__ = ["Likelihood", "Bernoulli", "ContinuousBernoulli", "Gaussian", "register_likelihood",
           "get_likelihood", "list_likelihoods", "grey_level", "suited_likelihood"]

L = TypeVar("L", bound=type["Likelihood"])

_REGISTRY: Registry[type[Likelihood]] = Registry(
    "likelihood", "Register a new one with cvae.register_likelihood({name}, MyLikelihood).")


class _BCEWithLogits(torch.autograd.Function):
    """`max(eta, 0) - x eta - log(max(p, 1 - p))` with `p = sigmoid(eta)`; gradient `p - x`.

    The same values as `F.binary_cross_entropy_with_logits` (to about 1e-6 per pixel),
    faster on a CPU, where torch's goes through the slow `log_sigmoid`.
    `max(p, 1 - p) = sigmoid(|eta|)` lies in [0.5, 1], where `log` is exact enough, and `p`
    serves the backward pass too.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, eta: torch.Tensor,
                x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(eta)
        ctx.save_for_backward(p, x, eta)
        return eta.clamp_min(0).sub_(x * eta).sub_(torch.maximum(p, 1 - p).log_())

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        p, x, eta = ctx.saved_tensors  # type: ignore[attr-defined]
        # x may need a gradient too (it never does in training): d/dx = -eta.
        return ((p - x) * grad if ctx.needs_input_grad[0] else None,
                -eta * grad if ctx.needs_input_grad[1] else None)


def bce_with_logits(eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The binary cross-entropy of each pixel from logits, as `F.binary_cross_entropy_with_logits`.

    On a CPU through `_BCEWithLogits`, which is faster there; elsewhere through torch's.
    """
    if eta.device.type != "cpu":  # one fused kernel on a GPU: fewer launches than ours
        return F.binary_cross_entropy_with_logits(eta, x, reduction="none")
    dtype = torch.promote_types(eta.dtype, x.dtype)
    eta, x = torch.broadcast_tensors(eta.to(dtype), x.to(dtype))
    return _BCEWithLogits.apply(eta, x)


class Likelihood(nn.Module):
    """The base class of likelihoods: subclass it, then register it with a name.

    A subclass implements `forward` (the negative log-likelihood of each pixel) and
    `mean`; it may override `parameter`, `value_range` and `label`, and may hold learned
    parameters (they train and save with the model).

    Args:
        image_shape: `(C, H, W)` of the images the model makes, for likelihoods with a
            parameter per channel or pixel.

    Attributes:
        name: The name it is registered under (set by `register_likelihood`).
        logits: Whether the decoder's output is logits, which `sharpen` scales.
        label: How tables name its negative log-likelihood, as in "reconstruction (BCE)".
        value_range: The pixel values it accepts, `(low, high)`; training data outside
            are refused before the first step.
    """

    name: ClassVar[str] = ""
    logits: ClassVar[bool] = False
    label: ClassVar[str] = "-log p(x | z, y)"
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28)):
        super().__init__()

    def forward(self, eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The negative log-likelihood of each pixel of `x`, in nats, the shape of `x`.

        Args:
            eta: The decoder's output, the shape of `x`.
            x: The images, `(B, C, H, W)`.
        """
        raise NotImplementedError

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """The expected image under the likelihood: what `decode` and `sample` return."""
        raise NotImplementedError

    @contextmanager
    def calibrated_on(self, rows: torch.Tensor) -> Iterator[None]:
        """Within the block, fit what training fits to each batch to these of its images only.

        A likelihood whose parameters follow each batch (the Gaussian's calibrated scale)
        overrides it; the others have nothing to fit, and ignore it.

        Args:
            rows: A bool mask `(B,)` of the batch's images to fit to.
        """
        yield

    def mean_(self, eta: torch.Tensor) -> torch.Tensor:
        """`mean`, allowed to overwrite `eta` (sampling uses it, when nothing needs `eta`)."""
        return self.mean(eta)

    def parameter(self, eta: torch.Tensor) -> torch.Tensor:
        """The distribution's parameter, what `model(x, y)` returns: by default the mean."""
        return self.mean(eta)

    def sharpen(self, eta: torch.Tensor, sharpness: float) -> torch.Tensor:
        """The decoder's output made sharper (`sharpness` above 1) or softer (below 1).

        Likelihoods whose output is logits (`logits = True`: `Bernoulli`,
        `ContinuousBernoulli`) scale them: pixels move towards 0 or 1, as a temperature
        below 1 does for a classifier. The others refuse, as the Gaussian does, whose output
        is the image's mean: nothing in it is a confidence to scale.

        Raises:
            ValueError: If this likelihood has nothing to sharpen.
        """
        self.check_sharpens()
        return eta * sharpness

    def check_sharpens(self) -> None:
        """Refuse a sharpness other than 1, before any work, where the output is not logits.

        Raises:
            ValueError: If this likelihood has nothing to sharpen.
        """
        if not self.logits:
            raise ValueError(f"sharpness scales a decoder's logits, which the {self.name!r} likelihood"
                             f" does not have (its output is the image's mean); leave sharpness at 1,"
                             f" and use temperature or guidance")

    def nll_of_parameter(self, parameter: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The negative log-likelihood of each pixel, from `parameter(eta)` rather than `eta`.

        For `vae_loss` without `logits=True`. The default treats the parameter as `eta`,
        which is right where `parameter` is the identity.
        """
        return self(parameter, x)

    def output_of_mean(self, mean: torch.Tensor) -> torch.Tensor | None:
        """The decoder output whose `mean` is `mean`, or `None` where there is no closed form.

        `ConditionalVAE.from_data` starts the decoder there, at the training images' mean;
        this default, `None`, leaves the decoder where its initialisation puts it.
        """
        return None

    def advice(self, images: torch.Tensor) -> str | None:
        """Why another likelihood would suit these training images better, or `None`.

        The Trainer logs it as a warning before training; this default has none.
        """
        return None

    def check(self, images: torch.Tensor, role: str = "the") -> None:
        """Refuse images outside `value_range`, saying which likelihood accepts them.

        Raises:
            ValueError: If a value is outside the range.
        """
        low, high = self.value_range
        lo, hi = images.min().item(), images.max().item()
        if lo >= low and hi <= high:
            return
        ranges = {name: get_likelihood(name).value_range for name in list_likelihoods()}
        wider = [name for name, (a, b) in ranges.items() if a <= lo and hi <= b]
        advice = (f"likelihood={wider[0]!r} for unbounded values" if wider
                  else "a likelihood that accepts them")
        raise ValueError(f"{role} images must lie in [{low:g}, {high:g}] for the {self.name}"
                         f" likelihood, got values from {lo:.3g} to {hi:.3g}; rescale them,"
                         f" for example with transforms.ToTensor() or x / 255, or use {advice}")


def register_likelihood(name: str, cls: L | None = None, *, overwrite: bool = False
                        ) -> L | Callable[[L], L]:
    """Register a `Likelihood` subclass under `name`, directly or as a class decorator.

    Models then take `likelihood=name`, and `from_pretrained` rebuilds them from
    `config.json`, as long as the registration has run in the loading process.

    Args:
        name: The name, for example `"laplace"`.
        cls: The class; leave it out to use `@register_likelihood(name)` on the class.
        overwrite: Replace an existing registration of the same name.

    Returns:
        The class (so that the decorator form keeps it), or the decorator.

    Raises:
        TypeError: If `cls` is not a `Likelihood` subclass.
        ValueError: If `name` is taken and `overwrite` is False.
    """
    def register(cls: L) -> L:
        if not (isinstance(cls, type) and issubclass(cls, Likelihood)):
            raise TypeError(f"a likelihood must be a cvae.models.likelihoods.Likelihood subclass,"
                            f" got {cls!r}")
        _REGISTRY.register(name, cls, overwrite=overwrite)
        cls.name = name
        return cls

    return register if cls is None else register(cls)


def get_likelihood(name: str) -> type[Likelihood]:
    """The likelihood class registered under `name`.

    Raises:
        UnknownNameError: If nothing is registered under `name`; the message lists what is.
    """
    return _REGISTRY.get(name)


def list_likelihoods() -> list[str]:
    """The names of the registered likelihoods, sorted."""
    return _REGISTRY.names()


class Bernoulli(Likelihood):
    """Pixel probability `sigmoid(eta)`; the negative log-likelihood is the tutorial's BCE."""

    label = "BCE"
    logits = True

    def forward(self, eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The binary cross-entropy of each pixel, computed from the logits `eta`."""
        return bce_with_logits(eta, x)

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """`sigmoid(eta)`, the pixel probabilities."""
        return torch.sigmoid(eta)

    def output_of_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """`logit(mean)`, the mean kept within [0.01, 0.99].

        A pixel that no training image inks would otherwise start at minus infinity.
        """
        return torch.logit(mean.clamp(0.01, 0.99))

    def mean_(self, eta: torch.Tensor) -> torch.Tensor:
        """`sigmoid(eta)` in place: a second image-sized buffer costs sampling time."""
        return eta.sigmoid_()

    def nll_of_parameter(self, parameter: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The tutorial's BCE of probabilities, log-probabilities clamped at -100 as torch's."""
        return F.binary_cross_entropy(parameter, x, reduction="none")

    def advice(self, images: torch.Tensor) -> str | None:
        """Advise another likelihood for images with grey levels (see `suited_likelihood`).

        The BCE's best guess for a pixel is its expected value, so on images with many
        grey levels the samples come out as dim, blurred averages, and on small data sets
        the posterior collapses: on 6,000 MNIST digits shrunk to 8x8
        (`experiments/collapse/collapse.py`), 4 of 20 latent units stayed active, and every sample of
        a class looked the same; with the Gaussian likelihood all 20 did.
        """
        distance = grey_level(images)
        if distance <= GREY_LEVEL:
            return None
        return (f"the training images have grey levels (a pixel lies {distance:.2f} from 0 or 1"
                f" on average, MNIST's 0.03): the Bernoulli likelihood draws them as dim blurs;"
                f" likelihood='gaussian' suits them (from_data chooses it; see the guide,"
                f" Likelihoods)")


_SMALL = 1e-2  # below this |eta|, the continuous Bernoulli uses its Taylor expansions


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli: `sigmoid(eta)` with the constant that makes it a density."""

    label = "continuous Bernoulli NLL"
    logits = True

    @staticmethod
    def log_norm(eta: torch.Tensor) -> torch.Tensor:
        """`log C(sigmoid(eta))`, the log normaliser, stable for any `eta`.

        With `lambda = sigmoid(eta)`, `C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)`, which
        simplifies to `eta / tanh(eta / 2)`: about `2 + eta^2 / 6` near 0, and `|eta|` far out.
        """
        small = eta.abs() < _SMALL
        safe = torch.where(small, torch.ones_like(eta), eta)
        exact = torch.log(safe / torch.tanh(safe / 2))
        return torch.where(small, math.log(2) + eta.pow(2) / 12, exact)

    def forward(self, eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The binary cross-entropy of each pixel less the log normaliser."""
        return bce_with_logits(eta, x) - self.log_norm(eta)

    def parameter(self, eta: torch.Tensor) -> torch.Tensor:
        """`lambda = sigmoid(eta)`, which is not the mean."""
        return torch.sigmoid(eta)

    def nll_of_parameter(self, parameter: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The negative log-likelihood from `lambda`, through its logit."""
        return self(torch.logit(parameter, eps=1e-6), x)

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """`E[x] = (1 + L(eta / 2)) / 2`, with `L(x) = coth(x) - 1/x` the Langevin function.

        Its series near 0 avoids the cancellation between `coth(x)` and `1/x`.
        """
        x = eta / 2
        small = x.abs() < 0.25
        safe = torch.where(small, torch.ones_like(x), x)
        langevin = torch.where(small, x / 3 - x.pow(3) / 45 + 2 * x.pow(5) / 945,
                               1 / torch.tanh(safe) - 1 / safe)
        return ((1 + langevin) / 2).clamp(0, 1)


#: The smallest scale the Gaussian takes, in training or fitted: an image decoded exactly
#: would otherwise get an infinite density.
MIN_SCALE = 1e-3


class Gaussian(Likelihood):
    """Mean `eta`, standard deviation `exp(log_scale)`: a calibrated decoder.

    The scale is not learned by gradient: in training, each batch is scored with the
    standard deviation that fits it best, the root mean squared error over its pixels and
    channels (Rybkin et al. 2021, "Simple and Effective VAE Training with Calibrated
    Decoders"; one scale for all channels, see `forward`), and
    `log_scale` follows it (a running average, as batch norm keeps its statistics). In eval
    mode, the ELBO and the IWAE bound use `log_scale`, so each image has a proper density.
    Where validation images choose the weights, the Trainer fits it to them instead
    (`fit_scale`, through `ConditionalVAE.calibrate`): the training images' error shrinks
    below any other image's as a small set is learned by heart.
    A scale learned by Adam falls by about the learning rate per step, from 1, far above the
    error of most images: so slowly that the KL term first pushes every latent unit onto
    the prior (on 6,000 MNIST digits shrunk to 8x8, none stayed active in 10 epochs;
    calibrated, all 20 did).

    Attributes:
        log_scale: The log standard deviation of each channel, `(C,)`: a parameter that
            gradients do not train, saved with the weights (training gives every channel
            the same; a model saved by 0.1.0 may hold one per channel, which it keeps).
        calibrated: Whether training sets the scale (`vae_loss` with a `log_scale` of the
            caller's turns it off).
    """

    label = "Gaussian NLL"
    value_range = (-math.inf, math.inf)
    momentum = 0.1  # of the running average, batch norm's default

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28)):
        super().__init__(image_shape)
        self.log_scale = nn.Parameter(torch.zeros(int(image_shape[0])), requires_grad=False)
        self.calibrated = True
        self.calibrate_on: torch.Tensor | None = None

    @contextmanager
    def calibrated_on(self, rows: torch.Tensor) -> Iterator[None]:
        """Within the block, the scale is fitted to these rows of each batch only (`(B,)` bools)."""
        # Condition dropout decodes some images without their condition; their larger
        # errors would widen the scale that the images decoded with it are scored with.
        self.calibrate_on = rows
        try:
            yield
        finally:
            self.calibrate_on = None

    def forward(self, eta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The normal density's negative log of each pixel, with its channel's scale."""
        log_scale = self.log_scale
        if self.calibrated and self.training and torch.is_grad_enabled():
            with torch.no_grad():
                # One scale for every channel. A channel's own scale weighs its errors by
                # 1 / scale^2, so a channel the decoder fits worse early is weighed less,
                # learned less, and keeps its large scale, even where the channels are alike
                # (colourised digits: the small-data panel's held-out loss fell by 641 nats
                # per image with one scale).
                error = (x - eta).pow(2).reshape(len(x), -1).mean(1)  # each image's mean squared error
                if self.calibrate_on is not None:  # a batch with none of its images kept fits them all
                    kept = self.calibrate_on.to(error.dtype)
                    error = torch.where(kept.sum() > 0, (error * kept).sum() / kept.sum().clamp(min=1), error)
                # Floored: a batch the decoder fits exactly would otherwise score infinitely well.
                log_scale = error.mean().sqrt().clamp(min=MIN_SCALE).log().expand(x.shape[1])
                self.log_scale.lerp_(log_scale.to(self.log_scale.dtype), self.momentum)
        log_scale = log_scale.view(-1, *([1] * (x.dim() - 2)))  # broadcast over H, W
        return 0.5 * ((x - eta) * torch.exp(-log_scale)).pow(2) + log_scale + 0.5 * math.log(
            2 * math.pi)

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """`eta` itself."""
        return eta

    def output_of_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """`mean` itself."""
        return mean

    def fit_scale(self, mean_squared_error: float) -> None:
        """Set the scale of every channel to the root of a mean squared error (floored as in training)."""
        self.log_scale.data.fill_(math.log(max(math.sqrt(mean_squared_error), MIN_SCALE)))


GREY_LEVEL = 0.05
"""Above this mean distance of a pixel to 0 or 1, images have grey levels: MNIST's digits lie
0.03 from black or white, Fashion-MNIST's clothes 0.12, MNIST shrunk to 14x14 0.05 and to
8x8 0.09 (the interpolation greys their edges)."""


def grey_level(images: torch.Tensor) -> float:
    """The mean distance of a pixel to 0 or 1, over up to 10,000 `(N, C, H, W)` images."""
    images = images[:10000].float()
    return torch.minimum(images, 1 - images).mean().item()


def suited_likelihood(images: torch.Tensor) -> str:
    """The likelihood that suits these images: what `ConditionalVAE.from_data` picks.

    `"bernoulli"` (the tutorial's BCE) for near-binary images in [0, 1], whose
    `grey_level` is at most `GREY_LEVEL`; `"gaussian"` for all others. Not the continuous
    Bernoulli: its density at a pixel of exactly 0 or 1 grows without bound as the decoder
    grows more certain, which on images with black backgrounds drives the weights up until
    some samples decode to a flat grey (5% of them on MNIST digits shrunk to 8x8).

    Args:
        images: `(N, C, H, W)` float images, a sample of the data set.
    """
    outside = images.min().item() < 0 or images.max().item() > 1
    return "gaussian" if outside or grey_level(images) > GREY_LEVEL else "bernoulli"


register_likelihood("bernoulli", Bernoulli)
register_likelihood("continuous-bernoulli", ContinuousBernoulli)
register_likelihood("gaussian", Gaussian)
