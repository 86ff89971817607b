"""`ConditionalVAE`: a VAE whose encoder and decoder both see the class label."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cvae._checks import check_bool, check_float, check_image_shape, check_images, check_int, short
from cvae._classes import UNLABELLED
from cvae._config import register_to_config
from cvae.conditions import Conditions
from cvae.hub.mixin import HubMixin
from cvae.models._centring import CodeShift
from cvae.models._conditioning import ConditionMixin, build_conditions
from cvae.models._guidance import drop_conditions
from cvae.models._independence import with_independence
from cvae.models._latent import LatentMixin
from cvae.models._prior import FittedPrior
from cvae.models._semi import SemiSupervisedMixin
from cvae.models._settings import (
    check_centre_codes,
    check_condition_dropout,
    check_independence,
    check_prior,
    check_unset,
    given_or_built,
    model_class,
)
from cvae.models._unset_values import UnsetValues
from cvae.models.likelihoods import Likelihood, get_likelihood
from cvae.models.loss import VAELoss, vae_loss
from cvae.models.posterior import DiagonalGaussian

__all__ = ["ConditionalVAE"]


class ConditionalVAE(HubMixin, ConditionMixin, LatentMixin, SemiSupervisedMixin, nn.Module):
    """A conditional VAE (Sohn et al. 2015) with a pluggable encoder/decoder backbone.

    The constructor takes only JSON-serialisable settings, captured in `model.config`, so
    `ConditionalVAE(**model.config)` (and `from_pretrained`, from `config.json`) rebuilds
    the same architecture. The defaults are the tutorial's MNIST model. The model computes
    its own loss (`model.loss`), which the Trainer, the metrics and any training loop call.

    Args:
        image_shape: `(C, H, W)` of the images, for example `(1, 28, 28)` for MNIST.
        num_classes: Number of classes the model is conditioned on.
        latent_dim: Size of the latent code `z`.
        backbone: Name of a registered backbone (see `cvae.list_backbones()`).
        backbone_kwargs: Settings for the backbone, e.g. `{"hidden_dims": [400]}` for `"mlp"`.
        class_names: Optional names of the classes, in class-index order; labels can then
            be given by name, as in `model.sample("Sneaker", 8)`.
        likelihood: How the decoder scores images, a registered name (see
            `cvae.list_likelihoods()`): `"bernoulli"` (the tutorial's BCE),
            `"continuous-bernoulli"` or `"gaussian"` (whose standard deviation,
            `model.likelihood.log_scale`, training calibrates). `ConditionalVAE.from_data`
            chooses from the data.
        semi_supervised: Add a classifier `q(y | x)`, so that images labelled -1 (unknown)
            train the model too (Kingma et al. 2014's M2; see the guide, Partly labelled data);
            `classify` is it.
        classifier_weight: Weight of the classifier's cross-entropy on each labelled image in
            the loss of a semi-supervised model (the paper's alpha).
        condition_dropout: The share of training images whose label is dropped (zeros
            instead of the one-hot code; `unset` says where), so that the model
            also decodes without its condition, and `sample(..., guidance=w)` can push its
            images away from the unconditional ones (classifier-free guidance). With several
            conditions, each part is dropped for that share of the images on its own, so
            that any part can be left unset. Default: 0 for one label (the tutorial's
            model), 0.1 for several conditions; 0.1 is usual. Not for semi-supervised models.
        unset: What a dropped condition trains, and so what a part left unset draws.
            `"average"` hides it from the decoder only, and the image trains the decoder
            alone: the latent code stays the style that the whole condition leaves, so an
            unset part is drawn as its average for that style, and guidance pushes towards
            what sets the asked condition apart from that average (what guidance needs:
            the `mnist-conv` recipe). `"free"` hides it from the encoder too: the code learns
            to carry the part, so an unset part varies from code to code like the training
            data, and guidance does little or harm. `"data"` (several conditions) trains as
            `"average"`, keeps the training images' conditions when training ends, and
            `sample` fills an unset part from one near the parts it sets: it spreads like
            the data, and the code stays free of it (`cvae.models._unset_values`). Default:
            `"average"` for one label, `"free"` for several conditions;
            `ConditionalVAE.from_data` chooses `"data"` for several.
        sampling: The sampling setting that `sample` uses where its call sets none:
            `{"temperature": t, "sharpness": s, "guidance": w}`, any of them (`cvae eval
            --sweep --recommend` measures the trade-off and writes the one it recommends).
            `None`: the model's own distribution (1, 1, 0).
        conditions: Several conditions instead of one label: a `cvae.conditions.Conditions`
            or its JSON list, `[{"name": "digit", "kind": "categorical", "num_classes": 10},
            {"name": "thickness", "kind": "continuous"}]` (kinds: categorical, multi-label,
            continuous). Then `num_classes` and `class_names` are those of its first
            categorical part. `ConditionalVAE.from_data` takes them from the data; a
            continuous part's statistics come from the training data. See the guide,
            Several conditions.
        prior: What `sample` draws latent codes from. `"standard"`: `N(0, I)`, the prior
            the model is trained with (the tutorial's). `"fitted"`: a Gaussian fitted to
            each class's training codes when training ends (`fit_prior`; one for all codes
            with several conditions), which keeps samples where the decoder learned: much
            better samples from small sets (the guide, Training on your own data).
            `ConditionalVAE.from_data` chooses `"fitted"`. The ELBO and IWAE bound are the
            trained model's, with `N(0, I)`, either way.
        independence: Weight of a penalty, in training, on the squared correlation of the
            latent code with the conditions (`cvae.models._independence`), which keeps them
            out of the code: it should carry the style, and the condition the rest. 0 (the
            default) leaves the tutorial's objective; `ConditionalVAE.from_data` chooses 1
            for several conditions. The ELBO the model reports is without it.
        centre_codes: For several conditions: when training ends, take out of the latent
            code what a linear function of the condition predicts of it (fitted by least
            squares to the training codes), and add it back before the decoder
            (`cvae.models._centring`): the images drawn from a code and a condition are the
            same, but each class's (tag's, value's) codes are centred, so the code carries no
            linear trace of the conditions, `transfer` carries an image's style relative to
            its own class, and the KL term falls. `ConditionalVAE.from_data` chooses it for
            several conditions.
        encoder: An encoder module of your own, used instead of the backbone's (give
            `decoder` too). Such a model trains and samples, but `save_pretrained` cannot
            name it in `config.json`: register the classes with `register_backbone` and
            pass `backbone=` to make a model that saves and loads.
        decoder: A decoder module of your own, to go with `encoder`.

    Attributes:
        likelihood: The `cvae.models.likelihoods.Likelihood` module that scores images; its name
            is `model.config["likelihood"]`.

    Example:
        ```python
        model = ConditionalVAE()            # the tutorial's MNIST architecture
        images = model.sample(7, n=16)      # (16, 1, 28, 28), values in [0, 1]
        ```
    """

    ignore_for_config = ("encoder", "decoder")  # modules: config.json names a backbone instead
    # Format 2 moved the Gaussian's scale from the model into its likelihood.
    renamed_tensors = {2: {"log_scale": "likelihood.log_scale"}}

    @register_to_config
    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        num_classes: int = 10,
        latent_dim: int = 20,
        backbone: str = "mlp",
        backbone_kwargs: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        likelihood: str = "bernoulli",
        semi_supervised: bool = False,
        classifier_weight: float = 50.0,
        condition_dropout: float | None = None,
        unset: str | None = None,
        sampling: dict[str, float] | None = None,
        conditions: Sequence[dict[str, Any]] | Conditions | None = None,
        prior: str = "standard",
        independence: float = 0.0,
        centre_codes: bool = False,
        *,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
    ):
        super().__init__()
        image_shape = check_image_shape(image_shape)
        schema = build_conditions(conditions, num_classes, class_names)
        num_classes, class_names = model_class(schema)
        latent_dim = check_int("latent_dim", latent_dim)
        if backbone_kwargs is not None and not isinstance(backbone_kwargs, dict):
            raise ValueError(f"backbone_kwargs must be a dict of the backbone's settings, got"
                             f" {short(backbone_kwargs)}")
        classifier_weight = check_float("classifier_weight", classifier_weight)
        semi_supervised = check_bool("semi_supervised", semi_supervised)
        condition_dropout = check_condition_dropout(condition_dropout, semi_supervised, schema)
        unset = check_unset(unset, schema)
        prior = check_prior(prior)
        self.independence = check_independence(independence, semi_supervised)
        centre_codes = check_centre_codes(centre_codes, schema)
        likelihood_class = get_likelihood(likelihood)
        self.classifier: nn.Module | None
        encoder, decoder, self.classifier, backbone, backbone_kwargs = given_or_built(
            encoder, decoder, backbone, backbone_kwargs, image_shape, schema, latent_dim, semi_supervised)
        # Every setting in full, so that a saved model rebuilds if a later default changes.
        self.register_to_config(image_shape=image_shape, backbone=backbone, num_classes=num_classes,
                                backbone_kwargs=backbone_kwargs, class_names=class_names,
                                condition_dropout=condition_dropout, unset=unset,
                                conditions=None if conditions is None else schema.to_json())
        self.image_shape, self.num_classes, self.latent_dim = image_shape, num_classes, latent_dim
        self.class_names, self.condition_dropout, self._conditions = class_names, condition_dropout, schema
        self.unset, self.prior = unset, prior
        self.encoder, self.decoder = encoder, decoder
        self.fitted_prior = FittedPrior(self._prior_groups, latent_dim) if prior == "fitted" else None
        self.unset_values = UnsetValues(schema.table_width) if unset == "data" else None
        self.code_shift = CodeShift(schema, latent_dim) if centre_codes else None
        self.likelihood: Likelihood = likelihood_class(image_shape)
        self.sampling = self.check_sampling(sampling)
        # One-hot codes as rows of an identity matrix: `eye[y]` is a cheap gather that
        # follows the model's device and dtype. Not persistent: it is not a weight.
        eye = torch.zeros(max(1, num_classes), max(1, num_classes))
        eye.diagonal().fill_(1)  # not torch.eye, which on the meta device imports torch._dynamo
        self.register_buffer("_eye", eye, persistent=False)
        # Which part each column of the condition row belongs to: condition dropout's mask.
        self.register_buffer("_row_parts", torch.tensor(schema.row_parts()), persistent=False)

    @property
    def device(self) -> torch.device:
        """The device of the model's weights."""
        return self._eye.device

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the model's weights: what inputs are cast to."""
        return self._eye.dtype

    @property
    def noise_dim(self) -> int:
        """Standard normals a training step draws per image for `loss(noise=)`.

        The latent code's, and with `condition_dropout` one more per condition part: the
        coins that decide whether the image's parts are dropped.
        """
        return self.latent_dim + (len(self._conditions) if self.condition_dropout else 0)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters of images given their labels.

        Args:
            x: Images, `(B, C, H, W)`, values in [0, 1].
            y: Class indices, `(B,)` integer tensor, or label rows `(B, num_classes)`.

        Returns:
            `(mu, logvar)`, each `(B, latent_dim)`.

        Raises:
            ValueError: If `x` is not `(B, *image_shape)` or `y` is not `(B,)`.
        """
        check_images(x, self.image_shape)
        self._check_labels(y, len(x))
        return self._encode_rows(x, self.condition_rows(y))

    def _encode_rows(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's `(mu, logvar)` for images and condition rows, the codes centred, unchecked."""
        mu, logvar = self.encoder(x.to(self.dtype), rows)
        if self.code_shift is not None:
            mu = mu - self.code_shift(rows).to(mu.dtype)
        return mu, logvar

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> DiagonalGaussian:
        """The encoder's `q(z | x, y)` for images and their labels, as a `DiagonalGaussian`.

        Raises:
            ValueError: If `x` is not `(B, *image_shape)` or `y` is not `(B,)`.
        """
        return DiagonalGaussian(*self.encode(x, y))

    def reparameterize(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw `z = mu + eps * exp(0.5 * logvar)` with `eps ~ N(0, I)`.

        Args:
            mu: Posterior means, `(B, D)`.
            logvar: Posterior log-variances, `(B, D)`.
            generator: Optional random generator, for reproducible draws; a CPU generator
                gives the same draws whatever the model's device.
            noise: Optional `eps` drawn by the caller, `(B, D)`; then nothing is drawn here.
        """
        return DiagonalGaussian(mu, logvar).rsample(generator, noise)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pixel logits for latent codes and labels, `(B, C, H, W)` (before the sigmoid).

        Raises:
            ValueError: If `z` is not `(B, latent_dim)` or `y` is not `(B,)`.
        """
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latent codes must be (B, {self.latent_dim}) for this model, got shape"
                             f" {tuple(z.shape)}")
        self._check_labels(y, len(z))
        return self._decode_rows(z, self.condition_rows(y))

    def _decode_rows(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The decoder's logits for codes and condition rows `(B, conditions.width)`, unchecked."""
        return self._decode_shifted(self._shifted(z, rows), rows)

    def _shifted(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The codes the decoder takes for the model's codes and their rows: the shift added back."""
        return z if self.code_shift is None else z + self.code_shift(rows).to(z.dtype)

    def _decode_shifted(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The decoder's logits for codes already shifted (`_shifted`), unchecked."""
        return self.decoder(z.to(self.dtype), rows)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The expected images for latent codes `(B, latent_dim)` and labels `(B,)`.

        Labels may also be rows `(B, num_classes)`, as in `one_hot`. Values are in [0, 1]
        for the Bernoulli likelihoods; for the continuous Bernoulli this is its mean, not
        `sigmoid(logits)`.

        Raises:
            ValueError: If `z` is not `(B, latent_dim)` or `y` is not `(B,)`.
        """
        return self.likelihood.mean(self.decode_logits(z, y))

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        return_logits: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw `z`, decode: the tutorial's forward pass.

        Args:
            x: Images, `(B, C, H, W)`, values in [0, 1].
            y: Class indices, `(B,)`.
            generator: Optional random generator for the draw of `z`.
            noise: Optional standard normal noise `(B, latent_dim)` for the draw of `z`.
            return_logits: Return the decoder's logits instead of the likelihood's parameter
                (probabilities, or the Gaussian's mean); `vae_loss` takes either (`logits=`).

        Returns:
            `(reconstruction, mu, logvar)`.
        """
        mu, logvar = self.encode(x, y)
        logits = self.decode_logits(self.reparameterize(mu, logvar, generator, noise), y)
        recon = logits if return_logits else self.likelihood.parameter(logits)
        return recon, mu, logvar

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        beta: float | torch.Tensor = 1.0,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        reduction: str = "sum",
        free_bits: float = 0.0,
    ) -> VAELoss:
        """The loss of a batch, `reconstruction + beta * kl`, with one draw of `z` per image.

        With `beta = 1` it is the negative ELBO, which `Trainer` minimises and
        `cvae.evaluation.elbo` reports; the model's own likelihood scores the reconstruction.

        Args:
            x: Images, `(B, C, H, W)`.
            y: Class indices, `(B,)`.
            beta: Weight of the KL term.
            generator: Optional random generator for the draw of `z`.
            noise: Optional standard normal noise `(B, latent_dim)` for the draw of `z`; in
                training with `condition_dropout`, `(B, noise_dim)`: its last column decides
                which labels are dropped.
            reduction: `"sum"`, `"mean"` or `"none"`, as in `vae_loss`.
            free_bits: Nats per latent unit that the KL term does not charge for (`vae_loss`).

        Returns:
            A `VAELoss` of `(loss, reconstruction, kl)`, in nats. A semi-supervised model
            scores images labelled -1 by the M2 bound (Partly labelled data), and in training mode adds its
            classifier's cross-entropy on the labelled ones. In training mode, a model with
            `condition_dropout` scores that share of the images without their label.
        """
        if self.classifier is not None and y.dim() == 1 and (
                self.training or bool((y == UNLABELLED).any())):
            return self._partly_labelled_loss(x, y, beta=beta, generator=generator, noise=noise,
                                              reduction=reduction, free_bits=free_bits)
        return self._elbo_loss(x, y, beta, generator, noise, reduction, free_bits)

    def _elbo_loss(self, x: torch.Tensor, y: torch.Tensor, beta: float | torch.Tensor,
                   generator: torch.Generator | None, noise: torch.Tensor | None, reduction: str,
                   free_bits: float) -> VAELoss:
        """`loss` for labels all known: the tutorial's objective (some dropped, in training)."""
        check_images(x, self.image_shape)
        self._check_labels(y, len(x))
        given = rows = decoder_rows = self.condition_rows(y)
        dropping = self.training and bool(self.condition_dropout)
        fit_to: AbstractContextManager[None] = nullcontext()
        if dropping:
            decoder_rows, noise = drop_conditions(rows, self.condition_dropout, noise, self.latent_dim,
                                                  generator, self._row_parts, len(self._conditions))
            # The Gaussian's scale is fitted to the images decoded with their whole condition,
            # the images the held-out loss scores: the dropped ones' larger errors would widen it.
            fit_to = self.likelihood.calibrated_on((decoder_rows == rows).all(1))
            if self.unset == "free":
                rows = decoder_rows
        mu, logvar = self._encode_rows(x, rows)
        z = self.reparameterize(mu, logvar, generator, noise)
        if dropping and self.unset != "free":
            # An image with a part dropped trains the decoder's unset input alone: were the
            # encoder to learn from it, the code would carry the part, and the unset decoder
            # would draw another image from the same code, not the average guidance needs.
            z = torch.where((decoder_rows != rows).any(1, keepdim=True), z.detach(), z)
        # The shift of the rows the code was encoded with: a part dropped from the decoder's
        # rows is dropped from what it draws, not from where the code sits.
        logits = self._decode_shifted(self._shifted(z, rows), decoder_rows)
        # Under autocast the network may run in bfloat16; the loss is summed in float32 or
        # better, where a sum over a batch of pixels keeps its digits.
        dtype = torch.promote_types(logits.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False), fit_to:
            terms = vae_loss(logits.to(dtype), x.to(dtype), mu.to(dtype), logvar.to(dtype), beta,
                             reduction, logits=True, likelihood=self.likelihood,  # type: ignore[arg-type]
                             free_bits=free_bits)
            if self.training and self.independence:
                terms = with_independence(terms, mu, given, self.independence, reduction)
        return terms

    def _check_data(self, images: torch.Tensor, labels: torch.Tensor, role: str = "the") -> None:
        """Refuse data that this model cannot be trained or measured on, before any work.

        Args:
            images: `(N, C, H, W)` images.
            labels: `(N,)` class indices.
            role: What the data are for, in messages (`"training"`, `"validation"`).

        Raises:
            TypeError: If the images are not floating point.
            ValueError: If their shape is not the model's, a value is not finite or is
                outside what the likelihood accepts, or a label is not a class.
        """
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"{role} images have shape {tuple(images.shape[1:])}, but the model"
                             f" takes {self.image_shape} (C, H, W)")
        if not images.dtype.is_floating_point:
            raise TypeError(f"{role} images must be float tensors in [0, 1], got {images.dtype};"
                            f" divide uint8 images by 255")
        if not torch.isfinite(images).all():
            raise ValueError(f"{role} images contain NaN or infinite values; replace them"
                             f" (for example with torch.nan_to_num) before training")
        self.likelihood.check(images, role)
        if not self._conditions.is_single:
            return self._check_condition_values(labels, role)
        if self.classifier is not None or self.condition_dropout:  # -1: unlabelled, or unset
            labels = labels[labels != UNLABELLED]
        if len(labels) and (labels.min().item() < 0 or labels.max().item() >= self.num_classes):
            raise ValueError(f"{role} labels run from {labels.min().item()} to"
                             f" {labels.max().item()}, but the model has classes"
                             f" 0..{self.num_classes - 1}" + (" (-1 marks an unlabelled image, which"
                             " needs semi_supervised=True, or an unset one, which needs"
                             " condition_dropout)" if labels.min().item() == UNLABELLED else ""))

    def match_classes(self, class_names: Sequence[str] | None, role: str = "training") -> None:
        """Take the data's class names when the model has none (the Trainer calls this).

        Args:
            class_names: The data's class names, in class-index order, or `None`.
            role: What the data are for, in messages.

        Raises:
            ValueError: If the data have another number of classes than the model, or
                names (or an order of them) other than the model's.
        """
        if class_names is None:
            return
        names = [str(name) for name in class_names]
        if len(names) != self.num_classes:
            raise ValueError(f"the {role} data have {len(names)} classes ({short(names)}), but"
                             f" the model has {self.num_classes}; build it with"
                             f" num_classes={len(names)}, or with ConditionalVAE.from_data(data),"
                             f" which takes the shape and classes from the data")
        if self.class_names is None:
            self.class_names = names
            self.register_to_config(class_names=names)
            self._conditions = Conditions.single(self.num_classes, names, self._conditions[0].name)
            if self.config["conditions"] is not None:
                self.register_to_config(conditions=self._conditions.to_json())
        elif names != self.class_names:
            differ = next(i for i, (a, b) in enumerate(zip(names, self.class_names)) if a != b)
            raise ValueError(f"the {role} data name class {differ} {names[differ]!r}, but the model"
                             f" calls it {self.class_names[differ]!r}: the same index would mean"
                             f" two classes. Give the data the model's class order, or train a"
                             f" new model")

    @classmethod
    def from_data(cls, data: Any, **settings: Any) -> ConditionalVAE:
        """A new model shaped for `data`: its image shape, classes, names, likelihood and backbone.

        Args:
            data: Labelled data in any form the `Trainer` takes.
            **settings: Any other constructor argument (`backbone`, `latent_dim`, ...).
                `likelihood` defaults to `"auto"`: the Bernoulli for near-binary images,
                the Gaussian for images with grey levels or values outside [0, 1]
                (`cvae.models.likelihoods.suited_likelihood`). `backbone` defaults to
                `"auto"`: the conv backbone for up to 20,000 images of 8x8 pixels or more,
                the tutorial's MLP otherwise (`cvae.models._from_data.suited_backbone`), its
                decoder modulated by the code for colour images (`ConvDecoder(film=True)`);
                with `backbone_kwargs` but no `backbone`, or for a semi-supervised model (whose
                recipe was measured with it), the model's default (`"mlp"`). `prior`
                defaults to `"fitted"`: the Trainer fits it when training ends. For data
                with one label, `condition_dropout` defaults to 0.05 and `sampling` to
                `{"guidance": 1.0}` (`cvae.models._from_data.GUIDED`), unless
                `semi_supervised`, `condition_dropout`, `unset` or `sampling` is given;
                `cvae train` then chooses the weight from the training images
                (`cvae.evaluation.choose_guidance`). For several conditions, `unset`
                defaults to `"data"` (a part left unset takes a training image's value),
                `independence` to 1 and `centre_codes` to True (the code kept free of the
                conditions).

        For data with one label, the decoder starts at the data's mean image, where it and
        the likelihood say how (`start_output_at`, `output_of_mean`;
        `cvae.models._from_data.start_at_mean`), not at 0: it uses its code sooner, and a
        model of colourised images no longer collapses.

        Example:
            ```python
            data = cvae.load_dataset("path/to/folder")
            model = ConditionalVAE.from_data(data, backbone="conv")
            ```
        """
        from cvae.models._from_data import GUIDED, model_settings, spread_images, start_at_mean

        # The M2 recipe was measured with the MLP; backbone_kwargs are a given backbone's settings.
        chosen_elsewhere = "backbone_kwargs" in settings or settings.get("semi_supervised")
        backbone = settings.pop("backbone", None if chosen_elsewhere else "auto")
        images = spread_images(data)  # read once: for the likelihood, and where the decoder starts
        chosen = model_settings(data, images, settings.pop("likelihood", "auto"), backbone)
        # Guidance for one label, unless a setting of the same mechanism says otherwise.
        guided = not (settings.get("semi_supervised") or "conditions" in chosen
                      or {"condition_dropout", "unset", "sampling", "conditions"} & set(settings))
        several = ({"unset": "data", "independence": 1.0, "centre_codes": True} if "conditions" in chosen
                   else {})
        model = cls(**{**chosen, "prior": "fitted", **several, **(GUIDED if guided else {}), **settings})
        if not several:  # measured on one label; see start_at_mean for several conditions
            start_at_mean(model, images)
        return model

    def _save_pretrained(self, folder: Path) -> None:
        if self.config["backbone"] is None:
            raise ValueError(
                f"this model was built from {type(self.encoder).__name__} and"
                f" {type(self.decoder).__name__} modules, which config.json cannot name: register"
                f" them with cvae.register_backbone(name, {type(self.encoder).__name__},"
                f" {type(self.decoder).__name__}) and build the model with backbone=name to save it")
        super()._save_pretrained(folder)

    def export_onnx(self, path: str | os.PathLike[str], part: str = "decoder") -> Path:
        """Write the decoder (or `part="encoder"`) as an ONNX file with a free batch size.

        The graphs take labels as one-hot float rows. Needs `pip install "torch-cvae[onnx]"`;
        see `cvae.models._export.export_onnx`.
        """
        from cvae.models._export import export_onnx

        return export_onnx(self, path, part)
