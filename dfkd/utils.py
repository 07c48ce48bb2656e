"""Small shared helpers: seeding, devices, progress bars."""
from __future__ import annotations

import random
from typing import Any, Dict, Iterable, Optional, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python and torch; returns a CPU generator seeded the same way."""
    random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(device: Union[str, torch.device, None] = None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else CPU; a clear error for an absent device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available: use --device cpu")
    return dev


def progress(iterable: Optional[Iterable] = None, enabled: bool = True, **kwargs: Any):
    """A tqdm bar that ``enabled=False`` silences."""
    return tqdm(iterable, disable=not enabled, dynamic_ncols=True, leave=False, **kwargs)


def check_finite(terms: Dict[str, Tensor], where: str, advice: str) -> None:
    """Raise ``FloatingPointError`` naming the loss terms that are NaN or infinite (checked at the step)."""
    bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
    if bad:
        raise FloatingPointError(f"{where}: non-finite loss term(s) {bad}; {advice}")
