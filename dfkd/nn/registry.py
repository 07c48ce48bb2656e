"""Model registry (``register_model`` / ``build_model``), in the style of timm."""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, Dict, List, Union

from torch import nn

from dfkd.config import ModelConfig

_MODELS: Dict[str, Callable[[ModelConfig], nn.Module]] = {}
_ARCH_RE = re.compile(r"^([a-z_]+)-(\d+)-(\d+)$")


def register_model(name: str) -> Callable:
    """Class/factory decorator: ``@register_model("gin")``; the callable takes a :class:`ModelConfig`."""

    def decorator(factory: Callable) -> Callable:
        key = name.lower()
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        _MODELS[key] = factory
        return factory

    return decorator


def list_models(pattern: str = "*") -> List[str]:
    """Registered architecture names matching a glob pattern."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


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
    if out["arch"] not in _MODELS:
        raise ValueError(f"unknown architecture {out['arch']!r}: choose one of {list_models()}")
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
    if config.arch not in _MODELS:
        raise ValueError(f"unknown architecture {config.arch!r}: choose one of {list_models()}")
    return _MODELS[config.arch](config)
