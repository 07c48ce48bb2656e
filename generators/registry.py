"""Generator registry: ``@register_generator("gfkd")`` and ``get_generator_class``."""
from __future__ import annotations

from typing import Callable, List

from dfkd.registry import Registry

GENERATORS: Registry[type] = Registry("generator", loose=True)


def register_generator(name: str) -> Callable[[type], type]:
    """Class decorator that makes a generator resolvable by ``name`` (case, ``-`` and ``_`` ignored)."""

    def decorator(cls: type) -> type:
        cls.registered_name = name
        return GENERATORS.register(name)(cls)

    return decorator


def list_generators(pattern: str = "*") -> List[str]:
    """Registered generator names matching a glob pattern."""
    return GENERATORS.names(pattern)


def get_generator_class(name: str) -> type:
    """The class registered as ``name``; a clear error listing the choices otherwise."""
    return GENERATORS.get(name)
