r"""Data-free estimate of the node-type distribution from the teacher's first BatchNorm layer.

The first BatchNorm layer of a GNN sees a linear function of the (aggregated) input features, so
its running mean pins down the average input. With every node carrying the *expected* one-hot
vector :math:`\pi` (a point of the simplex), the batch mean of that layer's input is exactly its
expectation under i.i.d. node types drawn from :math:`\pi`; solving

.. math::
    \pi^\star = \arg\min_{\pi \in \Delta} \frac{\|\mu_b(\pi) - \mu_{run}\|_2}{\|\mu_{run}\|_2}

recovers the node-type marginal the teacher was trained on (on MUTAG: 0.76 carbon against 0.71 in
the data) without any real graph. GFKD then starts its feature logits from samples of
:math:`\pi^\star` instead of uniformly random types, which the teacher never saw.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from dfkd.losses.bn import first_batchnorm
from dfkd.nn import call_model

logger = logging.getLogger(__name__)


class _StopForward(Exception):
    """Raised by a hook once the first BatchNorm layer's input is captured: the rest of the teacher is not run."""


class FirstBatchNormInput:
    """Runs a teacher up to its first BatchNorm layer and returns that layer's ``[N, C]`` input.

    With ``truncate`` (default) a pre-hook captures the input and aborts the forward pass, so the rest of the
    teacher is not run (a fraction of the cost, ``benchmarks/results/archive/speed.md``). Use as a context
    manager (the hook lives inside it); ``layer`` is ``None`` for a teacher without BatchNorm statistics.
    """

    def __init__(self, teacher: nn.Module, truncate: bool = True):
        self.teacher, self.truncate = teacher, truncate
        self.layer = first_batchnorm(teacher)
        self._captured: Optional[Tensor] = None
        self._handle = None

    def __enter__(self) -> "FirstBatchNormInput":
        if self.layer is not None:
            self._handle = self.layer.register_forward_pre_hook(self._capture)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _capture(self, module: nn.Module, inputs: Tuple[Tensor, ...]) -> None:
        self._captured = inputs[0]
        if self.truncate:
            raise _StopForward

    def __call__(self, x: Tensor, edge_index: Tensor, node_graph: Tensor, num_graphs: int) -> Tensor:
        """``[N, C]`` input of the first BatchNorm layer for node features ``x [N, F]``."""
        try:
            call_model(self.teacher, x, edge_index, node_graph, num_graphs)
        except _StopForward:
            pass
        return self._captured


def estimate_type_prior(teacher: nn.Module, num_types: int, edge_index: Tensor, node_graph: Tensor,
                        num_graphs: int, steps: int = 300, lr: float = 0.1,
                        truncate: bool = True, verbose: bool = True,
                        init: Optional[Tensor] = None) -> Tuple[Optional[Tensor], float]:
    """Fit the node-type distribution to the first BatchNorm layer's running mean.

    Only the teacher up to that layer matters, so with ``truncate`` (default) every one of the ``steps``
    forward passes stops there (a pre-hook captures the layer's input and aborts the forward): same
    result, a fraction of the cost (``benchmarks/results/archive/speed.md``). ``truncate=False`` runs the whole
    teacher every step (the reference for that benchmark).

    Args:
        teacher: frozen model with BatchNorm running statistics.
        num_types: one-hot width ``F``.
        edge_index: ``[2, E]`` structure to run the teacher on (e.g. the initial synthetic graphs).
        node_graph: ``[N]`` graph of every node.
        init: ``[F]`` distribution to start from (default uniform): a warm start when fitting a sequence
            of nearby structures.

    Returns:
        ``(pi [F], residual)``: the distribution and the relative error of the fit, or ``(None, nan)``
        when the teacher has no usable BatchNorm layer.
    """
    first = FirstBatchNormInput(teacher, truncate)
    if first.layer is None:
        return None, float("nan")
    logits = (torch.zeros(num_types, device=edge_index.device) if init is None
              else init.to(edge_index.device).clamp(min=1e-8).log()).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    target = first.layer.running_mean
    residual = float("nan")
    with first:
        for _ in range(steps):
            x = torch.softmax(logits, 0).expand(node_graph.numel(), num_types)
            loss = torch.linalg.vector_norm(first(x, edge_index, node_graph, num_graphs).mean(0) - target) / (
                torch.linalg.vector_norm(target) + 1e-8)
            opt.zero_grad()
            loss.backward()
            opt.step()
            residual = loss.item()
    pi = torch.softmax(logits.detach(), 0)
    logger.log(logging.INFO if verbose else logging.DEBUG,
               "node-type prior from the first BatchNorm layer: %s (relative residual %.3f)",
               [round(v, 3) for v in pi.tolist()], residual)
    return pi, residual
