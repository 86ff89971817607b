"""What a conditional model's latent space is good for: sampling, class transfer, interpolation.

The encoder sees the label, so the latent code keeps what the label does not say: the
style (for digits, the handwriting). Decoding one code with other labels draws the same
style as other classes; walking between two codes morphs one image into another.
Drawing codes from the prior and decoding them with a label generates new images of a
class. `LatentMixin` gives these to `ConditionalVAE` as methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from cvae._checks import check_float, check_int, short
from cvae._classes import Labels
from cvae._condition_values import table_from_values, warn_outside
from cvae._devices import check_fits, largest_activation, randn, use_bfloat16, working_bytes
from cvae._modes import in_eval_mode
from cvae.models._guidance import guided_logits
from cvae.models._prior import PRIORS, FittedPrior
from cvae.models._unset_values import UnsetValues

__all__ = ["LatentMixin", "lerp", "slerp"]


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line points between vectors `a` and `b` `(D,)`, at fractions `t` `(S,)`: `(S, D)`."""
    return a + t[:, None] * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between `a` and `b` `(D,)` at fractions `t` `(S,)`: `(S, D)`.

    It follows the great circle rather than the chord, so that the points keep the norm
    that samples from a high-dimensional Gaussian prior have (White 2016). Nearly parallel
    vectors fall back to `lerp`.
    """
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.item() < 1e-4:
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b
            ) / torch.sin(omega)


class LatentMixin:
    """Sampling, class transfer and interpolation, for a model with `encode` and `decode`."""

    fitted_prior: FittedPrior | None
    unset_values: UnsetValues | None

    @torch.inference_mode()
    def sample(
        self,
        labels: Labels | Mapping[str, Any] | None = None,
        n: int = 1,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
        batch_size: int | None = None,
        mixed_precision: bool | str = "auto",
        *,
        sharpness: float | None = None,
        guidance: float | None = None,
        prior: str | None = None,
        **conditions: Any,
    ) -> torch.Tensor:
        """Generate images of the given classes: draw codes from the prior, then decode.

        The codes come from `N(0, temperature^2 I)`, or, for a model whose prior was fitted
        to its training codes (`fit_prior`; `ConditionalVAE.from_data` models fit it when
        training ends), from the Gaussian of the class asked, its spread scaled by
        `temperature`.

        A model with several conditions takes them by name, `sample(n=16, digit=7,
        thickness=2.5)` (or as a dict, `sample({"digit": 7}, 16)`); a part left out is
        unset, which needs a model trained with `condition_dropout`: a model built with
        `unset="data"` (what `from_data` builds) fills it from a training image whose other
        parts are near the ones asked for, so it varies as the data do; `"free"` draws it
        from the code, `"average"` as its average for the style.

        Three settings trade variety for typical, clean images: `temperature` (the codes
        drawn nearer the prior's centre), `sharpness` (each pixel's logit scaled: crisper
        strokes) and `guidance` (each image pushed away from what the model draws without
        its label: more typical of its class). A setting the call leaves out (`None`) is
        the model's recommended one (`model.sampling`, which `cvae eval --sweep --recommend`
        writes), else 1, 1 and 0: the model's own distribution.

        Args:
            labels: The class to draw, as an index or a name (then `n` images of it), or a
                sequence/tensor of classes (then `n` images of each, in that order); for a
                model with several conditions, its first categorical part, or a dict of
                values by part name. `None`: the class unset (a model trained with
                `condition_dropout` draws any class).
            n: How many images to draw per label.
            temperature: Scale of the prior noise; below 1 gives cleaner, less varied images
                (default: the recommended setting's, else 1).
            generator: Optional random generator for reproducible samples.
            batch_size: Images decoded at a time; default: as many as keep the decoder's
                largest layer within `cvae._devices.working_bytes` (on a CPU, half its
                cache, where decoding runs fastest).
            mixed_precision: Decode under bfloat16 autocast, as the Trainer trains: `"auto"`
                (the default) does on CPUs that compute in bfloat16 natively (AMX, AVX-512
                BF16), about twice as fast for large draws (`benchmarks/sample_speed.py`),
                with pixels within about 0.02 of float32's; `False` decodes in float32, the
                same images on every machine for the same generator; `True` forces bfloat16.
                The images are returned in the model's dtype either way.
            sharpness: The decoder's logits are multiplied by it before the mean is taken:
                above 1 pushes pixels towards 0 or 1. For the Bernoulli likelihoods; the
                Gaussian, whose output is a mean, refuses it (default: the recommended
                setting's, else 1).
            guidance: Classifier-free guidance `w`: the logits become `f(z, y) + w (f(z, y)
                - f(z, no label))`. Needs a model trained with `condition_dropout`; costs
                one more decoder pass when not 0 (default: the recommended setting's, else 0).
            prior: `"standard"` draws the codes from `N(0, I)` even where the model has a
                fitted prior; `"fitted"` from the fitted one (refused where there is none);
                default: the fitted one where the model has it.
            **conditions: Values by condition name: one per part, or a list/tensor of them
                (then `n` images of each row, in order; parts with one value repeat). A
                categorical part takes a class index or name, a multi-label part a list of
                its tags, a continuous part a number (outside the training range: a warning).

        Returns:
            A float tensor of shape `(len(labels) * n, C, H, W)`, the likelihood's mean
            (values in [0, 1] for the Bernoulli likelihoods), on
            the model's device.

        Raises:
            TypeError: If `n` is not an int or a label has the wrong type.
            ValueError: If `n < 1`, `temperature` or `guidance` is negative or not finite,
                `sharpness` is not above 0 or does not apply to the likelihood, `guidance` is
                asked of a model trained without condition dropout, `prior` is unknown or
                `"fitted"` for a model whose prior was not fitted, a label is not one of
                the classes, or a condition is unknown, of the wrong kind, or left out of a
                model trained without condition dropout.
            MemoryError: If the images would not fit in the memory free on the device.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, got {type(n).__name__} {n!r}")
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        n = check_int("n", n)  # at most 2**63 - 1, as torch takes sizes
        temperature, sharpness, guidance = self._sampling_setting(temperature, sharpness, guidance)
        fitted = self._fitted(prior)
        bfloat16 = use_bfloat16(mixed_precision, self.device, self.dtype)
        y = self._condition_input(labels, conditions)
        batch_size = (max(1, self._decode_chunk() // (2 if guidance else 1)) if batch_size is None
                      else check_int("batch_size", batch_size))
        self._check_images_fit(len(y) * n, "draw fewer at a time")
        y = y.repeat_interleave(n, 0)
        z = randn((len(y), self.latent_dim), generator, self.device) * temperature
        z = (self._fitted_codes(y, z, generator) if fitted else z).to(self.dtype)
        if self.unset_values is not None:  # unset parts take a training image's values
            y = self.unset_values.fill(y, self.conditions, generator)

        def decode(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            rows = self.condition_rows(y)
            with torch.autocast(self.device.type, torch.bfloat16, enabled=bfloat16):
                # Both of guidance's decodings take the code where the asked condition puts it.
                logits = guided_logits(self._decode_shifted, self._shifted(z, rows), rows, guidance)
            if sharpness != 1:
                logits = self.likelihood.sharpen(logits, sharpness)
            return self.likelihood.mean_(logits).to(self.dtype)

        return self._in_chunks(decode, z, y, batch_size)

    @property
    def _prior_groups(self) -> int:
        """The fitted prior's Gaussians: one a class, or one for all with several conditions."""
        return max(1, self.num_classes) if self.conditions.is_single else 1

    def _prior_group(self, y: torch.Tensor) -> torch.Tensor:
        """Each row's Gaussian of the fitted prior: its class (-1: unset or unlabelled), or 0."""
        if not self.conditions.is_single:
            return torch.zeros(len(y), dtype=torch.long, device=y.device)
        return y.argmax(1) if y.dim() == 2 else y.long()

    @torch.no_grad()
    def fit_prior(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fit the prior that `sample` draws codes from to the codes of (training) images.

        Each class gets a Gaussian with the mean and covariance of its images' posteriors
        (their aggregate; a model with several conditions gets one for all), which `sample`
        then draws from, so that samples stay where the decoder learned. The Trainer calls
        this when training ends for a model built with `prior="fitted"` (as
        `ConditionalVAE.from_data` builds them); call it yourself to fit any model, a
        pretrained one included: it becomes `prior="fitted"`, saved with its weights.
        Images labelled -1 (unlabelled or unset) are left out.

        Args:
            batches: `(images, labels)` pairs, such as a `DataLoader` gives, or
                `[(images, labels)]` for tensors in memory.

        Raises:
            ValueError: If no image has a class, or images or labels do not fit the model.
        """
        # Fitted apart, then put in: a refused fit leaves the model as it was (and as it saves).
        fitted = FittedPrior(self._prior_groups, self.latent_dim).to(self.device)

        def moments() -> Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
            for x, y in batches:
                y = y.to(self.device)
                yield *self.encode(x.to(self.device, self.dtype), y), self._prior_group(y)

        with in_eval_mode(self):  # type: ignore[arg-type]
            fitted.fit(moments())
        self.fitted_prior, self.prior = fitted, "fitted"
        self.register_to_config(prior="fitted")  # type: ignore[attr-defined]

    def after_training(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """What the Trainer calls when training ends, the best weights kept.

        A model built with `centre_codes` fits its code shift to the training codes first
        (one pass over `batches`, which must then be iterable twice, as a `DataLoader` is);
        then a `"fitted"` prior is fitted to the (centred) training codes, and a model built
        with `unset="data"` keeps the training conditions that `sample` fills unset parts from.
        """
        if self.code_shift is not None:
            self.centre_codes(batches)
        tables: list[torch.Tensor] = []

        def seen() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            for x, y in batches:
                tables.append(y.detach().cpu())
                yield x, y

        if self.prior == "fitted":
            self.fit_prior(seen())
        if self.unset_values is not None:
            if not tables:  # the prior did not read them
                tables = [y.detach().cpu() for _, y in batches]
            self.unset_values.fit(torch.cat(tables).float())

    @torch.no_grad()
    def centre_codes(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fit the code shift of a model built with `centre_codes` to the codes of (training) images.

        The Trainer calls this when training ends; after it, the images' codes have mean 0
        and no linear relation to their conditions (`cvae.models._centring`). A fitted prior
        is fitted to the codes as they were: fit it again (`fit_prior`) on the same images.

        Args:
            batches: `(images, labels)` pairs, such as a `DataLoader` gives.

        Raises:
            ValueError: If the model was built without `centre_codes`, or no batch holds an image.
        """
        if self.code_shift is None:
            raise ValueError("this model was built without centre_codes: build it with"
                             " ConditionalVAE(..., centre_codes=True) (several conditions)")

        def codes() -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
            for x, y in batches:
                rows = self.condition_rows(y.to(self.device))
                yield self._encode_rows(x.to(self.device, self.dtype), rows)[0], rows

        with in_eval_mode(self):  # type: ignore[arg-type]
            self.code_shift.fit(codes())

    def calibrate(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Fit a calibrated likelihood's scale (the Gaussian's) to images the weights did not train on.

        The Trainer calls this on the validation images before each validation, where they
        choose the weights (early stopping on a validation figure): the training images'
        error, which shrinks as the model learns them by heart, made the scale too narrow for
        any other image (`cvae.models._calibration`). Other likelihoods have no scale to fit.

        Args:
            batches: `(images, labels)` pairs, such as a `DataLoader` gives, or
                `[(images, labels)]` for tensors in memory; images labelled -1 are left out.
        """
        from cvae.models._calibration import calibrate

        calibrate(self, batches)  # type: ignore[arg-type]

    def _fitted(self, prior: str | None) -> bool:
        """Whether `sample` draws from the fitted prior, as the call's `prior` asks."""
        if prior is not None and prior not in PRIORS:
            raise ValueError(f"prior must be one of {list(PRIORS)} or None (the model's), got {short(prior)}")
        has = self.fitted_prior is not None and self.fitted_prior.fitted
        if prior == "fitted" and not has:
            raise ValueError("this model's prior was not fitted: call model.fit_prior(batches of"
                             " training images and labels) first, or sample with prior='standard'")
        return has and prior != "standard"

    def _fitted_codes(self, y: torch.Tensor, noise: torch.Tensor,
                      generator: torch.Generator | None) -> torch.Tensor:
        """Codes from the fitted prior for rows `y`, from standard normal `noise` already tempered."""
        group = self._prior_group(y)
        unset = bool((group < 0).any())
        where = generator.device if generator is not None else self.device
        pick = (torch.rand(len(y), generator=generator, device=where) if unset
                else torch.zeros(len(y), device=where)).to(self.device)
        return self.fitted_prior.draw(group, noise, pick)

    #: A sampling setting's parts, and their values when neither the call nor the model sets them.
    SAMPLING = {"temperature": 1.0, "sharpness": 1.0, "guidance": 0.0}

    def _sampling_setting(self, temperature: float | None, sharpness: float | None,
                          guidance: float | None) -> tuple[float, float, float]:
        """The call's setting, the rest from the model's recommended one, checked."""
        given = {"temperature": temperature, "sharpness": sharpness, "guidance": guidance}
        setting = {**self.SAMPLING, **(getattr(self, "sampling", None) or {}),
                   **{key: value for key, value in given.items() if value is not None}}
        checked = self.check_sampling(setting)
        return checked["temperature"], checked["sharpness"], checked["guidance"]

    def set_sampling(self, setting: dict[str, float] | None) -> None:
        """Make `setting` the one `sample` uses where its call sets none; it is saved with the model.

        Args:
            setting: `{"temperature": t, "sharpness": s, "guidance": w}`, any of them, or
                `None` for the model's own distribution.

        Raises:
            ValueError: If a value is bad or cannot apply to this model (as in `sample`).
        """
        self.sampling = self.check_sampling(setting)
        self.register_to_config(sampling=self.sampling or None)  # type: ignore[attr-defined]

    def check_sampling(self, setting: dict[str, float] | None) -> dict[str, float]:
        """`setting` checked as `sample` checks it, for work that draws later (a sweep, a set).

        Args:
            setting: `{"temperature": t, "sharpness": s, "guidance": w}`, any of them, or `None`.

        Returns:
            The setting with its values as floats (`{}` for `None`).

        Raises:
            ValueError: If a value is bad or cannot apply to this model: sharpness for a
                likelihood it does not sharpen, guidance without condition dropout.
        """
        if setting is None:
            return {}
        if not isinstance(setting, dict) or not set(setting) <= set(self.SAMPLING):
            raise ValueError(f"a sampling setting is a dict of {', '.join(self.SAMPLING)}, got"
                             f" {short(setting)}")
        checked = {key: check_float(key, value, above=key == "sharpness") for key, value in setting.items()}
        if checked.get("sharpness", 1) != 1:
            self.likelihood.check_sharpens()
        if checked.get("guidance") and not getattr(self, "condition_dropout", 0):
            raise ValueError("guidance needs a model trained with condition dropout, which decodes"
                             " without its label too, and this one was not: train one with"
                             " ConditionalVAE(..., condition_dropout=0.1) (cvae train"
                             " --condition-dropout 0.1)")
        return checked

    def _check_images_fit(self, count: int, advice: str) -> None:
        """Refuse making `count` images that the device's free memory cannot hold, before any."""
        check_fits(count * math.prod(self.image_shape) * self._eye.element_size(), self.device,
                   f"{count:,} images of {self.image_shape}", advice)

    @staticmethod
    def _in_chunks(decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z: torch.Tensor,
                   y: torch.Tensor, batch_size: int) -> torch.Tensor:
        """`decode(z, y)`, `batch_size` rows at a time, so that its activations stay small."""
        if len(y) <= batch_size:
            return decode(z, y)
        return torch.cat([decode(z[i:i + batch_size], y[i:i + batch_size])
                          for i in range(0, len(y), batch_size)])

    def _decode_chunk(self, budget: int | None = None) -> int:
        """Images to decode at once, so that the decoder's largest layer output fits `budget`.

        The size of that output is measured once per model, device and dtype, by decoding
        one image, so it holds for any backbone.

        Args:
            budget: Bytes; default `cvae._devices.working_bytes` of the model's device (on a
                CPU, half its cache, where decoding runs fastest).
        """
        key = (self.device, self.dtype)
        if getattr(self, "_activation", (None,))[0] != key:
            z = torch.zeros(1, self.latent_dim, device=self.device, dtype=self.dtype)
            y = torch.zeros(1, self.conditions.width, device=self.device, dtype=self.dtype)
            self._activation = (key, largest_activation(self.decoder, z, y))
        return max(1, (budget or working_bytes(self.device)) // self._activation[1])

    @torch.inference_mode()
    def transfer(self, images: torch.Tensor, labels: Labels | Mapping[str, Any],
                 to: Labels | Mapping[str, Any] | None = None) -> torch.Tensor:
        """Encode images with their own conditions, then decode the same codes with others.

        The code of each image is its posterior mean (no noise), so the result is the same
        at every call. A counterfactual: each image keeps its style (and, with several
        conditions, the parts that `to` does not name) and changes what `to` names.

        Args:
            images: `(B, C, H, W)` images the model takes.
            labels: Their classes, one per image (indices, names or a tensor); for a model
                with several conditions, a dict of values by part name (a batch each).
            to: The classes to draw them as; default: every class, in order. With several
                conditions, a dict of the parts to change: `{"thickness": 4.0}` (one target)
                or `{"thickness": [1.0, 2.0, 3.0]}` (three); other parts stay each image's.

        Returns:
            `(B, T, C, H, W)`: image `i` redrawn as target `j` at `[i, j]`.

        Raises:
            ValueError: If a label or condition is not the model's, or `images` and their
                labels differ in number.
        """
        self.eval()
        y = self._condition_input(labels, {})
        if len(y) != len(images):
            raise ValueError(f"give one label (one row of conditions) per image: {len(images)} images,"
                             f" {len(y)} labels")
        mu, _ = self.encode(images.to(self.device, self.dtype), y)
        b = len(mu)
        if not isinstance(to, Mapping):  # classes of the first categorical part
            first = self.conditions.first_categorical
            if first is None:
                raise ValueError(f"this model has no class to draw the images as: give to= as a dict"
                                 f" of the conditions to change ({', '.join(self.conditions.names)})")
            to = {first.name: list(range(first.num_classes)) if to is None else to}
        # The targets' table, NaN where a part keeps each image's value.
        target = table_from_values(self.conditions, to, device=self.device)
        warn_outside(self.conditions, target, stacklevel=4)
        source = y if y.dim() == 2 else y.float()[:, None]
        rows = torch.where(torch.isnan(target)[None], source[:, None], target[None]).flatten(0, 1)
        t = len(target)
        out = self.likelihood.mean(self._decode_rows(mu.repeat_interleave(t, 0), self._rows_of(rows)))
        return out.view(b, t, *self.image_shape)

    def _rows_of(self, table: torch.Tensor) -> torch.Tensor:
        """Condition rows for a table, also for one categorical part (its one column)."""
        return self.condition_rows(table if not self.conditions.is_single else table[:, 0].long())

    @torch.inference_mode()
    def interpolate(self, images: torch.Tensor, labels: Labels | Mapping[str, Any], steps: int = 8,
                    method: str = "slerp") -> torch.Tensor:
        """Morph one image into another: decode points between their latent codes.

        The conditions move with the code, from one image's to the other's (the decoder
        takes soft labels and values in between as well), so two images of different
        classes morph across classes too.

        Args:
            images: The two end images, `(2, C, H, W)`.
            labels: Their two classes (for several conditions, a dict of two values each).
            steps: Images in the strip, ends included (at least 2).
            method: `"slerp"` (spherical, the default) or `"linear"`.

        Returns:
            `(steps, C, H, W)`, from the first image's reconstruction to the second's.
        """
        if len(images) != 2:
            raise ValueError(f"interpolate takes two images, got {len(images)}")
        y = self._condition_input(labels, {})
        mu, _ = self.encode(images.to(self.device, self.dtype), y)
        return self._decode_path(mu[0], mu[1], self.condition_rows(y), steps, method)

    @torch.inference_mode()
    def interpolate_classes(self, start: Labels | Mapping[str, Any], end: Labels | Mapping[str, Any],
                            steps: int = 8, z: torch.Tensor | None = None,
                            generator: torch.Generator | None = None) -> torch.Tensor:
        """Keep one latent code (one style) and move the condition from `start` to `end`.

        With several conditions, `start` and `end` are dicts by part name, and `end` keeps
        what it does not name from `start`: `interpolate_classes({"digit": 3, "thickness":
        1.0}, {"thickness": 5.0})` thickens a 3 (a walk along a continuous part). A part
        neither names is unset; a model built with `unset="data"` gives it one training
        image's value for the whole strip (drawn near `start`'s parts, as `sample` does).

        Args:
            start: The first class (or conditions).
            end: The last class (or the conditions that change).
            steps: Images in the strip, ends included (at least 2).
            z: The code, `(latent_dim,)`; default: one drawn from the model's prior (a
                fitted one: from `start`'s class).
            generator: Random generator for that draw (and for an unset part's value).

        Returns:
            `(steps, C, H, W)`, from `start` to `end`.
        """
        if isinstance(start, Mapping) and isinstance(end, Mapping):
            values = {name: [start[name], end.get(name, start[name])] if name in start else [end[name]] * 2
                      for name in {**start, **end}}
            y = self._condition_input(values, {})
        else:
            y = self._labels_to_tensor([start, end])
        if self.unset_values is not None:  # a part neither names: one training value for the strip
            y = self.unset_values.fill(y[:1], self.conditions, generator).expand_as(y).where(
                torch.isnan(y), y)
        rows = self.condition_rows(y)
        if z is None:  # from the model's prior: a fitted one draws from `start`'s class
            z = randn((1, self.latent_dim), generator, self.device)
            z = self._fitted_codes(y[:1], z, generator) if self._fitted(None) else z
        if z.numel() != self.latent_dim:
            raise ValueError(f"z must hold one latent code of {self.latent_dim} values, got shape"
                             f" {tuple(z.shape)}")
        z = z.to(self.device, self.dtype).reshape(self.latent_dim)
        return self._decode_path(z, z, rows, steps, "linear")

    def _decode_path(self, a: torch.Tensor, b: torch.Tensor, ends: torch.Tensor, steps: int,
                     method: str) -> torch.Tensor:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise ValueError(f"steps must be an int of at least 2 (both ends), got {short(steps)}")
        check_int("steps", steps)  # at most 2**63 - 1, as torch takes sizes
        if method not in ("slerp", "linear"):
            raise ValueError(f"method must be 'slerp' or 'linear', got {method!r}")
        self._check_images_fit(steps, "ask for fewer steps")
        self.eval()
        t = torch.linspace(0, 1, steps, device=a.device, dtype=a.dtype)
        z = (slerp if method == "slerp" else lerp)(a, b, t)
        rows = lerp(ends[0], ends[1], t)  # soft labels and values in between

        def decode(z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return self.likelihood.mean(self._decode_rows(z, rows))

        return self._in_chunks(decode, z, rows, self._decode_chunk())
