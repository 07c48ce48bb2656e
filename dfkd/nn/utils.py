"""Helpers to call any graph model on tensors or on a PyG ``Batch``."""
from __future__ import annotations

import contextlib
import inspect
from typing import Any, Dict, Iterator, Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from dfkd.nn.models import GraphClassifier
from dfkd.nn.precision import autocast_for, get_precision, to_float32


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
    module is called as ``model(x, edge_index, batch[, edge_weight=...])``. At a mixed precision
    (:func:`dfkd.nn.precision.use_precision`) the call runs under ``torch.autocast`` and the outputs come
    back as float32.

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, batch ``[N]``, edge_weight ``[E]`` → ``[B, C]``.
    """
    if get_precision() == "fp32":
        return _call(model, x, edge_index, batch, num_graphs, edge_weight, return_embeddings)
    with autocast_for(x.device.type):
        out = _call(model, x, edge_index, batch, num_graphs, edge_weight, return_embeddings)
    return to_float32(out)


def _call(model: nn.Module, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: Optional[int],
          edge_weight: Optional[Tensor], return_embeddings: bool) -> Any:
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


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block (its BatchNorm running statistics read, not moved, and dropout
    off), every module put back in the mode it had afterwards."""
    modes = [(module, module.training) for module in model.modules()]  # each its own (frozen BatchNorm stays)
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (frozen ones included: this is the model's size)."""
    return sum(p.numel() for p in model.parameters())


_GRAPH_KEYS = ("y", "teacher_logits")
_NODE_KEYS = ("x", "pos")
_EDGE_KEYS = ("edge_weight", "edge_attr")


def select_graphs(batch: Batch, keep: Tensor) -> Batch:
    """The graphs of ``batch`` where ``keep [B]`` (bool) is true, as a new ``Batch`` in their order (no
    per-graph Python loop; equal to ``Batch.from_data_list`` of the kept graphs).

    Node-level tensors (``x``, ``batch``, anything with ``N`` rows) keep the kept graphs' nodes,
    edge-level ones (``edge_index`` relabelled, ``edge_weight``, anything with ``E`` rows) the edges inside
    them in their original order, graph-level ones (``y``, ``teacher_logits``, anything with ``B`` rows)
    the kept rows. Shapes: ``x [N, F] -> [N', F]``, ``edge_index [2, E] -> [2, E']``, ``y [B] -> [B']``.
    """
    vec, edge_index = batch.batch, batch.edge_index
    num_graphs, num_nodes, num_edges = keep.numel(), vec.numel(), edge_index.size(1)
    node_keep = keep[vec]
    edge_keep = node_keep[edge_index[0]]
    new_node = torch.cumsum(node_keep.long(), 0) - 1
    new_vec = (torch.cumsum(keep.long(), 0) - 1)[vec[node_keep]]
    counts = torch.bincount(new_vec, minlength=int(keep.sum()))
    out: Dict[str, Any] = {"ptr": torch.cat([counts.new_zeros(1), counts.cumsum(0)])}
    for key, value in batch.to_dict().items():
        if key == "edge_index":
            out[key] = new_node[edge_index[:, edge_keep]]
        elif key == "batch":
            out[key] = new_vec
        elif key == "ptr":
            continue
        elif not isinstance(value, Tensor) or value.dim() == 0:
            out[key] = value
        elif key in _GRAPH_KEYS:
            out[key] = value[keep]
        elif key in _NODE_KEYS or value.size(0) == num_nodes:
            out[key] = value[node_keep]
        elif key in _EDGE_KEYS or value.size(0) == num_edges:
            out[key] = value[edge_keep]
        elif value.size(0) == num_graphs:
            out[key] = value[keep]
        else:
            out[key] = value
    return Batch(**out)
