"""Small shared helpers: seeding, devices, progress bars."""
from __future__ import annotations

import contextlib
import random
import sys
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Union

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


def scoped_setting(read: Callable[[], Any], write: Callable[[Any], None], what: str) -> Callable[[Any], Any]:
    """A context manager ``use(value)`` that sets a global setting with ``write`` and restores what ``read``
    gave before (the scatter backend, the propagation mode, the precision)."""

    @contextlib.contextmanager
    def use(value: Any) -> Iterator[None]:
        previous = read()
        write(value)
        try:
            yield
        finally:
            write(previous)

    use.__doc__ = f"Context manager that sets the {what} and restores the previous one."
    return use


# Seconds between bar refreshes when the bar goes to a file or pipe (CI logs, nohup): each refresh is a
# line there, and tqdm's 0.1 s default fills a log with thousands of them.
LOG_REFRESH_SECONDS = 30.0


class ProgressBar(tqdm):
    """tqdm whose ``set_postfix`` waits for the next timed refresh instead of redrawing at once (tqdm's
    default), so updating the figures every step costs no output of its own."""

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = False, **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=refresh, **kwargs)


def progress(iterable: Optional[Iterable] = None, enabled: bool = True, **kwargs: Any) -> ProgressBar:
    """A :class:`ProgressBar` that ``enabled=False`` silences; written to a file or pipe rather than a
    terminal, it refreshes every :data:`LOG_REFRESH_SECONDS` only."""
    stream = kwargs.get("file") or sys.stderr
    if enabled and not getattr(stream, "isatty", lambda: False)():
        kwargs.setdefault("mininterval", LOG_REFRESH_SECONDS)
    return ProgressBar(iterable, disable=not enabled, dynamic_ncols=True, leave=False, **kwargs)


def check_finite(terms: Dict[str, Tensor], where: str, advice: str) -> None:
    """Raise ``FloatingPointError`` naming the loss terms that are NaN or infinite (checked at the step)."""
    bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
    if bad:
        raise FloatingPointError(f"{where}: non-finite loss term(s) {bad}; {advice}")
