"""Scatter aggregation with two interchangeable backends.

``torch_scatter`` is used when it is installed and imports cleanly; otherwise
native ``torch`` kernels (``index_add_`` / ``scatter_reduce_``) do the work.
The flag is read at call time, so tests (and users) can force either path with
:func:`set_backend` or the :func:`use_backend` context manager.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import Tensor

from dfkd.utils import scoped_setting

logger = logging.getLogger(__name__)

try:  # A broken binary raises something other than ImportError: catch everything.
    import torch_scatter as _torch_scatter  # type: ignore

    WITH_TORCH_SCATTER = True
except Exception as exc:  # pragma: no cover - depends on the environment
    _torch_scatter = None
    WITH_TORCH_SCATTER = False
    if not isinstance(exc, ImportError):
        logger.warning("torch_scatter is installed but failed to import (%s); using native torch", exc)

REDUCTIONS = ("sum", "mean", "max")
_backend: Optional[str] = None  # None = automatic


def available_backends() -> list:
    """Names of the backends usable in this environment."""
    return ["native"] + (["torch_scatter"] if WITH_TORCH_SCATTER else [])


def get_backend() -> str:
    """The backend :func:`scatter` uses now: ``"torch_scatter"`` or ``"native"``."""
    if _backend is not None:
        return _backend
    # Native index_add_ measured faster than torch_scatter on CPU; torch_scatter wins on GPU.
    return "native"


def set_backend(name: Optional[str]) -> None:
    """Choose the backend: ``"native"``, ``"torch_scatter"`` or ``None``/``"auto"``."""
    global _backend
    if name in (None, "auto"):
        _backend = None
        return
    if name not in ("native", "torch_scatter"):
        raise ValueError(f"unknown scatter backend {name!r}: choose 'native', 'torch_scatter' or 'auto'")
    if name == "torch_scatter" and not WITH_TORCH_SCATTER:
        raise RuntimeError("scatter backend 'torch_scatter' is not installed: pip install 'dfkd[scatter]'")
    _backend = name


use_backend = scoped_setting(lambda: _backend, set_backend, "scatter backend")


def scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str = "sum") -> Tensor:
    r"""Reduce rows of ``src`` into ``dim_size`` buckets given by ``index``.

    .. math::
        \mathrm{out}_i = \bigoplus_{j : \mathrm{index}_j = i} \mathrm{src}_j

    Empty buckets are 0 for every reduction. Sums and means of float16/bfloat16 values accumulate, and are
    returned, in float32 (as autocast does for reductions: mixed precision, :mod:`dfkd.nn.precision`).

    Args:
        src (Tensor): values, shape ``[E, *]``.
        index (LongTensor): bucket of each row, shape ``[E]``, values in ``[0, dim_size)``.
        dim_size (int): number of buckets ``N``.
        reduce (str): ``"sum"``, ``"mean"`` or ``"max"``.

    Shapes:
        output ``[N, *]``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}: choose one of {REDUCTIONS}")
    if reduce != "max" and src.dtype in (torch.float16, torch.bfloat16):
        src = src.float()
    if get_backend() == "torch_scatter":
        return _torch_scatter.scatter(src, index, dim=0, dim_size=dim_size, reduce=reduce)
    return _native_scatter(src, index, dim_size, reduce)


def _native_scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str) -> Tensor:
    out = src.new_zeros((dim_size,) + tuple(src.shape[1:]))
    if reduce == "max":
        expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
        return out.scatter_reduce(0, expanded, src, reduce="amax", include_self=False)
    out = out.index_add(0, index, src)
    if reduce == "mean":
        count = src.new_zeros(dim_size).index_add(0, index, src.new_ones(index.numel()))
        out = out / count.clamp(min=1).view(-1, *([1] * (src.dim() - 1)))
    return out
