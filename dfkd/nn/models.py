"""Graph-classification models built from the layers in :mod:`dfkd.nn.conv`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from dfkd.config import ModelConfig
from dfkd.nn.conv import GCNConv, GINConv, NodeLinear, SAGEConv
from dfkd.nn.encodings import DEFAULT_MAX_DEGREE, DEFAULT_RW_STEPS, structural_encoding, structural_encoding_dim
from dfkd.nn.registry import register_model
from dfkd.ops import build_adjacency, scatter


@dataclass
class ModelOutput:
    """What a forward pass with ``return_embeddings=True`` gives.

    Attributes:
        logits: ``[B, C]`` predictions.
        node_embeddings: per layer ``[N, H]`` node states after each layer
            (input features excluded).
        graph_embedding: ``[B, D]`` the pooled vector fed to the head.
    """

    logits: Tensor
    node_embeddings: List[Tensor]
    graph_embedding: Tensor


def graph_index(x: Tensor, batch: Optional[Tensor], num_graphs: Optional[int]) -> Tuple[Tensor, int]:
    """``batch [N]`` (all zeros when ``None``: one graph) and the number of graphs (read from it when ``None``)."""
    if batch is None:
        batch = x.new_zeros(x.size(0), dtype=torch.long)
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 0
    return batch, num_graphs


class GraphClassifier(nn.Module):
    r"""A stack of message-passing layers, a graph readout and a linear head.

    Each layer computes ``h ← dropout?(ReLU(BN(conv(h))))`` (+ ``h`` when
    ``residual`` and widths match). The readout pools node states per graph
    (``sum``/``mean``/``max``); with ``jk="cat"`` the pooled input and every
    layer are concatenated, which equals GIN's sum of per-layer predictions
    (Xu et al., ICLR 2019, Eq. 4.2). Dropout is applied before the head.

    Args:
        config (ModelConfig): sizes and options.
        conv (type): layer class taking ``(in_channels, out_channels)``.

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, batch ``[N]``, edge_weight ``[E]`` → logits ``[B, C]``.
    """

    conv_cls: Type[nn.Module] = GINConv

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = c.in_channels
        for _ in range(c.num_layers):
            self.convs.append(self._make_conv(width, c.hidden))
            self.norms.append(nn.BatchNorm1d(c.hidden) if c.batch_norm else nn.Identity())
            width = c.hidden
        readout = c.in_channels + c.num_layers * c.hidden if c.jk == "cat" else c.hidden
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(readout, c.out_channels)

    def _make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return self.conv_cls(in_channels, out_channels)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Optional[Tensor] = None,
        edge_weight: Optional[Tensor] = None,
        num_graphs: Optional[int] = None,
        return_embeddings: bool = False,
    ):
        batch, num_graphs = graph_index(x, batch, num_graphs)
        pool = self.config.pool
        pooled = [scatter(x, batch, num_graphs, pool)] if self.config.jk == "cat" else []
        states: List[Tensor] = []
        h = x
        # Sparse or dense (by size and density), built once for all layers; graph-less models skip it.
        adj = edge_index if self.conv_cls is NodeLinear else build_adjacency(edge_index, edge_weight, batch, num_graphs)
        for conv, norm in zip(self.convs, self.norms):
            out = torch.relu(norm(conv(h, adj)))
            if self.config.residual and out.shape == h.shape:
                out = out + h
            h = out
            states.append(h)
            if self.config.jk == "cat":
                pooled.append(scatter(h, batch, num_graphs, pool))
        graph = torch.cat(pooled, dim=-1) if self.config.jk == "cat" else scatter(h, batch, num_graphs, pool)
        logits = self.head(self.dropout(graph))
        if return_embeddings:
            return ModelOutput(logits=logits, node_embeddings=states, graph_embedding=graph)
        return logits

    def extra_repr(self) -> str:
        c = self.config
        return f"arch={c.short_name}, in={c.in_channels}, out={c.out_channels}, pool={c.pool}, jk={c.jk}"


@register_model("gin")
class GIN(GraphClassifier):
    """GIN graph classifier (Xu et al., ICLR 2019)."""

    def _make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return GINConv(in_channels, out_channels, batch_norm=self.config.batch_norm)


@register_model("gcn")
class GCN(GraphClassifier):
    """GCN graph classifier (Kipf & Welling, ICLR 2017)."""

    conv_cls = GCNConv

    def _make_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return GCNConv(in_channels, out_channels, bias_after_propagation=self.config.bias_after_propagation)


@register_model("sage")
class GraphSAGE(GraphClassifier):
    """GraphSAGE graph classifier with mean aggregation (Hamilton et al., NeurIPS 2017)."""

    conv_cls = SAGEConv


@register_model("mlp")
class MLP(GraphClassifier):
    """Baseline that ignores edges: per-node MLP, then the same readout."""

    conv_cls = NodeLinear


@register_model("mlp_pe")
class MLPWithEncodings(GraphClassifier):
    r"""Structure-blind MLP student over node features plus structural encodings (GLNN / NOSMOG idea,
    at graph level).

    Every node gets ``u_i = [x_i, log(1 + d_i), onehot(min(d_i, D)), rwpe_i]`` (degree encoding and
    ``K``-step random-walk return probabilities, :func:`dfkd.nn.encodings.structural_encoding`); then
    exactly the ``mlp`` baseline runs on ``u``: ``num_layers`` per-node ``Linear → BN → ReLU`` layers
    of width ``hidden``, the readout (``jk="cat"``: pooled ``u`` and every layer, concatenated), dropout
    and a linear head. No message passing: once ``u`` is known (the encodings depend on the
    structure alone and can be precomputed per graph), inference is a per-node MLP and a pooling,
    see :meth:`forward_features`.

    ``config.in_channels`` stays the raw feature width ``F`` (what the teacher and generators see);
    the first layer takes ``F + structural_encoding_dim(K, D)`` inputs. ``K`` (``rw_steps``) and ``D``
    (``max_degree``) are constructor options with fixed defaults ``K = 8``, ``D = 8`` (18 encoding
    columns); :class:`~dfkd.config.ModelConfig` does not store them, so a checkpoint rebuilds with
    the defaults (a student built with other values fails to load with a shape error).

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, batch ``[N]``, edge_weight ``[E]`` → logits ``[B, C]``;
        the logits are differentiable in ``edge_weight`` (through the encodings).
    """

    conv_cls = NodeLinear

    def __init__(self, config: ModelConfig, rw_steps: int = DEFAULT_RW_STEPS, max_degree: int = DEFAULT_MAX_DEGREE):
        self.rw_steps, self.max_degree = rw_steps, max_degree
        self.encoding_dim = structural_encoding_dim(rw_steps, max_degree)
        super().__init__(config.replace(in_channels=config.in_channels + self.encoding_dim))
        self.config = config

    def encode(self, x: Tensor, edge_index: Tensor, batch: Tensor, edge_weight: Optional[Tensor] = None,
               num_graphs: Optional[int] = None) -> Tensor:
        """The MLP's input ``[x, structural encodings]``, shape ``[N, F + encoding_dim]``."""
        enc = structural_encoding(edge_index, batch, x.size(0), num_graphs, edge_weight,
                                  rw_steps=self.rw_steps, max_degree=self.max_degree)
        return torch.cat([x, enc.to(x.dtype)], dim=-1)

    def forward_features(self, features: Tensor, batch: Optional[Tensor] = None, num_graphs: Optional[int] = None,
                         return_embeddings: bool = False):
        """Graph-less inference on precomputed :meth:`encode` output ``[N, F + encoding_dim]``."""
        empty = torch.zeros(2, 0, dtype=torch.long, device=features.device)
        return super().forward(features, empty, batch, None, num_graphs, return_embeddings)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Optional[Tensor] = None,
        edge_weight: Optional[Tensor] = None,
        num_graphs: Optional[int] = None,
        return_embeddings: bool = False,
    ):
        batch, num_graphs = graph_index(x, batch, num_graphs)
        features = self.encode(x, edge_index, batch, edge_weight, num_graphs)
        return self.forward_features(features, batch, num_graphs, return_embeddings)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rw_steps={self.rw_steps}, max_degree={self.max_degree}"
