"""Named presets: a generator family's option values plus the student recipe that goes with them.

A family lists its presets in ``presets`` (``{"paper": Preset(...)}``); ``make_generator(..., preset="paper")``
and ``dfkd distill --preset paper`` start from them, and options given explicitly still win. The student
side is plain data (:class:`~dfkd.distill.DistillConfig` field values), so generators never import the
distiller.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class Preset:
    """Option values of one generator family.

    Args:
        generator: field values of the family's config dataclass.
        distill: field values of ``DistillConfig`` the preset implies for the student (loss, schedule, ...).
        doc: one line on where the values come from.
    """

    generator: Mapping[str, Any]
    distill: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "generator", MappingProxyType(dict(self.generator)))
        object.__setattr__(self, "distill", MappingProxyType(dict(self.distill)))


def get_preset(cls: type, name: str) -> Preset:
    """The preset ``name`` of generator class ``cls``; a one-line error listing the choices otherwise."""
    presets = getattr(cls, "presets", {})
    if name not in presets:
        family = getattr(cls, "registered_name", cls.__name__)
        if not presets:
            raise ValueError(f"generator {family!r} has no presets: drop --preset {name} (preset=), or use gfkd "
                             "or dfad")
        raise ValueError(f"generator {family!r} has no preset {name!r}: choose one of {sorted(presets)}")
    return presets[name]
