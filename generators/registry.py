"""Generator registry: ``@register_generator("gfkd")`` and ``resolve_generator``."""
from __future__ import annotations

import fnmatch
from typing import Callable, Dict, List

_GENERATORS: Dict[str, Callable] = {}


def _key(name: str) -> str:
    # As in PyG's resolver: case, '-' and '_' do not matter.
    return name.lower().replace("-", "").replace("_", "")


def register_generator(name: str) -> Callable:
    """Class decorator that makes a generator resolvable by ``name``."""

    def decorator(cls: Callable) -> Callable:
        key = _key(name)
        if key in _GENERATORS:
            raise ValueError(f"generator {name!r} is already registered")
        _GENERATORS[key] = cls
        cls.registered_name = name
        return cls

    return decorator


def list_generators(pattern: str = "*") -> List[str]:
    """Registered generator names matching a glob pattern."""
    return sorted(cls.registered_name for cls in _GENERATORS.values() if fnmatch.fnmatch(cls.registered_name, pattern))


def get_generator_class(name: str) -> Callable:
    """The class registered as ``name``; a clear error listing the choices otherwise."""
    try:
        return _GENERATORS[_key(name)]
    except KeyError:
        raise ValueError(f"could not resolve generator {name!r} among choices {list_generators()}") from None
