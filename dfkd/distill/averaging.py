"""Weight-space ensembles of a student: averaged over its last epochs, or blended back towards its start.

* :class:`WeightAverage`: stochastic weight averaging (Izmailov et al. 2018, Eq. 2): the running mean
  ``w_swa <- (w_swa * n + w) / (n + 1)`` of the student's weights at the end of each of its last epochs.
* :func:`blend_states`: WiSE-FT's weight-space ensemble (Wortsman et al. 2022, Eq. 1),
  ``w = (1 - share) * w_trained + share * w_start``, for a student started from the teacher's weights.

Both act on a ``state_dict``'s floating-point tensors (parameters and running statistics alike); integer buffers
(BatchNorm's ``num_batches_tracked``) keep the trained model's value.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn


def float_state(module: nn.Module) -> Dict[str, torch.Tensor]:
    """Detached copies of ``module``'s floating-point parameters and buffers, by ``state_dict`` key."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def load_float_state(module: nn.Module, state: Dict[str, torch.Tensor]) -> None:
    """Write ``state`` (from :func:`float_state`) into ``module`` in place; other entries stay as they are."""
    current = module.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            current[key].copy_(value)


def blend_states(trained: Dict[str, torch.Tensor], start: Dict[str, torch.Tensor],
                 share: float) -> Dict[str, torch.Tensor]:
    """``(1 - share) * trained + share * start``, entry by entry (WiSE-FT, Eq. 1); the two share their keys."""
    return {k: torch.lerp(v, start[k], share) for k, v in trained.items()}


class WeightAverage:
    """Running mean of a module's floating-point state over the snapshots it is shown (SWA, Eq. 2)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: Optional[Dict[str, torch.Tensor]] = None

    def update(self, module: nn.Module) -> None:
        """Add ``module``'s current weights to the mean."""
        state = float_state(module)
        self.count += 1
        if self.mean is None:
            self.mean = state
            return
        for key, value in state.items():
            self.mean[key] += (value - self.mean[key]) / self.count

    def state_dict(self) -> Dict[str, object]:
        return {"count": self.count, "mean": self.mean}

    def load_state_dict(self, state: Dict[str, object]) -> None:
        self.count, self.mean = int(state["count"]), state["mean"]
