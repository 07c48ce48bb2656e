"""Loss registry and recipes (a recipe is data: ``"kl"`` or ``"kl=1,mae=0.5"``).

A registered loss is either a function ``fn(student_logits, teacher_logits, **context) -> Tensor``
or, when it has trainable state (projection heads, a learnt temperature), an ``nn.Module`` class
whose instances are called the same way. The distiller builds such a class once with
:func:`build_loss`, trains its parameters with the student's optimiser and keeps them in its
resumable state.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, List, Tuple

from torch import nn

from dfkd.registry import Registry

LOSSES: Registry[Callable] = Registry("loss")
register_loss = LOSSES.register
get_loss = LOSSES.get
list_losses = LOSSES.names

# What the distiller offers a stateful loss's constructor (each class takes the ones it names):
# widths of the last node states of both models, and the configured softmax temperature.
LOSS_BUILD_ARGUMENTS = ("student_width", "teacher_width", "temperature")


def is_stateful_loss(loss: Any) -> bool:
    """Whether a registered loss is an ``nn.Module`` class to instantiate (rather than a function)."""
    return isinstance(loss, type) and issubclass(loss, nn.Module)


def build_loss(loss: Any, **available: Any) -> Callable:
    """A registered loss ready to call: a function as it is; a stateful class instantiated with the
    ``available`` keyword arguments its constructor names (the others are not passed)."""
    if not is_stateful_loss(loss):
        return loss
    params = inspect.signature(loss.__init__).parameters
    return loss(**{k: v for k, v in available.items() if k in params})


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
