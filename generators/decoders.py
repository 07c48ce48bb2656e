r"""Shared graph-decoding head of the generator-network families (adversarial and conditional).

A :class:`GraphDecoder` maps a latent code to the logits of a graph of at most ``max_nodes``
nodes (MolGAN-style, De Cao & Kipf 2018, as DFAD-GNN's generator):

.. math::
    h = \mathrm{MLP}(z), \qquad F = W_x h \in \mathbb R^{N \times F}, \qquad
    \phi = W_a h \in \mathbb R^{N(N-1)/2}

with one logit per unordered node pair (so the adjacency is symmetric and has no self-loops by
construction). :func:`decode_graphs` cuts each graph to its own node count and draws discrete
graphs from the logits with a differentiable path: edges by the binary-concrete relaxation, hard
with a straight-through gradient by default; node types by Gumbel-softmax (hard, straight-through);
degree-encoded features as a piecewise-linear one-hot of the (straight-through) degree.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from dfkd.config import FeatureSpec
from dfkd.generators.estimators import binary_concrete
from dfkd.generators.structure import candidate_pairs, node_to_graph, undirected

EDGE_RELAXATIONS = ("straight_through", "concrete")


class GraphDecoder(nn.Module):
    """``z [G, D] → (node_logits [G, N, F], pair_logits [G, N(N-1)/2])``.

    Args:
        in_dim: latent width ``D`` (noise, plus the label code for conditional generators).
        max_nodes: ``N``, the largest graph it can emit.
        feature_dim: ``F``, node-feature width.
        hidden: widths of the MLP trunk (Linear → LayerNorm → LeakyReLU each; LayerNorm, not BatchNorm,
            so a graph does not depend on the others in its batch, e.g. a batch of one class).
        edge_bias: initial pair logit (sets the initial edge density).
        type_logits: ``[F]`` initial node-type logits (e.g. the log of a node-type prior).
    """

    def __init__(self, in_dim: int, max_nodes: int, feature_dim: int, hidden: Sequence[int] = (128, 256, 512),
                 edge_bias: float = 0.0, type_logits: Optional[Tensor] = None):
        super().__init__()
        self.max_nodes, self.feature_dim = max_nodes, feature_dim
        layers, width = [], in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.LeakyReLU(0.2)]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.node_head = nn.Linear(width, max_nodes * feature_dim)
        self.edge_head = nn.Linear(width, max_nodes * (max_nodes - 1) // 2)
        # Small output weights: the first graphs follow the biases (prior density and node types),
        # which the teacher has seen, rather than 50%-dense noise it never saw.
        for head in (self.node_head, self.edge_head):
            nn.init.normal_(head.weight, std=0.01)
        nn.init.constant_(self.edge_head.bias, edge_bias)
        nn.init.zeros_(self.node_head.bias)
        if type_logits is not None:
            with torch.no_grad():
                self.node_head.bias.copy_(type_logits.to(self.node_head.bias).repeat(max_nodes))

    def forward(self, z: Tensor):
        h = self.trunk(z)
        nodes = self.node_head(h).view(-1, self.max_nodes, self.feature_dim)
        return nodes, self.edge_head(h)


@dataclasses.dataclass
class DecodedGraphs:
    """A batch of generated graphs over all candidate pairs.

    Attributes:
        x: ``[N, F]`` node features (hard one-hot with straight-through gradients for categorical specs).
        pairs: ``[2, P]`` candidate node pairs ``i < j`` (global node indices).
        weight: ``[P]`` edge weights, ``{0, 1}`` in the forward pass for ``straight_through``.
        node_graph: ``[N]`` graph of every node.
        num_graphs: ``G``.
        labels: ``[G]`` preset class of every graph (conditional generators), else ``None``.
    """

    x: Tensor
    pairs: Tensor
    weight: Tensor
    node_graph: Tensor
    num_graphs: int
    labels: Optional[Tensor] = None

    def weighted_batch(self) -> Batch:
        """Every candidate pair as an edge with its (differentiable) weight: for generator updates."""
        return Batch(x=self.x, edge_index=undirected(self.pairs), edge_weight=torch.cat([self.weight, self.weight]),
                     batch=self.node_graph, ptr=_ptr(self.node_graph, self.num_graphs), y=self.labels)

    def hard_batch(self, spec: FeatureSpec) -> Batch:
        """The discrete graphs (edges where ``weight > 0.5``), detached: for student updates."""
        edge_index = undirected(self.pairs[:, self.weight.detach() > 0.5])
        x = self.x.detach()
        if spec.encoding == "degree":
            x = soft_degree_features(node_degree(edge_index[0], None, x.size(0)), spec.dim)
        return Batch(x=x, edge_index=edge_index, batch=self.node_graph, ptr=_ptr(self.node_graph, self.num_graphs),
                     y=self.labels)


def _ptr(node_graph: Tensor, num_graphs: int) -> Tensor:
    counts = torch.bincount(node_graph, minlength=num_graphs)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def node_degree(index: Tensor, weight: Optional[Tensor], num_nodes: int) -> Tensor:
    """``[N]`` (weighted) count of entries of ``index`` per node."""
    ones = torch.ones(index.numel(), device=index.device) if weight is None else weight
    return torch.zeros(num_nodes, device=index.device, dtype=ones.dtype).index_add_(0, index, ones)


def soft_degree_features(degree: Tensor, dim: int) -> Tensor:
    """``[N] → [N, dim]``: one-hot of the degree (clipped at ``dim - 1``), linear between neighbouring
    columns for fractional degrees, so it is exact on integer degrees yet differentiable in them."""
    d = degree.clamp(0, dim - 1)
    low = d.detach().floor()
    frac = (d - low).unsqueeze(-1)
    low = low.long()
    high = (low + 1).clamp(max=dim - 1)
    return F.one_hot(low, dim).to(d.dtype) * (1 - frac) + F.one_hot(high, dim).to(d.dtype) * frac


def _pair_position(i: Tensor, j: Tensor, n: int) -> Tensor:
    """Row-major index of pair ``(i, j)``, ``i < j``, in ``torch.triu_indices(n, n, 1)``."""
    return i * (2 * n - i - 1) // 2 + (j - i - 1)


def decode_graphs(node_logits: Tensor, pair_logits: Tensor, counts: Tensor, spec: FeatureSpec,
                  relaxation: str = "straight_through", temperature: float = 1.0,
                  generator: Optional[torch.Generator] = None) -> DecodedGraphs:
    """Cut graph ``g`` to its first ``counts[g]`` nodes and sample it.

    Args:
        node_logits: ``[G, N_max, F]``.
        pair_logits: ``[G, N_max(N_max-1)/2]``.
        counts: ``[G]`` node count per graph (``<= N_max``).
        spec: node-feature encoding (``one_hot``: hard Gumbel-softmax; ``degree``: from the structure;
            ``continuous``: the logits themselves).
        relaxation: ``straight_through`` (hard edges, relaxed gradient) or ``concrete`` (soft edges).
        temperature: of the binary-concrete and Gumbel-softmax relaxations.
    """
    if relaxation not in EDGE_RELAXATIONS:
        raise ValueError(f"unknown edge relaxation {relaxation!r}: choose one of {EDGE_RELAXATIONS}")
    num_graphs, max_nodes, dim = node_logits.shape
    device = node_logits.device
    counts = counts.to(device)
    node_graph = node_to_graph(counts)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    local = torch.arange(node_graph.numel(), device=device) - ptr[node_graph]
    pairs, pair_graph = candidate_pairs(counts)
    i, j = pairs - ptr[pair_graph]
    logits = pair_logits[pair_graph, _pair_position(i, j, max_nodes)]
    weight = binary_concrete(logits, temperature, hard=relaxation == "straight_through", generator=generator)
    if spec.encoding == "degree":
        degree = node_degree(pairs[0], weight, node_graph.numel()) + node_degree(pairs[1], weight, node_graph.numel())
        x = soft_degree_features(degree, dim)
    else:
        x = node_logits[node_graph, local]
        if spec.encoding == "one_hot":
            u = torch.rand(x.shape, generator=generator).to(device).clamp(1e-10, 1 - 1e-10)
            soft = torch.softmax((x - torch.log(-torch.log(u))) / temperature, -1)
            x = F.one_hot(soft.argmax(-1), dim).to(soft.dtype) - soft.detach() + soft
    return DecodedGraphs(x=x, pairs=pairs, weight=weight, node_graph=node_graph, num_graphs=num_graphs)
