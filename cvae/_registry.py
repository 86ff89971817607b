"""`Registry`: names for every family of parts (backbones, likelihoods, datasets).

A config names its parts (`"backbone": "conv"`, `"likelihood": "gaussian"`), and loading
a model looks them up here; user code registers its own under new names, as
`timm.create_model` and diffusers do with theirs.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name that nothing is registered under.

    It is both a `KeyError` (a failed lookup) and a `ValueError` (a bad argument), so code
    that caught either before keeps working. Its message is plain text, not a quoted key.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A mapping from names to parts of one kind, with errors that say what is known.

    Args:
        kind: What the parts are, for messages (`"backbone"`).
        hint: A sentence added to the message for an unknown name, saying how to
            register one; `{name}` in it is replaced by the name asked for.
    """

    def __init__(self, kind: str, hint: str = ""):
        self.kind, self.hint = kind, hint
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, overwrite: bool = False) -> T:
        """Register `item` under `name` and return it.

        Raises:
            TypeError: If `name` is not a non-empty string.
            ValueError: If `name` is taken and `overwrite` is False.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items and not overwrite:
            raise ValueError(f"a {self.kind} named {name!r} is already registered; pass"
                             f" overwrite=True to replace it")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The part registered under `name`.

        Raises:
            UnknownNameError: If there is none; the message lists the registered names.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a bad config
            hint = " " + self.hint.format(name=repr(name)) if self.hint else ""
            raise UnknownNameError(f"no {self.kind} named {name!r} is registered (registered:"
                                   f" {', '.join(self.names())}).{hint}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._items
