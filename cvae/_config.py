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
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

__all__ = ["ConfigMixin", "register_to_config", "jsonable"]

F = TypeVar("F", bound=Callable[..., None])


def jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON: tuples become lists, at any depth."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


class ConfigMixin:
    """Gives `config`, `from_config` and `config_keys()` to a class whose `__init__` is decorated.

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
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """A new object built from its settings, as `obj.config` or a `config.json` gives them.

        Example:
            ```python
            twin = ConditionalVAE.from_config(model.config)  # the same architecture, new weights
            ```

        Raises:
            TypeError: If `config` names a setting this class does not take.
        """
        unknown = sorted(set(config) - set(cls.config_keys()))
        if unknown:
            raise TypeError(f"{cls.__name__} has no settings {unknown}; it takes {cls.config_keys()}")
        return cls(**config)

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
