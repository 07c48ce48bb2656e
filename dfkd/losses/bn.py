r"""BatchNorm-statistics prior (DeepInversion, Yin et al., CVPR 2020, Eq. 4; GFKD Eq. 9).

Forward hooks on every ``BatchNorm1d`` of a frozen model record the batch mean
:math:`\mu_b` and (biased) variance :math:`\sigma_b^2` of the layer's input and
compare them with the layer's running statistics.

* ``relative`` (default, scale-free): :math:`\frac{\|\mu_b-\mu_r\|_2}{\|\mu_r\|_2} +
  \frac{\|\sigma_b^2-\sigma_r^2\|_2}{\|\sigma_r^2\|_2}`, averaged over layers. Layers with large
  activations (sum aggregation) no longer swamp the others or the cross-entropy.
* ``kl``: per channel the Gaussian divergence
  :math:`\mathrm{KL}(\mathcal N(\mu_b,\sigma_b^2)\,\|\,\mathcal N(\mu_r,\sigma_r^2))
  = \log\frac{\sigma_r}{\sigma_b} + \frac{\sigma_b^2 + (\mu_b-\mu_r)^2}{2\sigma_r^2} - \frac12`,
  averaged over channels, then over layers (explodes on near-dead channels).
* ``l2`` (as in the papers): :math:`\|\mu_b-\mu_r\|_2 + \|\sigma_b^2-\sigma_r^2\|_2`, summed over layers.
"""
from __future__ import annotations

import logging
from typing import List, Optional

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

BN_LOSSES = ("relative", "kl", "l2")


def _has_running_stats(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats \
        and module.running_mean is not None


def first_batchnorm(model: nn.Module) -> Optional[nn.Module]:
    """The first BatchNorm layer (in module order) that keeps running statistics, or ``None``."""
    return next((m for m in model.modules() if _has_running_stats(m)), None)


class BatchNormStatsLoss:
    """Collects the BatchNorm prior of every forward pass while attached.

    Use as a context manager around the forward passes, then call :meth:`loss`::

        with BatchNormStatsLoss(teacher) as bn:
            teacher(x, edge_index, batch)
            prior = bn.loss()

    Args:
        model: the frozen network whose BatchNorm layers are matched.
        kind: ``relative``, ``kl`` or ``l2`` (see the module docstring).
        first_layer_weight: multiplier of the first layer's term (DeepInversion uses 10).

    Attributes:
        available (bool): the model has BatchNorm layers with running statistics.
        reason (str): why the prior is unavailable (empty when available).
    """

    def __init__(self, model: nn.Module, kind: str = "relative", first_layer_weight: float = 1.0, eps: float = 1e-5):
        if kind not in BN_LOSSES:
            raise ValueError(f"unknown BN loss {kind!r}: choose one of {BN_LOSSES}")
        self.kind, self.eps, self.first_layer_weight = kind, eps, first_layer_weight
        self.layers = [m for m in model.modules() if _has_running_stats(m)]
        self._first = self.layers[0] if self.layers else None
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        self.available = bool(self.layers)
        if self.available:
            self.reason = ""
        elif has_bn:
            self.reason = "the teacher's BatchNorm layers keep no running statistics (track_running_stats=False)"
        else:
            self.reason = "the teacher has no BatchNorm layers, so there are no statistics to match"
        self._terms: List[Tensor] = []
        self._handles: list = []

    def __enter__(self) -> "BatchNormStatsLoss":
        self._terms = []
        self._handles = [layer.register_forward_hook(self._hook) for layer in self.layers]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, module: nn.Module, inputs, output) -> None:
        x = inputs[0]
        if x.size(0) < 2:
            return
        mean = x.mean(0)
        var = x.var(0, unbiased=False)
        term = self.layer_loss(mean, var, module.running_mean, module.running_var)
        # DeepInversion weighs the first layer up: it alone pins down the input-feature distribution.
        self._terms.append(term * self.first_layer_weight if module is self._first else term)

    def layer_loss(self, mean: Tensor, var: Tensor, run_mean: Tensor, run_var: Tensor) -> Tensor:
        """Divergence of one layer: ``[C]`` statistics → scalar."""
        norm = torch.linalg.vector_norm
        if self.kind == "l2":
            return norm(mean - run_mean) + norm(var - run_var)
        if self.kind == "relative":
            return norm(mean - run_mean) / (norm(run_mean) + self.eps) + norm(var - run_var) / (norm(run_var) + self.eps)
        var_b, var_r = var + self.eps, run_var + self.eps
        kl = 0.5 * (torch.log(var_r / var_b) + (var_b + (mean - run_mean) ** 2) / var_r - 1.0)
        return kl.mean()

    def loss(self) -> Tensor:
        """The prior over the forward passes since entering (0 when unavailable); resets the record."""
        terms, self._terms = self._terms, []
        if not terms:
            return torch.zeros(())
        stacked = torch.stack(terms)
        return stacked.sum() if self.kind == "l2" else stacked.mean()
