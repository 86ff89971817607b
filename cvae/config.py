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
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

__all__ = ["ConfigMixin", "register_to_config", "jsonable", "check_int", "check_ints", "check_float",
           "short", "one_line", "check_images"]

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


def one_line(text: object) -> str:
    """`text` on one line: its lines joined by spaces, so that no advice after a newline is lost.

    Messages are shown one line each (the `cvae` command's errors, the Trainer's warnings);
    cutting at the first newline dropped what came after it, often the fix (torch's
    `BackendCompilerFailed` says only `backend='inductor' raised:` on its first line).
    """
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def check_images(images: Any, image_shape: Sequence[int] | None = None, what: str = "images",
                 batch: str = "B") -> None:
    """Refuse images that are not `(batch, C, H, W)`, or not `(batch, *image_shape)` if given.

    The message suggests the fix for the common mix-ups: one image without its batch axis
    `(C, H, W)`, grey images without their channel axis `(N, H, W)`, and channels last
    `(N, H, W, C)` as numpy and PIL hold them.

    Raises:
        ValueError: If the shape is wrong.
    """
    shape = tuple(images.shape)
    fits = len(shape) == 4 and (image_shape is None or shape[1:] == tuple(image_shape))
    if fits:
        return
    wanted = f"({batch}, {', '.join(map(str, image_shape))}) for this model" if image_shape else (
        f"({batch}, C, H, W)")
    # What the images would be with a channel axis added, or moved first: do they fit then?
    grey = (1, *shape[1:]) if len(shape) == 3 else None
    first = (shape[3], *shape[1:3]) if len(shape) == 4 and shape[1] not in (1, 3) else None
    hint = ""
    if len(shape) == 3 and shape[0] in (1, 3) and (image_shape is None or shape == tuple(image_shape)):
        hint = f"; for one image, {what}[None] adds the batch axis: (1, C, H, W)"
    elif grey and (image_shape is None or grey == tuple(image_shape)):
        hint = f"; grey images need their channel axis: {what}.unsqueeze(1) makes them (N, 1, H, W)"
    elif first and first[0] in (1, 3) and (image_shape is None or first == tuple(image_shape)):
        hint = f"; these look channels-last: {what}.permute(0, 3, 1, 2) makes them (N, C, H, W)"
    raise ValueError(f"{what} must be {wanted}, got shape {shape}{hint}")


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
