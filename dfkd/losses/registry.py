"""Loss registry and recipes (a recipe is data: ``"kl"`` or ``"kl=1,mae=0.5"``)."""
from __future__ import annotations

import fnmatch
from typing import Callable, Dict, List, Tuple

_LOSSES: Dict[str, Callable] = {}


def register_loss(name: str) -> Callable:
    """Decorator: ``@register_loss("kl")`` on ``fn(student_out, teacher_out, **params) -> Tensor``."""

    def decorator(fn: Callable) -> Callable:
        key = name.lower()
        if key in _LOSSES:
            raise ValueError(f"loss {key!r} is already registered")
        _LOSSES[key] = fn
        return fn

    return decorator


def list_losses(pattern: str = "*") -> List[str]:
    return sorted(n for n in _LOSSES if fnmatch.fnmatch(n, pattern))


def get_loss(name: str) -> Callable:
    try:
        return _LOSSES[name.lower()]
    except KeyError:
        raise ValueError(f"no loss {name!r} registered: choose one of {list_losses()}") from None


def parse_recipe(spec: str) -> List[Tuple[str, float]]:
    """``"kl=1,mae=0.5"`` → ``[("kl", 1.0), ("mae", 0.5)]``; a bare name has weight 1."""
    terms = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, weight = part.partition("=")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad loss weight in {part!r}: write NAME=WEIGHT, e.g. kl=1,mae=0.5") from None
        get_loss(name)
        terms.append((name.strip().lower(), value))
    if not terms:
        raise ValueError(f"empty loss recipe {spec!r}: name at least one of {list_losses()}")
    return terms
