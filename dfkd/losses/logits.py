"""Losses between student and teacher outputs."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from dfkd.losses.registry import register_loss


@register_loss("kl")
def kl_divergence(student: Tensor, teacher: Tensor, temperature: float = 2.0, **context) -> Tensor:
    r"""Hinton KD: :math:`T^2 \cdot \mathrm{KL}(\mathrm{softmax}(t/T) \| \mathrm{softmax}(s/T))`,
    averaged over the batch (``batchmean``), so weights mean the same at every ``T``.

    Shapes: student, teacher ``[B, C]`` → scalar.
    """
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature ** 2


@register_loss("mae")
def mean_absolute_error(student: Tensor, teacher: Tensor, temperature: float = 1.0, **context) -> Tensor:
    """L1 between logits, averaged over batch and outputs (DFAD-GNN's discrepancy). Shapes ``[B, C]`` → scalar."""
    return F.l1_loss(student, teacher)


@register_loss("mse")
def mean_squared_error(student: Tensor, teacher: Tensor, temperature: float = 1.0, **context) -> Tensor:
    """Squared error between outputs (regression teachers). Shapes ``[B, C]`` → scalar."""
    return F.mse_loss(student, teacher)


@register_loss("prob_mae")
def probability_absolute_error(student: Tensor, teacher: Tensor, temperature: float = 1.0, **context) -> Tensor:
    r"""L1 between softmax outputs, :math:`\frac1{BC}\sum|\mathrm{softmax}(s/T) - \mathrm{softmax}(t/T)|`:
    a bounded discrepancy, so an adversarial generator cannot win by inflating the logits.
    Shapes ``[B, C]`` → scalar."""
    return F.l1_loss(F.softmax(student / temperature, -1), F.softmax(teacher / temperature, -1))
