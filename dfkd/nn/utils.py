"""Helpers to call any graph model on tensors or on a PyG ``Batch``."""
from __future__ import annotations

import inspect
from typing import Any, Optional

import torch
from torch import Tensor, nn

from dfkd.nn.models import GraphClassifier


def accepts_edge_weight(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes an ``edge_weight`` argument."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "edge_weight" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def call_model(model: nn.Module, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: Optional[int] = None,
               edge_weight: Optional[Tensor] = None, return_embeddings: bool = False) -> Any:
    """Run a graph model on tensors.

    Zoo models also get ``num_graphs`` (no device sync) and ``return_embeddings``. Any other
    module is called as ``model(x, edge_index, batch[, edge_weight=...])``.

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, batch ``[N]``, edge_weight ``[E]`` → ``[B, C]``.
    """
    # A DistributedDataParallel wrapper forwards keyword arguments to the model it wraps.
    if isinstance(model, GraphClassifier) or isinstance(getattr(model, "module", None), GraphClassifier):
        return model(x, edge_index, batch, edge_weight=edge_weight, num_graphs=num_graphs,
                     return_embeddings=return_embeddings)
    if return_embeddings:
        raise ValueError(f"{type(model).__name__} does not expose embeddings: use a dfkd.nn model")
    if edge_weight is not None:
        if not accepts_edge_weight(model):
            raise ValueError(
                f"{type(model).__name__}.forward takes no edge_weight: use the ARM estimator, which needs none"
            )
        return model(x, edge_index, batch, edge_weight=edge_weight)
    return model(x, edge_index, batch)


def forward_batch(model: nn.Module, batch: Any, return_embeddings: bool = False) -> Any:
    """Run ``model`` on a PyG ``Batch``/``Data``, passing ``edge_weight`` when the batch has one."""
    vec = getattr(batch, "batch", None)
    if vec is None:
        vec = torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.x.device)
    return call_model(model, batch.x, batch.edge_index, vec, num_graphs=getattr(batch, "num_graphs", None),
                      edge_weight=getattr(batch, "edge_weight", None), return_embeddings=return_embeddings)


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and stop its parameters from requiring gradients (a frozen teacher)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (frozen ones included: this is the model's size)."""
    return sum(p.numel() for p in model.parameters())
