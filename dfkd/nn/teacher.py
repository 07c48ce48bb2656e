"""Health checks of a frozen teacher: train mode, active dropout, BatchNorm without running statistics.

A teacher is only a fixed function of its input in eval mode with deterministic layers. Three ways it
is not, each logged once per model (the distiller and the generators both prepare the same teacher):

* **train mode**: dropout drops units and BatchNorm normalises with each batch's statistics (and
  updates its running ones). Handled: the teacher is switched to eval mode, with a warning.
* **dropout still active in eval mode** (a forward that calls ``F.dropout(..., training=True)``, MC
  dropout): two identical forward passes differ. Detected by running a small probe graph twice;
  warned, since the distillation targets become noisy and only the teacher's code can fix it.
* **BatchNorm without running statistics** (``track_running_stats=False``): even in eval mode such a
  layer normalises with the current batch, so a graph's output depends on the other graphs of its
  batch, and the BatchNorm-statistics prior has nothing to match (see
  :class:`dfkd.losses.BatchNormStatsLoss`, whose ``reason`` says so). Warned.
"""
from __future__ import annotations

import logging
from typing import List, Optional

import torch
from torch import nn

from dfkd.nn.utils import call_model, freeze

logger = logging.getLogger(__name__)

_CHECKED = "_dfkd_teacher_checked"


def batchnorm_without_stats(model: nn.Module) -> List[str]:
    """Names of the BatchNorm layers of ``model`` that keep no running statistics."""
    return [name or type(m).__name__ for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and (not m.track_running_stats or m.running_mean is None)]


def is_deterministic(model: nn.Module, in_channels: int, device: torch.device) -> Optional[bool]:
    """Whether two forward passes of ``model`` (as it is, in its current mode) on the same 4-node probe
    graph (dense features) agree; ``None`` when the model cannot run on the probe (a custom input format). Global random
    streams are left untouched."""
    # Dense, distinct values: a dropout mask over them cannot repeat by chance (a one-hot row could).
    x = (torch.arange(4 * in_channels, device=device, dtype=torch.float).view(4, in_channels) % 7 + 1) / 7
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]], device=device)
    batch = torch.zeros(4, dtype=torch.long, device=device)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            first = call_model(model, x, edge_index, batch, num_graphs=1)
            second = call_model(model, x, edge_index, batch, num_graphs=1)
    except Exception as exc:  # noqa: BLE001 - a probe failure must never stop the run
        logger.debug("teacher probe skipped (%s: %s)", type(exc).__name__, exc)
        return None
    if not isinstance(first, torch.Tensor) or not isinstance(second, torch.Tensor):
        return None
    return bool(torch.equal(first, second))


def prepare_teacher(model: nn.Module, in_channels: Optional[int] = None,
                    device: Optional[torch.device] = None) -> nn.Module:
    """:func:`dfkd.nn.freeze` the teacher after checking it (see the module docstring); returns it.

    Args:
        model: the teacher, already on ``device``.
        in_channels: node-feature width for the determinism probe (default: ``model.config.in_channels``;
            the probe is skipped when neither is known).
        device: where the probe runs (default: the device of the model's first parameter).
    """
    checked = getattr(model, _CHECKED, False)
    if model.training:
        logger.warning("the teacher was in train mode (dropout and BatchNorm batch statistics active): switched "
                       "to eval mode, so its outputs are a fixed function of each graph")
    freeze(model)
    if checked:
        return model
    no_stats = batchnorm_without_stats(model)
    if no_stats:
        logger.warning("the teacher's BatchNorm layers %s keep no running statistics (track_running_stats=False): "
                       "even in eval mode they normalise with each batch, so a graph's output depends on its batch; "
                       "the BatchNorm-statistics prior is unavailable", no_stats[:3])
    in_channels = in_channels or getattr(getattr(model, "config", None), "in_channels", None)
    if in_channels:
        if device is None:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
        if is_deterministic(model, in_channels, torch.device(device)) is False:
            logger.warning("the teacher gives different outputs for the same graph in eval mode: dropout or another "
                           "random layer stays active in its forward (e.g. F.dropout(training=True)); distillation "
                           "targets will be noisy: make the teacher's forward respect eval()")
    try:
        object.__setattr__(model, _CHECKED, True)
    except (AttributeError, TypeError):  # a module that forbids new attributes: check again next time
        pass
    return model
