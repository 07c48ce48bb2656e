"""Helpers to call any graph model on a PyG ``Batch``."""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from dfkd.nn.models import GraphClassifier


def accepts_edge_weight(model: nn.Module) -> bool:
    """Whether ``model.forward`` takes an ``edge_weight`` argument."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return "edge_weight" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def forward_batch(model: nn.Module, batch: Any, return_embeddings: bool = False) -> Any:
    """Run ``model`` on a PyG ``Batch``/``Data``, passing ``edge_weight`` when the batch has one.

    Models of the zoo also get ``num_graphs`` (avoids a device sync) and
    ``return_embeddings``. Any other module is called as
    ``model(x, edge_index, batch[, edge_weight=...])``.
    """
    edge_weight = getattr(batch, "edge_weight", None)
    vec = getattr(batch, "batch", None)
    if vec is None:
        vec = torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.x.device)
    if isinstance(model, GraphClassifier):
        num_graphs = getattr(batch, "num_graphs", None)
        return model(batch.x, batch.edge_index, vec, edge_weight=edge_weight,
                     num_graphs=num_graphs, return_embeddings=return_embeddings)
    if return_embeddings:
        raise ValueError(f"{type(model).__name__} does not expose embeddings: use a dfkd.nn model")
    if edge_weight is not None:
        if not accepts_edge_weight(model):
            raise ValueError(
                f"{type(model).__name__}.forward takes no edge_weight: use a discrete-structure generator (e.g. ARM)"
            )
        return model(batch.x, batch.edge_index, vec, edge_weight=edge_weight)
    return model(batch.x, batch.edge_index, vec)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
