"""Mixed precision for dfkd models' forward passes (``torch.autocast``), chosen globally like the aggregation.

With ``bf16`` or ``fp16`` set, :func:`dfkd.nn.call_model` runs every model (teacher, student, generators'
teacher passes) under ``torch.autocast`` on the input's device: matrix products run in the low precision,
weights and gradients stay float32, and the outputs are cast back to float32 so every loss, estimator and
optimiser downstream works in float32. Sum and mean aggregations accumulate in float32 whatever the
input (:func:`dfkd.ops.scatter`), as autocast does for reductions. ``fp16`` needs loss scaling, which the
distiller applies (``torch.amp.GradScaler``); ``bf16`` has float32's range and needs none.

Whether it pays depends on the hardware: tensor cores (CUDA) or bf16 units (AVX512-BF16, AMX) make it
faster; without them (this project's CI CPUs, AVX2) the low-precision kernels are emulated and slower
(``benchmarks/results/archive/speed.md``). The default is ``fp32``.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Dict, Optional

import torch

from dfkd.nn.models import ModelOutput
from dfkd.utils import scoped_setting

PRECISIONS: Dict[str, Optional[torch.dtype]] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
HALF_DTYPES = (torch.float16, torch.bfloat16)
_precision = "fp32"


def get_precision() -> str:
    """The global precision of model forward passes (``fp32`` unless set)."""
    return _precision


def validate_precision(name: str) -> None:
    """Raise ``ValueError`` (one line) naming the choices when ``name`` is not a precision."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}: choose {', '.join(PRECISIONS)}")


def set_precision(name: Optional[str]) -> None:
    """Choose the precision of dfkd models' forward passes: ``fp32`` (``None``), ``bf16`` or ``fp16``."""
    global _precision
    name = name or "fp32"
    validate_precision(name)
    _precision = name


use_precision = scoped_setting(get_precision, set_precision, "precision")


def check_precision(name: str, device: Any) -> None:
    """Raise ``ValueError`` (one line) when ``name`` is not a precision or autocast cannot run it on ``device``."""
    validate_precision(name)
    dtype = PRECISIONS[name]
    if dtype is None:
        return
    kind = torch.device(device).type
    if not torch.amp.is_autocast_available(kind):
        raise ValueError(f"precision {name!r} needs torch.autocast, which has no {kind!r} backend: use --precision fp32")
    if kind == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bfloat16 support: use --precision fp16 (or fp32)")


def autocast_for(device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` at the global precision on ``device_type``, or a no-op context at ``fp32``."""
    dtype = PRECISIONS[_precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def to_float32(output: Any) -> Any:
    """``output`` (a tensor, or a :class:`dfkd.nn.ModelOutput`) with its float16/bfloat16 tensors cast to
    float32 (other dtypes, float64 included, are left as they are)."""
    if torch.is_tensor(output):
        return output.float() if output.dtype in HALF_DTYPES else output
    if isinstance(output, ModelOutput):
        return dataclasses.replace(output, logits=to_float32(output.logits),
                                   node_embeddings=[to_float32(h) for h in output.node_embeddings],
                                   graph_embedding=to_float32(output.graph_embedding))
    return output
