"""A small name → object registry shared by models, losses and generators (timm / torchdistill style)."""
from __future__ import annotations

import fnmatch
from typing import Callable, Dict, Generic, List, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects registered under a name; lookups ignore case (and, optionally, ``-`` and ``_``).

    Args:
        kind: what is registered, used in error messages (``"model"``, ``"loss"``, ...).
        loose: also ignore ``-`` and ``_`` when matching names (as PyG's resolvers do).
    """

    def __init__(self, kind: str, loose: bool = False):
        self.kind, self.loose = kind, loose
        self._items: Dict[str, T] = {}
        self._names: Dict[str, str] = {}

    def _key(self, name: str) -> str:
        key = name.strip().lower()
        return key.replace("-", "").replace("_", "") if self.loose else key

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@registry.register("gin")``."""

        def decorator(obj: T) -> T:
            key = self._key(name)
            if key in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[key], self._names[key] = obj, name
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[self._key(name)]
        except KeyError:
            raise ValueError(f"no {self.kind} {name!r} registered: choose one of {self.names()}") from None

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self._items

    def names(self, pattern: str = "*") -> List[str]:
        """Registered names matching a glob pattern, sorted."""
        return sorted(n for n in self._names.values() if fnmatch.fnmatch(n, pattern))
