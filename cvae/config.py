"""Configs captured from the constructor, as diffusers' `register_to_config` does.

A class whose `__init__` is decorated with `register_to_config` gets `self.config`: every
argument of the call, with the defaults filled in, as JSON values. So a new constructor
setting is written once, in the signature, and `cls(**obj.config)` rebuilds the object.
The constructor may then replace a captured value with its normalised form
(`self.register_to_config(key=value)`), for example a backbone's full settings.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

__all__ = ["ConfigMixin", "register_to_config", "jsonable", "check_int", "check_ints", "check_float",
           "short"]

F = TypeVar("F", bound=Callable[..., None])


def jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON: tuples become lists, at any depth."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: messages echo what was given, not all of it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def check_int(key: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int, if it is a whole number (not a bool) of at least `minimum`.

    Raises:
        ValueError: Naming `key`, for a float, a string, a list, a bool or a smaller number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int of at least {minimum}"
        raise ValueError(f"{key} must be {what}, got {short(value)}")
    return int(value)


def check_image_shape(image_shape: Any) -> tuple[int, int, int]:
    """`image_shape` as a `(C, H, W)` tuple of positive ints.

    Raises:
        ValueError: If it is not three positive whole numbers.
    """
    if (not isinstance(image_shape, (list, tuple)) or len(image_shape) != 3
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
                   for s in image_shape)):
        raise ValueError(f"image_shape must be (C, H, W) of positive sizes, got {short(image_shape)}")
    return tuple(int(s) for s in image_shape)  # type: ignore[return-value]


def check_float(key: str, value: Any, minimum: float = 0.0, *, above: bool = False) -> float:
    """`value` as a float, if it is a finite real number of at least (or above) `minimum`.

    Raises:
        ValueError: Naming `key`, for a string, a bool, NaN, an infinity or a smaller number.
    """
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
          and (value > minimum if above else value >= minimum))
    if not ok:
        raise ValueError(f"{key} must be a finite number {'above' if above else 'of at least'}"
                         f" {minimum:g}, got {short(value)}")
    return float(value)


def check_ints(key: str, values: Any, minimum: int = 1) -> list[int]:
    """`values` as a list of ints of at least `minimum`; an empty list is refused.

    Raises:
        ValueError: Naming `key`, for anything but a non-empty list or tuple of such ints.
    """
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{key} must be a non-empty list of ints, got {short(values)}")
    if all(type(v) is int and v >= minimum for v in values):  # the common case, fast for long lists
        return list(values)
    return [check_int(f"{key}[{i}]", v, minimum) for i, v in enumerate(values)]


class ConfigMixin:
    """Gives `config` and `config_keys()` to a class whose `__init__` is decorated.

    Attributes:
        ignore_for_config: Constructor arguments that are not settings (modules, say):
            they are neither captured nor accepted from a config file.
    """

    ignore_for_config: ClassVar[tuple[str, ...]] = ()
    _config: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's settings, JSON-serialisable: `cls(**obj.config)` rebuilds it."""
        return dict(self._config)

    def register_to_config(self, **settings: Any) -> None:
        """Replace captured settings by their normalised form (call it from `__init__`)."""
        unknown = sorted(set(settings) - set(self._config))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no settings {unknown}")
        self._config.update({key: jsonable(value) for key, value in settings.items()})

    @classmethod
    def config_keys(cls) -> list[str]:
        """The names of the settings: the arguments of every decorated `__init__` in the MRO."""
        keys: list[str] = []
        for klass in reversed(cls.__mro__):
            init = klass.__dict__.get("__init__")
            if getattr(init, "_registers_config", False):
                keys += [name for name in _settings(init, cls) if name not in keys]
        return keys


def _settings(init: Callable[..., None], cls: type) -> list[str]:
    """The named arguments of `init` that are settings (not `self`, `*args`, ignored ones)."""
    params = list(inspect.signature(init).parameters.values())[1:]
    ignored = getattr(cls, "ignore_for_config", ())
    return [p.name for p in params
            if p.name not in ignored and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def register_to_config(init: F) -> F:
    """Decorate `__init__` so that its arguments become `self.config` before it runs.

    A subclass may decorate its own `__init__` too: its settings join those of the class it
    extends, which it passes on through `super().__init__(...)`.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: ConfigMixin, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        captured = {key: jsonable(bound.arguments[key]) for key in _settings(init, type(self))}
        if "_config" in self.__dict__:  # a subclass's decorated __init__ ran first
            captured = {**captured, **self._config}
        # Set through object: an nn.Module's __setattr__ wants its __init__ to have run.
        object.__setattr__(self, "_config", captured)
        init(self, *args, **kwargs)

    wrapper._registers_config = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
