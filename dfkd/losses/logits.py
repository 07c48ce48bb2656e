"""Losses between student and teacher outputs."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor

from dfkd.losses.registry import get_loss, register_loss

# Losses that read the outputs as class logits (softmax) or use class labels: meaningless for a
# regression teacher, whose outputs are values. Registered functions may also carry
# ``classification_only = True``.
CLASSIFICATION_ONLY_LOSSES = frozenset({"kl", "dynamic_kl", "prob_mae", "label_ce"})
REGRESSION_DEFAULT_LOSS = "mse"


def is_classification_only(name: str) -> bool:
    """Whether the registered loss ``name`` needs class logits or labels (so cannot serve regression)."""
    name = name.strip().lower()
    return name in CLASSIFICATION_ONLY_LOSSES or bool(getattr(get_loss(name), "classification_only", False))


def check_regression_recipe(terms: Sequence[Tuple[str, float]]) -> None:
    """One-line ``ValueError`` when a parsed recipe (:func:`dfkd.losses.parse_recipe`) has a term that needs
    class logits, for a regression teacher; the message names ``mse`` and ``mae``."""
    bad = [name for name, _ in terms if is_classification_only(name)]
    if bad:
        raise ValueError(f"loss {', '.join(bad)} compares class probabilities or labels, which a regression teacher "
                         "does not have: use --loss mse (the default for regression) or mae")


def per_graph_disagreement(student: Tensor, teacher: Tensor, regression: bool = False) -> Tensor:
    r"""``[B]`` how far the student's outputs are from the teacher's, graph by graph:
    :math:`\mathrm{KL}(\mathrm{softmax}(t) \| \mathrm{softmax}(s))` of ``[B, C]`` logits, or for a regression
    teacher the squared error averaged over the ``[B, T]`` outputs. Used to rank graphs, not as a loss."""
    if regression:
        return ((student - teacher) ** 2).mean(-1)
    log_t, log_s = F.log_softmax(teacher, -1), F.log_softmax(student, -1)
    return (log_t.exp() * (log_t - log_s)).sum(-1)


@register_loss("kl")
def kl_divergence(student: Tensor, teacher: Tensor, temperature: float = 2.0, **context) -> Tensor:
    r"""Hinton KD: :math:`T^2 \cdot \mathrm{KL}(\mathrm{softmax}(t/T) \| \mathrm{softmax}(s/T))`,
    averaged over the batch (``batchmean``), so weights mean the same at every ``T``.

    Shapes: student, teacher ``[B, C]`` → scalar.
    """
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * temperature ** 2


kl_divergence.classification_only = True


@register_loss("mae")
def mean_absolute_error(student: Tensor, teacher: Tensor, temperature: float = 1.0, **context) -> Tensor:
    """L1 between outputs (logits, or a regression teacher's values), averaged over batch and outputs
    (DFAD-GNN's discrepancy). Shapes ``[B, C]`` → scalar."""
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


probability_absolute_error.classification_only = True
