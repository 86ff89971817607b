"""Encoder/decoder backbones and the registry that names them.

A backbone is a pair of `nn.Module` classes built with the same keyword arguments:

- the **encoder**, `Encoder(image_shape, num_classes, latent_dim, **settings)`, maps
  images `x` of shape `(B, C, H, W)` and one-hot labels `y` of shape `(B, num_classes)`
  to `(mu, logvar)`, each of shape `(B, latent_dim)`;
- the **decoder**, `Decoder(image_shape, num_classes, latent_dim, **settings)`, maps
  latent codes `z` of shape `(B, latent_dim)` and one-hot labels `y` to *logits* of
  shape `(B, C, H, W)`; the model applies the sigmoid, so that the loss can work on
  logits, where it is numerically stable.

`settings` must be JSON-serialisable: they are stored in `config.json`, and
`ConditionalVAE.from_pretrained` rebuilds the pair from them by name.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Backbone", "register_backbone", "get_backbone", "list_backbones", "MLPEncoder",
           "MLPDecoder"]


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

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The backbone's settings: the constructors' keyword defaults, then `overrides`.

        Storing every setting, defaults included, in `config.json` means that a saved
        model still rebuilds if a later release changes a default.

        Raises:
            TypeError: If an override is not a setting of the encoder or the decoder.
        """
        defaults: dict[str, Any] = {}
        for cls in (self.encoder, self.decoder):
            params = list(inspect.signature(cls.__init__).parameters.values())[4:]
            defaults.update({p.name: _jsonable(p.default) for p in params
                             if p.default is not inspect.Parameter.empty})
        unknown = sorted(set(overrides) - set(defaults))
        if unknown and not any(p.kind == p.VAR_KEYWORD for cls in (self.encoder, self.decoder)
                               for p in inspect.signature(cls.__init__).parameters.values()):
            raise TypeError(f"backbone {self.name!r} has no settings {unknown};"
                            f" its settings are {sorted(defaults)}")
        return {**defaults, **{k: _jsonable(v) for k, v in overrides.items()}}


def _jsonable(value: Any) -> Any:
    """Tuples become lists, as they would after a round trip through JSON."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


_REGISTRY: dict[str, Backbone] = {}


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
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a backbone named {name!r} is already registered; pass overwrite=True to replace it"
        )
    backbone = Backbone(name, encoder, decoder)
    _REGISTRY[name] = backbone
    return backbone


def get_backbone(name: str) -> Backbone:
    """Look up a registered backbone by name.

    Args:
        name: A registered name, for example `"mlp"`.

    Returns:
        The `Backbone` registered under `name`.

    Raises:
        KeyError: If nothing is registered under `name`; the message lists what is and says
            how to register the missing one.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no backbone named {name!r} is registered (registered: {', '.join(list_backbones())})."
            f" If the model uses a custom backbone, import the code that calls"
            f" cvae.register_backbone({name!r}, Encoder, Decoder) before loading it."
        ) from None


def list_backbones() -> list[str]:
    """Return the names of all registered backbones, sorted."""
    return sorted(_REGISTRY)


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
        if not hidden_dims:
            raise ValueError("hidden_dims must name at least one hidden layer width")
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
        if not hidden_dims:
            raise ValueError("hidden_dims must name at least one hidden layer width")
        self.image_shape = tuple(image_shape)
        widths = [latent_dim + num_classes, *reversed(hidden_dims), math.prod(image_shape)]
        self.net = _mlp(widths, relu_last=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Map latent codes `(B, D)` and one-hot labels `(B, K)` to logits `(B, C, H, W)`."""
        return self.net(torch.cat([z, y], dim=1)).view(-1, *self.image_shape)


register_backbone("mlp", MLPEncoder, MLPDecoder)
