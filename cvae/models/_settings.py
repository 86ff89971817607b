"""The settings of a `ConditionalVAE`'s constructor, checked, and the networks they build."""

from __future__ import annotations

import functools
from typing import Any

from torch import nn

from cvae._checks import check_bool, check_float, short
from cvae._devices import check_weights_fit
from cvae.conditions import Conditions
from cvae.models._guidance import UNSET
from cvae.models._prior import PRIORS
from cvae.models.backbones import get_backbone

__all__ = ["check_centre_codes", "check_condition_dropout", "check_independence", "check_prior",
           "check_unset", "given_or_built", "model_class", "networks"]


def networks(backbone: str, settings: dict[str, Any], image_shape: tuple[int, int, int],
             conditions: Conditions, latent_dim: int, semi_supervised: bool) -> list[nn.Module]:
    """The backbone's encoder and decoder, and a semi-supervised model's classifier.

    The backbones take the condition row's width as their `num_classes`: a one-hot code for
    one categorical part, the parts' columns side by side for several.
    """
    pair = get_backbone(backbone)
    num_classes = conditions.width
    parts = [pair.encoder(image_shape, num_classes, latent_dim, **settings),
             pair.decoder(image_shape, num_classes, latent_dim, **settings)]
    if semi_supervised:  # the encoder's network, given one constant label, to the classes
        parts.append(pair.encoder(image_shape, 1, num_classes, **settings))
    return parts


def model_class(conditions: Conditions) -> tuple[int, list[str] | None]:
    """`num_classes` and `class_names`: those of the first categorical part (0 and None without)."""
    first = conditions.first_categorical
    if first is None:
        return 0, None
    return first.num_classes, list(first.class_names) if first.class_names else None


def check_condition_dropout(share: Any, semi_supervised: bool, conditions: Conditions) -> float:
    """`condition_dropout` as a float, if it is a share below 1 of a fully labelled model's images.

    Unset (`None`): 0 for one categorical part (the tutorial's model), 0.1 for several, so
    that any part can be left unset.
    """
    if semi_supervised and not conditions.is_single:
        raise ValueError("a semi-supervised model infers one class per image: give it one categorical"
                         f" condition, not {', '.join(conditions.names)}")
    if share is None:
        return 0.0 if conditions.is_single else 0.1
    share = check_float("condition_dropout", share)
    if share >= 1:
        raise ValueError(f"condition_dropout is the share of training images whose label is"
                         f" dropped, from 0 to below 1 (0.1 is usual), got {share:g}")
    if share and semi_supervised:
        raise ValueError("condition_dropout is for fully labelled models: a semi-supervised"
                         " model already decodes images whose label it does not know")
    return share


def given_or_built(encoder: nn.Module | None, decoder: nn.Module | None, backbone: str,
                    backbone_kwargs: dict[str, Any] | None, image_shape: tuple[int, int, int],
                    schema: Conditions, latent_dim: int, semi_supervised: bool) -> tuple[Any, ...]:
    """The encoder, decoder and classifier, given or built by the backbone.

    With them, the backbone and settings that the config keeps: none for modules given,
    which a config cannot rebuild.
    """
    if (encoder is None) != (decoder is None):
        raise ValueError("give both encoder and decoder modules, or neither (then the"
                         " backbone builds them)")
    if encoder is None:
        backbone_kwargs = get_backbone(backbone).settings(image_shape, **(backbone_kwargs or {}))
        build = functools.partial(networks, backbone, backbone_kwargs, image_shape, schema,
                                  latent_dim, semi_supervised)
        check_weights_fit(build, f"a model for images of {tuple(image_shape)}")
        encoder, decoder, *classifier = build()
        return encoder, decoder, classifier[0] if classifier else None, backbone, backbone_kwargs
    if semi_supervised:
        raise ValueError("a semi-supervised model builds its classifier from a registered"
                         " backbone: pass backbone=name instead of encoder and decoder modules")
    return encoder, decoder, None, None, {}


def check_prior(prior: Any) -> str:
    """`prior` as one of `PRIORS`."""
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {list(PRIORS)} (what sample draws codes from), got"
                         f" {short(prior)}")
    return prior


def check_unset(unset: Any, conditions: Conditions) -> str:
    """`unset` as one of `UNSET`; `None` chooses by the number of condition parts."""
    if unset is None:
        return "average" if conditions.is_single else "free"
    if unset not in UNSET:
        raise ValueError(f"unset must be one of {list(UNSET)} (what a dropped condition trains),"
                         f" got {short(unset)}")
    if unset == "data" and conditions.is_single:
        raise ValueError("unset='data' fills the parts of several conditions that a call leaves"
                         " unset; a model of one label draws an unset label's class from its"
                         " fitted prior: give unset='average'")
    return unset


def check_centre_codes(centre: Any, conditions: Conditions) -> bool:
    """`centre_codes` as a bool, for a model of several conditions."""
    if check_bool("centre_codes", centre) and conditions.is_single:
        raise ValueError("centre_codes is for models of several conditions: a model of one label"
                         " draws each class from its own fitted Gaussian (prior='fitted') instead")
    return centre


def check_independence(weight: Any, semi_supervised: bool) -> float:
    """`independence` as a weight of at least 0, for a fully labelled model."""
    weight = check_float("independence", weight)
    if weight and semi_supervised:
        raise ValueError("independence is for fully labelled models: a semi-supervised model's"
                         " unlabelled images have no condition to keep out of the code")
    return weight
