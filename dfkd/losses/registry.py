"""Loss registry and recipes (a recipe is data: ``"kl"`` or ``"kl=1,mae=0.5"``)."""
from __future__ import annotations

from typing import Callable, List, Tuple

from dfkd.registry import Registry

LOSSES: Registry[Callable] = Registry("loss")
register_loss = LOSSES.register
get_loss = LOSSES.get
list_losses = LOSSES.names


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
