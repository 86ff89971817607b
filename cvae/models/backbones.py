"""Encoder/decoder backbones and the registry that names them.

A backbone is a pair of `nn.Module` classes built with the same keyword arguments:

- the **encoder**, `Encoder(image_shape, num_classes, latent_dim, **settings)`, maps
  images `x` of shape `(B, C, H, W)` and one-hot labels `y` of shape `(B, num_classes)`
  to `(mu, logvar)`, each of shape `(B, latent_dim)`;
- the **decoder**, `Decoder(image_shape, num_classes, latent_dim, **settings)`, maps
  latent codes `z` of shape `(B, latent_dim)` and one-hot labels `y` to *logits* of
  shape `(B, C, H, W)`; the model reads them through its likelihood (the sigmoid, for the
  default), so that the loss can work on logits, where it is numerically stable.

A decoder may also have `start_output_at(mean, output_of_mean)`: set its output layer's bias
so that, before any training, its images' mean is the `(C, H, W)` image `mean` (or that
image's mean over each channel, where the bias is one a channel), `output_of_mean` being the
likelihood's map from a mean to the decoder's output. `ConditionalVAE.from_data` calls it
with the training images' mean, for data with one label; a decoder without it starts where
its initialisation puts it.

`settings` must be JSON-serialisable: they are stored in `config.json`, and
`ConditionalVAE.from_pretrained` rebuilds the pair from them by name.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cvae._checks import check_bool, check_int, check_ints
from cvae._config import jsonable
from cvae._registry import Registry

__all__ = ["Backbone", "register_backbone", "get_backbone", "list_backbones", "MLPEncoder",
           "MLPDecoder", "ConvEncoder", "ConvDecoder"]


@dataclass(frozen=True)
class Backbone:
    """A named encoder/decoder pair in the registry.

    Attributes:
        name: The name that configs refer to.
        encoder: The encoder class.
        decoder: The decoder class.
    """

    name: str
    encoder: type[nn.Module]
    decoder: type[nn.Module]

    def settings(self, image_shape: Sequence[int] | None = None, **overrides: Any) -> dict[str, Any]:
        """The backbone's settings: the constructors' keyword defaults, then `overrides`.

        Storing every setting, defaults included, in `config.json` means that a saved
        model still rebuilds if a later release changes a default. A default that depends
        on the image size is made explicit for `image_shape` by the encoder class's
        `resolve_settings(image_shape, settings)`, where it has one.

        Raises:
            TypeError: If an override is not a setting of the encoder or the decoder.
        """
        defaults: dict[str, Any] = {}
        for cls in (self.encoder, self.decoder):
            params = list(inspect.signature(cls.__init__).parameters.values())[4:]
            defaults.update({p.name: jsonable(p.default) for p in params
                             if p.default is not inspect.Parameter.empty})
        unknown = sorted(set(overrides) - set(defaults))
        if unknown and not any(p.kind == p.VAR_KEYWORD for cls in (self.encoder, self.decoder)
                               for p in inspect.signature(cls.__init__).parameters.values()):
            raise TypeError(f"backbone {self.name!r} has no settings {unknown};"
                            f" its settings are {sorted(defaults)}")
        settings = {**defaults, **{k: jsonable(v) for k, v in overrides.items()}}
        resolve = getattr(self.encoder, "resolve_settings", None)
        return settings if resolve is None or image_shape is None else resolve(image_shape, settings)


_REGISTRY: Registry[Backbone] = Registry(
    "backbone", "If the model uses a custom backbone, import the code that calls"
    " cvae.register_backbone({name}, Encoder, Decoder) before loading it.")


def register_backbone(
    name: str, encoder: type[nn.Module], decoder: type[nn.Module], *, overwrite: bool = False
) -> Backbone:
    """Register an encoder/decoder pair under `name`.

    Registered backbones can be used by name in `ConditionalVAE(backbone=name)`, and models
    that use them are rebuilt by `ConditionalVAE.from_pretrained` from `config.json`, as long
    as the registration has run in the loading process (import the module that registers it).

    Args:
        name: The name to register, for example `"my-resnet"`.
        encoder: An `nn.Module` class following the encoder interface (see module docs).
        decoder: An `nn.Module` class following the decoder interface (see module docs).
        overwrite: Replace an existing registration of the same name instead of failing.

    Returns:
        The registered `Backbone`.

    Raises:
        ValueError: If `name` is already registered and `overwrite` is False.
        TypeError: If `encoder` or `decoder` is not an `nn.Module` subclass.
    """
    for role, cls in (("encoder", encoder), ("decoder", decoder)):
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"{role} must be an nn.Module subclass, got {cls!r}")
    return _REGISTRY.register(name, Backbone(name, encoder, decoder), overwrite=overwrite)


def get_backbone(name: str) -> Backbone:
    """Look up a registered backbone by name.

    Args:
        name: A registered name, for example `"mlp"`.

    Returns:
        The `Backbone` registered under `name`.

    Raises:
        UnknownNameError: If nothing is registered under `name` (a `KeyError`); the
            message lists what is and says how to register the missing one.
    """
    return _REGISTRY.get(name)


def list_backbones() -> list[str]:
    """Return the names of all registered backbones, sorted."""
    return _REGISTRY.names()


def _widths(hidden_dims: Any) -> list[int]:
    if isinstance(hidden_dims, (list, tuple)) and not hidden_dims:
        raise ValueError("hidden_dims must name at least one hidden layer width")
    return check_ints("hidden_dims", hidden_dims)


def _mlp(widths: Sequence[int], relu_last: bool) -> nn.Sequential:
    """Linear layers between the given widths, each followed by a ReLU (the last optionally)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*(layers if relu_last else layers[:-1]))


class MLPEncoder(nn.Module):
    """The tutorial's encoder: `[x, onehot(y)] -> Linear -> ReLU -> (mu, logvar)` heads.

    With the defaults on MNIST this is exactly Linear(794, 400) -> ReLU -> two
    Linear(400, 20) heads.

    Args:
        image_shape: `(C, H, W)` of the input images.
        num_classes: Number of classes (length of the one-hot label).
        latent_dim: Size of the latent code.
        hidden_dims: Widths of the hidden layers, first to last.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (400,),
    ):
        super().__init__()
        hidden_dims = _widths(hidden_dims)
        n_in = math.prod(image_shape) + num_classes
        self.hidden = _mlp([n_in, *hidden_dims], relu_last=True)
        self.mu = nn.Linear(hidden_dims[-1], latent_dim)
        self.logvar = nn.Linear(hidden_dims[-1], latent_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map images `(B, C, H, W)` and one-hot labels `(B, K)` to `(mu, logvar)`."""
        h = self.hidden(torch.cat([x.flatten(1), y], dim=1))
        return self.mu(h), self.logvar(h)


class MLPDecoder(nn.Module):
    """The tutorial's decoder: `[z, onehot(y)] -> Linear -> ReLU -> Linear` to pixel logits.

    With the defaults on MNIST this is exactly Linear(30, 400) -> ReLU -> Linear(400, 784);
    the model applies the sigmoid.

    Args:
        image_shape: `(C, H, W)` of the output images.
        num_classes: Number of classes (length of the one-hot label).
        latent_dim: Size of the latent code.
        hidden_dims: Widths of the encoder's hidden layers, first to last; the decoder
            uses them in reverse, mirroring the encoder.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        num_classes: int,
        latent_dim: int,
        hidden_dims: Sequence[int] = (400,),
    ):
        super().__init__()
        hidden_dims = _widths(hidden_dims)
        self.image_shape = tuple(image_shape)
        widths = [latent_dim + num_classes, *reversed(hidden_dims), math.prod(image_shape)]
        self.net = _mlp(widths, relu_last=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Map latent codes `(B, D)` and one-hot labels `(B, K)` to logits `(B, C, H, W)`."""
        return self.net(torch.cat([z, y], dim=1)).view(-1, *self.image_shape)

    @torch.no_grad()
    def start_output_at(self, mean: torch.Tensor,
                        output_of_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Start at the `(C, H, W)` image `mean`: the last layer's bias, one a pixel (see module docs)."""
        self.net[-1].bias.copy_(output_of_mean(mean).reshape(-1))


_LAST = torch.channels_last


def _halvings(size: int, n: int) -> list[int]:
    """Sizes after each of `n` stride-2 convolutions (kernel 3, padding 1): `ceil(s / 2)`."""
    sizes = [size]
    for _ in range(n):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class ConvEncoder(nn.Module):
    """A convolutional encoder for images of any size and channel count.

    The label enters twice: as one constant plane per class, stacked onto the image
    channels, so that every filter sees the class from the first layer on; and as the
    one-hot vector beside the flattened features, before the `mu` and `logvar` heads. Each
    stage is a stride-2 convolution then `extra_convs` stride-1 ones (3x3, SiLU), halving
    the size and rounding up, so odd sizes such as 7 or 13 work.

    Args:
        image_shape: `(C, H, W)` of the input images.
        num_classes: Number of classes.
        latent_dim: Size of the latent code.
        channels: Channels of each stage; one halving of the size per stage. Default:
            `(32, 64, 128)`, or its first stages only, as many as keep the smaller side of
            the feature map at 4 or more (at least one): 28x28 gets all three, 16x16 two,
            8x8 one, so small images are not strided to nothing.
        hidden_dim: Width of the fully connected layer before the heads.
        extra_convs: Stride-1 convolutions after each stride-2 one; 0 gives the plain
            design, cheaper on a CPU (see the benchmarks).
        film: The decoder's setting (`ConvDecoder`): both halves of a backbone are built
            with the same settings; checked here, used there.
    """

    def __init__(self, image_shape: Sequence[int], num_classes: int, latent_dim: int,
                 channels: Sequence[int] | None = None, hidden_dim: int = 512,
                 extra_convs: int = 1, film: bool = False):
        super().__init__()
        check_bool("film", film)
        channels, hidden_dim, extra_convs = _conv_settings(channels, hidden_dim, extra_convs, image_shape)
        c, h, w = image_shape
        self.features = _conv_stages(c + num_classes, channels, extra_convs, transposed=False)
        flat = channels[-1] * _halvings(h, len(channels))[-1] * _halvings(w, len(channels))[-1]
        self.hidden = nn.Sequential(nn.Linear(flat + num_classes, hidden_dim), nn.SiLU())
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.logvar = nn.Linear(hidden_dim, latent_dim)

    @staticmethod
    def resolve_settings(image_shape: Sequence[int], settings: dict[str, Any]) -> dict[str, Any]:
        """`settings` with the default `channels` (None) made explicit for `image_shape`."""
        if settings.get("channels") is not None:
            return settings
        return {**settings, "channels": _default_channels(image_shape)}

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map images `(B, C, H, W)` and one-hot labels `(B, K)` to `(mu, logvar)`."""
        planes = y[:, :, None, None].to(x.dtype).expand(-1, -1, *x.shape[2:])
        # channels-last: oneDNN's convolutions run faster on a CPU (benchmarks/conv_step.py)
        h = self.features(torch.cat([x, planes], dim=1).contiguous(memory_format=_LAST))
        h = self.hidden(torch.cat([h.flatten(1), y.to(h.dtype)], dim=1))
        return self.mu(h), self.logvar(h)


class ConvDecoder(nn.Module):
    """The mirror of `ConvEncoder`: `[z, onehot(y)]` to a small feature map, then up.

    Each stage doubles the size with a 3x3 transposed convolution whose output padding is
    chosen to land exactly on the encoder's size at that depth (so 7 -> 13 works as well
    as 7 -> 14), followed by `extra_convs` 3x3 convolutions; a last 3x3 convolution gives
    the logits.

    Args:
        image_shape: `(C, H, W)` of the output images.
        num_classes: Number of classes.
        latent_dim: Size of the latent code.
        channels: The encoder's channels per stage, first to last (used in reverse); the
            same default as the encoder's.
        hidden_dim: Width of the first fully connected layer.
        extra_convs: Stride-1 convolutions after each transposed one.
        film: Scale and shift each channel of the last feature map by a linear function of
            `[z, onehot(y)]` (FiLM: Perez et al. 2018), started at the identity. The last
            layer mixes the feature maps with fixed weights, so it can add a colour to a
            shape but not multiply one by the other; an image of one ink colour on one
            paper colour is such a product. `ConditionalVAE.from_data` turns it on for
            colour images (`cvae.models._from_data.FILM_FOR_COLOUR`).
    """

    def __init__(self, image_shape: Sequence[int], num_classes: int, latent_dim: int,
                 channels: Sequence[int] | None = None, hidden_dim: int = 512,
                 extra_convs: int = 1, film: bool = False):
        super().__init__()
        channels, hidden_dim, extra_convs = _conv_settings(channels, hidden_dim, extra_convs, image_shape)
        c, h, w = image_shape
        heights, widths = _halvings(h, len(channels)), _halvings(w, len(channels))
        self.start = (channels[-1], heights[-1], widths[-1])
        self.hidden = nn.Sequential(nn.Linear(latent_dim + num_classes, hidden_dim), nn.SiLU(),
                                    nn.Linear(hidden_dim, math.prod(self.start)), nn.SiLU())
        sizes = list(zip(reversed(heights), reversed(widths)))  # smallest first
        self.up = _conv_stages(channels[-1], [*reversed(channels[:-1]), channels[0]],
                               extra_convs, transposed=True, sizes=sizes)
        self.film = _film(latent_dim + num_classes, channels[0]) if check_bool("film", film) else None
        self.out = _FewOutputsConv(channels[0], c, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Map latent codes `(B, D)` and one-hot labels `(B, K)` to logits `(B, C, H, W)`."""
        zy = torch.cat([z, y.to(z.dtype)], dim=1)
        h = self.up(self.hidden(zy).view(-1, *self.start).contiguous(memory_format=_LAST))
        if self.film is not None:
            scale, shift = self.film(zy)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.out(h).contiguous()

    @torch.no_grad()
    def start_output_at(self, mean: torch.Tensor,
                        output_of_mean: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Start at the `(C, H, W)` image `mean`'s mean over each channel: the bias is one a channel."""
        self.out.bias.copy_(output_of_mean(mean.mean((1, 2))))


class _FewOutputsConv(nn.Conv2d):
    """A convolution to a few channels, as one 1x1 convolution to every tap, then shifted sums.

    The same weights and result as `nn.Conv2d` (a 3x3 kernel, padding 1), faster on a CPU,
    whose convolution kernels are slow for one to three output channels (the plain one is
    0.1.0's step in `benchmarks/conv_step.py`). Other devices run the plain convolution.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Map `(B, C_in, H, W)` to `(B, C_out, H, W)`, as the convolution does."""
        if h.device.type != "cpu":  # a GPU's kernel is fast; ten small ones cost launches
            return super().forward(h)
        o, c, kh, kw = self.weight.shape
        (b, _, height, width), (ph, pw) = h.shape, self.padding
        taps = self.weight.permute(2, 3, 0, 1).reshape(kh * kw * o, c, 1, 1)
        parts = F.pad(F.conv2d(h, taps), (pw, pw, ph, ph)).view(b, kh * kw, o, height + 2 * ph,
                                                                 width + 2 * pw)
        out = parts[:, 0, :, :height, :width] + self.bias.view(1, o, 1, 1)
        for t in range(1, kh * kw):
            i, j = divmod(t, kw)
            out = out + parts[:, t, :, i:i + height, j:j + width]
        return out


_CHANNELS = (32, 64, 128)  # the conv backbone's stages, for images of 28x28 or more


def _default_channels(image_shape: Sequence[int]) -> list[int]:
    """As many of `_CHANNELS` as keep the smaller side of the feature map at 4 or more (>= 1)."""
    stages = sum(1 for size in _halvings(min(image_shape[1:]), len(_CHANNELS))[1:] if size >= 4)
    return list(_CHANNELS[:max(1, stages)])


def _conv_settings(channels: Any, hidden_dim: Any, extra_convs: Any,
                   image_shape: Sequence[int]) -> tuple[list[int], int, int]:
    if channels is None:
        channels = _default_channels(image_shape)
    if isinstance(channels, (list, tuple)) and not channels:
        raise ValueError("channels must name at least one stage")
    return (check_ints("channels", channels), check_int("hidden_dim", hidden_dim),
            check_int("extra_convs", extra_convs, minimum=0))


def _film(n_in: int, channels: int) -> nn.Linear:
    """A scale and a shift for each of `channels` from `n_in` inputs, 0 and 0 at the start (the identity)."""
    layer = nn.Linear(n_in, 2 * channels)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _conv_stages(n_in: int, channels: Sequence[int], extra_convs: int, transposed: bool,
                 sizes: Sequence[tuple[int, int]] = ()) -> nn.Sequential:
    """Stages of (stride-2 conv or transposed conv, SiLU, then `extra_convs` x (3x3 conv, SiLU))."""
    layers: list[nn.Module] = []
    for i, n_out in enumerate(channels):
        if transposed:  # from sizes[i] to sizes[i + 1], which is 2s - 1 or 2s
            (h0, w0), (h1, w1) = sizes[i], sizes[i + 1]
            step: nn.Module = nn.ConvTranspose2d(n_in, n_out, 3, stride=2, padding=1,
                                                 output_padding=(h1 - 2 * h0 + 1, w1 - 2 * w0 + 1))
        else:
            step = nn.Conv2d(n_in, n_out, 3, stride=2, padding=1)
        layers += [step, nn.SiLU()]
        for _ in range(extra_convs):
            layers += [nn.Conv2d(n_out, n_out, 3, padding=1), nn.SiLU()]
        n_in = n_out
    return nn.Sequential(*layers)


register_backbone("mlp", MLPEncoder, MLPDecoder)
register_backbone("conv", ConvEncoder, ConvDecoder)
