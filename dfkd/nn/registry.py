"""Model registry (``register_model`` / ``build_model``), in the style of timm."""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Union

from torch import nn

from dfkd.config import ModelConfig
from dfkd.registry import Registry

MODELS: Registry[Callable[[ModelConfig], nn.Module]] = Registry("architecture")
_ARCH_RE = re.compile(r"^([a-z_]+)-(\d+)-(\d+)$")
register_model = MODELS.register
list_models = MODELS.names


def parse_arch(spec: str) -> Dict[str, Any]:
    """Parse the compact form ``NAME-LAYERS-HIDDEN`` (e.g. ``gin-5-64``) or a bare ``NAME``."""
    spec = spec.strip().lower()
    match = _ARCH_RE.match(spec)
    if match:
        out: Dict[str, Any] = {"arch": match.group(1), "num_layers": int(match.group(2)), "hidden": int(match.group(3))}
    elif re.fullmatch(r"[a-z_]+", spec):
        out = {"arch": spec}
    else:
        raise ValueError(f"cannot parse architecture {spec!r}: use NAME-LAYERS-HIDDEN, e.g. gin-5-64")
    MODELS.get(out["arch"])  # clear error for an unknown name
    return out


def build_model(spec: Union[str, ModelConfig], **overrides: Any) -> nn.Module:
    """Build a model from a config or a name (``"gin"``, ``"gin-5-64"``) plus keyword overrides.

    Example:
        >>> build_model("gin", in_channels=7, out_channels=2, num_layers=5, hidden=64)
    """
    if isinstance(spec, ModelConfig):
        config = spec.replace(**overrides) if overrides else spec
    else:
        config = ModelConfig(**{**parse_arch(spec), **overrides})
    return MODELS.get(config.arch)(config)
