r"""Structural node encodings computed from ``edge_index`` alone, batched over many graphs.

They turn structure into per-node features, so that a structure-blind MLP student (GLNN /
NOSMOG idea, here at graph level) can see it. Everything is batched: there is no Python loop
over graphs (only over random-walk steps, and over a few chunks of graphs when one dense
block would be too big).

Conventions follow :mod:`dfkd.nn.conv`: ``edge_index[0]`` holds the source ``j``,
``edge_index[1]`` the target ``i``; an undirected graph stores both directions. Soft
``edge_weight`` (``[E]``, differentiable) is accepted everywhere; all weights 1 gives exactly
the unweighted result and weight 0 equals a missing edge.

- :func:`degree_encoding`: ``[log(1 + d_i), onehot_{0..D}(min(d_i, D))]``.
- :func:`random_walk_pe`: RWPE, return probabilities ``diag((D^{-1} A)^k)``, ``k = 1..K``
  (Dwivedi et al., "Graph Neural Networks with Learnable Structural and Positional
  Representations", ICLR 2022).
- :func:`structural_encoding`: both, concatenated (what the ``mlp_pe`` student uses).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from dfkd.ops import scatter

DEFAULT_RW_STEPS = 8
DEFAULT_MAX_DEGREE = 8
# Largest dense block (graphs × n_max × n_max entries) built at once: 2^24 floats = 64 MiB.
DEFAULT_MAX_BLOCK = 1 << 24


def _weights(edge_index: Tensor, edge_weight: Optional[Tensor]) -> Tensor:
    if edge_weight is not None:
        return edge_weight.reshape(-1)
    return torch.ones(edge_index.size(1), device=edge_index.device)


def degree_encoding(edge_index: Tensor, num_nodes: int, edge_weight: Optional[Tensor] = None,
                    max_degree: int = DEFAULT_MAX_DEGREE) -> Tensor:
    r"""Degree features ``[log(1 + d_i), onehot(min(d_i, D))]`` per node.

    .. math::
        d_i = \sum_{(j \to i) \in E} w_{ji}, \qquad
        \mathrm{enc}_i = \big[\log(1 + d_i),\; e_{\min(d_i, D)}\big] \in \mathbb{R}^{1 + (D + 1)}

    For integer degrees :math:`e_d` is the one-hot vector of ``d`` (columns ``0..D``, degrees above
    ``D`` clipped to ``D``). A fractional (soft) degree is split linearly between its two neighbouring
    columns (``d = 1.25`` → 0.75 in column 1, 0.25 in column 2), so the encoding stays
    differentiable in ``edge_weight``. Isolated nodes give ``[0, e_0]``.

    Args:
        edge_index (LongTensor): ``[2, E]``.
        num_nodes (int): ``N``.
        edge_weight (Tensor, optional): ``[E]``.
        max_degree (int): ``D``, the last one-hot column. (default: 8)

    Shapes:
        output ``[N, max_degree + 2]``.
    """
    if max_degree < 0:
        raise ValueError(f"max_degree must be >= 0, got {max_degree}")
    w = _weights(edge_index, edge_weight)
    deg = scatter(w, edge_index[1], num_nodes, "sum")
    clipped = deg.clamp(min=0.0, max=float(max_degree))
    low = clipped.detach().floor().long().clamp(max=max_degree)
    frac = clipped - low.to(clipped.dtype)
    high = (low + 1).clamp(max=max_degree)
    onehot = deg.new_zeros(num_nodes, max_degree + 1)
    onehot = onehot.scatter_add(1, low.view(-1, 1), (1.0 - frac).view(-1, 1))
    onehot = onehot.scatter_add(1, high.view(-1, 1), frac.view(-1, 1))
    return torch.cat([torch.log1p(deg.clamp(min=0.0)).view(-1, 1), onehot], dim=-1)


def _local_index(batch: Tensor, num_graphs: int) -> Tensor:
    """Position of every node inside its own graph (works for unsorted ``batch`` too), shape ``[N]``."""
    n = batch.numel()
    order = torch.sort(batch, stable=True).indices
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.cumsum(counts, 0) - counts
    local = torch.empty_like(batch)
    local[order] = torch.arange(n, device=batch.device) - ptr[batch[order]]
    return local


def _rwpe_block(src: Tensor, dst: Tensor, w: Tensor, edge_graph: Tensor, local: Tensor, nodes: Optional[Tensor],
                node_graph: Tensor, num_graphs: int, n_max: int, steps: int) -> Tensor:
    """RWPE of the nodes ``nodes`` (``None``: all) of graphs ``0..num_graphs-1`` (ids relative to the
    block) through one ``[B, n_max, n_max]`` dense block; rows of the result follow ``nodes``.
    ``local`` is indexed by the original node ids."""
    adj = w.new_zeros(num_graphs, n_max, n_max)
    adj = adj.index_put((edge_graph, local[src], local[dst]), w, accumulate=True)  # A[b, j, i] = w_ji
    deg = adj.sum(-1, keepdim=True)  # weighted out-degree d_j
    inv = torch.where(deg > 0, 1.0 / deg.clamp(min=torch.finfo(deg.dtype).tiny), torch.zeros_like(deg))
    walk = adj * inv  # D^-1 A; rows of isolated (and padding) nodes stay 0, so no NaN
    probs: List[Tensor] = []
    power = walk
    for k in range(steps):
        if k > 0:
            power = power @ walk
        probs.append(power.diagonal(dim1=-2, dim2=-1))
    node_local = local if nodes is None else local[nodes]
    return torch.stack(probs, dim=-1)[node_graph, node_local]  # [B, n_max, K] -> [len(nodes), K]


def random_walk_pe(edge_index: Tensor, batch: Optional[Tensor] = None, num_nodes: Optional[int] = None,
                   num_graphs: Optional[int] = None, edge_weight: Optional[Tensor] = None,
                   steps: int = DEFAULT_RW_STEPS, max_block: int = DEFAULT_MAX_BLOCK) -> Tensor:
    r"""Random-walk positional encoding (RWPE): return probabilities of a ``k``-step random walk.

    .. math::
        P = D^{-1} A, \qquad \mathrm{rwpe}_i = \big[(P)_{ii}, (P^2)_{ii}, \dots, (P^K)_{ii}\big],
        \qquad A_{ji} = w_{ji},\; D_{jj} = \sum_i A_{ji}

    (Dwivedi et al., ICLR 2022). A walker at ``j`` moves along an out-edge ``j → i`` with
    probability ``w_ji / d_j``. A node with no out-edge (an isolated node) gets all zeros, never
    NaN. The walk never leaves a graph, so each graph of the batch is handled on its own dense
    ``[n_g, n_g]`` block: the batch becomes ``[B, n_max, n_max]`` blocks (padded to the largest graph),
    never one ``N × N`` matrix; when ``B · n_max²`` exceeds ``max_block`` the graphs are processed in
    consecutive chunks. Cost: ``O(B · n_max³ · K)`` time, which is negligible for molecule-sized
    graphs (MUTAG: n ≤ 28). Edges must not join two graphs.

    Args:
        edge_index (LongTensor): ``[2, E]``.
        batch (LongTensor, optional): graph of every node ``[N]`` (default: one graph).
        num_nodes (int, optional): ``N`` (default: ``batch.numel()``, or ``edge_index.max() + 1``).
        num_graphs (int, optional): ``B`` (default: ``batch.max() + 1``).
        edge_weight (Tensor, optional): ``[E]``; the result is differentiable in it.
        steps (int): ``K``. (default: 8)
        max_block (int): largest ``graphs × n_max²`` dense block built at once. (default: 2^24)

    Shapes:
        output ``[N, K]``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if batch is None:
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
        batch = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    num_nodes = batch.numel() if num_nodes is None else num_nodes
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 0
    w = _weights(edge_index, edge_weight)
    if num_nodes == 0:
        return w.new_zeros(0, steps)
    local = _local_index(batch, num_graphs)
    counts = torch.bincount(batch, minlength=num_graphs)
    src, dst = edge_index[0], edge_index[1]
    n_max = int(counts.max())
    if num_graphs * n_max * n_max <= max_block:
        return _rwpe_block(src, dst, w, batch[src], local, None, batch, num_graphs, n_max, steps)
    # Too big for one block: consecutive chunks of graphs, each padded to its own largest graph.
    out = w.new_zeros(num_nodes, steps)
    sizes = counts.tolist()
    edge_graph = batch[src]
    start = 0
    while start < num_graphs:
        stop, chunk_max = start + 1, sizes[start]
        while stop < num_graphs:
            new_max = max(chunk_max, sizes[stop])
            if (stop + 1 - start) * new_max * new_max > max_block:
                break
            chunk_max, stop = new_max, stop + 1
        nodes = ((batch >= start) & (batch < stop)).nonzero().view(-1)
        edges = ((edge_graph >= start) & (edge_graph < stop)).nonzero().view(-1)
        if nodes.numel() > 0:
            block = _rwpe_block(src[edges], dst[edges], w[edges], edge_graph[edges] - start, local, nodes,
                                batch[nodes] - start, stop - start, max(chunk_max, 1), steps)
            out = out.index_copy(0, nodes, block)
        start = stop
    return out


def structural_encoding_dim(rw_steps: int = DEFAULT_RW_STEPS, max_degree: int = DEFAULT_MAX_DEGREE) -> int:
    """Width of :func:`structural_encoding`: ``1 + (max_degree + 1) + rw_steps``."""
    return max_degree + 2 + rw_steps


def structural_encoding(edge_index: Tensor, batch: Optional[Tensor] = None, num_nodes: Optional[int] = None,
                        num_graphs: Optional[int] = None, edge_weight: Optional[Tensor] = None,
                        rw_steps: int = DEFAULT_RW_STEPS, max_degree: int = DEFAULT_MAX_DEGREE) -> Tensor:
    r"""Degree encoding and RWPE side by side:
    ``[log(1 + d_i), onehot(min(d_i, D)), rwpe_i]`` (see :func:`degree_encoding`, :func:`random_walk_pe`).

    Depends on the structure only (node order included: it is permutation-equivariant), so it can be
    computed once per graph, offline, and stored as node features for graph-less inference.

    Shapes:
        edge_index ``[2, E]``, batch ``[N]``, edge_weight ``[E]`` → ``[N, structural_encoding_dim(K, D)]``.
    """
    if num_nodes is None:
        if batch is not None:
            num_nodes = batch.numel()
        else:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() > 0 else 0
    deg = degree_encoding(edge_index, num_nodes, edge_weight, max_degree=max_degree)
    rw = random_walk_pe(edge_index, batch, num_nodes, num_graphs, edge_weight, steps=rw_steps)
    return torch.cat([deg, rw.to(deg.dtype)], dim=-1)
