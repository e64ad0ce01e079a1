"""One small registry class, used for methods and backbones.

Modelled on fvcore's ``Registry`` (duplicates are errors) with lm-evaluation-harness's
did-you-mean message for unknown names.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tokbench.errors import UnknownNameError

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Maps names (and aliases) to objects of one kind.

    Args:
        kind: what the registry holds, used in messages ("method", "backbone").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, obj: T, *, aliases: tuple[str, ...] = ()) -> T:
        """Add ``obj`` under ``name`` and ``aliases``; any name already taken is an error."""
        for key in (name, *aliases):
            if key in self._items or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._items[name] = obj
        for alias in aliases:
            self._aliases[alias] = name
        return obj

    def decorator(self, name: str, *, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """``@REGISTRY.decorator("name")`` registers the decorated object."""

        def wrap(obj: T) -> T:
            return self.register(name, obj, aliases=aliases)

        return wrap

    def canonical(self, name: str) -> str:
        """The registered name for ``name`` or one of its aliases."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        close = difflib.get_close_matches(name, [*self._items, *self._aliases], n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}"
        )

    def get(self, name: str) -> T:
        """The object registered as ``name`` (or an alias); unknown names raise with suggestions."""
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        """Registered names, sorted (aliases excluded)."""
        return sorted(self._items)

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, target in self._aliases.items() if target == name)

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    @contextlib.contextmanager
    def temporary(self, name: str, obj: T, *, aliases: tuple[str, ...] = ()) -> Iterator[T]:
        """Register ``obj`` for the duration of a ``with`` block (for tests and plug-ins)."""
        self.register(name, obj, aliases=aliases)
        try:
            yield obj
        finally:
            del self._items[name]
            for alias in aliases:
                self._aliases.pop(alias, None)
