"""Batched bookkeeping for many small graphs held as flat tensors (no per-graph Python loops)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def sample_node_counts(num_graphs: int, low: int, high: int, generator: torch.Generator) -> Tensor:
    """``[G]`` node counts drawn uniformly from ``[low, high]`` (inclusive)."""
    return torch.randint(low, high + 1, (num_graphs,), generator=generator)


def node_to_graph(num_nodes: Tensor) -> Tensor:
    """``[N]`` graph index of every node for per-graph node counts ``[G]``."""
    return torch.repeat_interleave(torch.arange(num_nodes.numel(), device=num_nodes.device), num_nodes)


def candidate_pairs(num_nodes: Tensor) -> Tuple[Tensor, Tensor]:
    """All unordered node pairs ``i < j`` inside each graph, with global node indices.

    One ``triu_indices`` per distinct graph size, broadcast over the graphs of that size.

    Args:
        num_nodes: ``[G]`` node count per graph.

    Returns:
        ``(pair_index [2, P], pair_graph [P])`` sorted by graph, ``P = Σ n_g (n_g - 1) / 2``.
    """
    offsets = torch.cat([num_nodes.new_zeros(1), num_nodes.cumsum(0)[:-1]])
    chunks, owners = [], []
    for n in torch.unique(num_nodes).tolist():
        graphs = (num_nodes == n).nonzero().view(-1)
        tri = torch.triu_indices(n, n, 1, device=num_nodes.device)  # [2, n(n-1)/2]
        chunks.append((tri.unsqueeze(1) + offsets[graphs].view(1, -1, 1)).reshape(2, -1))
        owners.append(graphs.repeat_interleave(tri.size(1)))
    if not chunks:
        return num_nodes.new_zeros(2, 0), num_nodes.new_zeros(0)
    pairs, owner = torch.cat(chunks, 1), torch.cat(owners)
    # Global indices grow with the graph index, so sorting by (i, j) also sorts by graph.
    order = torch.argsort(pairs[0] * int(num_nodes.sum()) + pairs[1])
    return pairs[:, order], owner[order]


def undirected(pairs: Tensor) -> Tensor:
    """``[2, P]`` pairs → ``[2, 2P]`` edges in both directions."""
    return torch.cat([pairs, pairs.flip(0)], dim=1)
