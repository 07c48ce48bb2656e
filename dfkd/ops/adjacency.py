r"""Weighted neighbourhood aggregation over a batch of graphs, sparse or dense, chosen by size and density.

Every dfkd layer needs the same two operations of the weighted adjacency :math:`A` (``A[j, i] = w_ji`` for
an edge ``j → i``):

.. math::
    \mathrm{propagate}(X)_i = \sum_j w_{ji}\, x_j, \qquad \mathrm{in\_degree}_i = \sum_j w_{ji}

:class:`SparseAdjacency` does them with scatter kernels over the ``[2, E]`` edge list (cost
:math:`\propto E F`). :class:`DenseBlockAdjacency` holds one ``[n_max, n_max]`` block per graph and
does them with a batched matmul (cost :math:`\propto G\, n_{max}^2 F`), which is far faster for the
dense soft graphs generators make: every candidate pair is an edge when a generator takes gradients
through its relaxed structure (``benchmarks/results/archive/kernels.md``: 5-30× from density 0.5 at 10
nodes, 0.1 at 50, 0.05 at 200). :func:`build_adjacency` picks one per forward pass: a model sees
the graph boundaries (``batch``) that a single layer does not, so the model builds the adjacency once
and hands it to each layer in place of ``edge_index``, as PyG layers accept a ``SparseTensor``.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.utils import to_dense_adj, to_dense_batch

from dfkd.ops.scatter import scatter
from dfkd.utils import scoped_setting

PROPAGATION_MODES = ("auto", "sparse", "dense")
# Largest dense block tensor (G * n_max^2 entries) the automatic choice builds: 2^26 floats = 256 MiB.
MAX_DENSE_ENTRIES = 1 << 26
_mode = "auto"


class SparseAdjacency:
    """Edge-list adjacency: ``edge_index [2, E]`` (row 0 sources, row 1 targets), ``edge_weight [E]`` or ``None``."""

    def __init__(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int):
        self.edge_index, self.edge_weight, self.num_nodes = edge_index, edge_weight, num_nodes
        self._degree: Optional[Tensor] = None  # shared by the layers of one forward pass

    def propagate(self, x: Tensor) -> Tensor:
        """``[N, F] → [N, F]``: weighted sum of the in-neighbours' rows."""
        msg = x.index_select(0, self.edge_index[0])
        if self.edge_weight is not None:
            msg = msg * self.edge_weight.view(-1, 1)
        return scatter(msg, self.edge_index[1], self.num_nodes, "sum")

    def in_degree(self, like: Tensor) -> Tensor:
        """``[N]`` weighted in-degree (dtype and device of ``like``)."""
        if self._degree is None:
            w = self.edge_weight if self.edge_weight is not None else like.new_ones(self.edge_index.size(1))
            self._degree = scatter(w, self.edge_index[1], self.num_nodes, "sum")
        return self._degree.to(like.dtype)


class DenseBlockAdjacency:
    """One dense ``[n_max, n_max]`` block per graph: ``blocks[g, j, i] = w_ji`` (local node indices).

    Args:
        edge_index: ``[2, E]`` edges inside the graphs of a PyG batch (never across graphs).
        edge_weight: ``[E]`` or ``None`` (all 1); duplicate edges add up, as in the sparse form.
        batch: ``[N]`` graph of every node, sorted (PyG ``Batch`` order).
        num_graphs: ``G``.
        counts: ``[G]`` nodes per graph (``bincount(batch)``, computed when not given).
    """

    def __init__(self, edge_index: Tensor, edge_weight: Optional[Tensor], batch: Tensor, num_graphs: int,
                 counts: Optional[Tensor] = None):
        counts = torch.bincount(batch, minlength=num_graphs) if counts is None else counts  # [G] nodes per graph
        self.num_nodes, self.batch, self.num_graphs = batch.numel(), batch, num_graphs
        self.max_nodes = int(counts.max())
        self.blocks = to_dense_adj(edge_index, batch, edge_weight, max_num_nodes=self.max_nodes,
                                   batch_size=num_graphs)  # [G, n_max, n_max]
        self.mask = torch.arange(self.max_nodes, device=batch.device) < counts.unsqueeze(1)  # [G, n_max] real slots
        self._degree: Optional[Tensor] = None  # shared by the layers of one forward pass

    def propagate(self, x: Tensor) -> Tensor:
        """``[N, F] → [N, F]`` through ``blocksᵀ @ X`` per graph."""
        dense, _ = to_dense_batch(x, self.batch, max_num_nodes=self.max_nodes, batch_size=self.num_graphs)
        return torch.bmm(self.blocks.transpose(1, 2).to(x.dtype), dense)[self.mask]

    def in_degree(self, like: Tensor) -> Tensor:
        """``[N]`` weighted in-degree (column sums of every block)."""
        if self._degree is None:
            self._degree = self.blocks.sum(1)[self.mask]
        return self._degree.to(like.dtype)


Adjacency = Union[SparseAdjacency, DenseBlockAdjacency]


def prefers_dense(num_edges: int, num_graphs: int, max_nodes: int) -> bool:
    r"""The measured crossover (``benchmarks/results/archive/kernels.md``): dense once the padded density
    :math:`E / (G\, n_{max}(n_{max}-1))` reaches :math:`\min(0.5, 5 / n_{max})` (a mean degree of about 5 on
    all but the smallest graphs), and the blocks fit in :data:`MAX_DENSE_ENTRIES`."""
    if num_graphs < 1 or max_nodes < 2 or num_graphs * max_nodes * max_nodes > MAX_DENSE_ENTRIES:
        return False
    density = num_edges / (num_graphs * max_nodes * (max_nodes - 1))
    return density >= min(0.5, 5.0 / max_nodes)


def build_adjacency(edge_index: Tensor, edge_weight: Optional[Tensor], batch: Tensor, num_graphs: int,
                    mode: Optional[str] = None) -> Adjacency:
    """The adjacency a model's layers share in one forward pass.

    Args:
        edge_index: ``[2, E]``; edge_weight: ``[E]`` or ``None``; batch: ``[N]`` sorted graph index.
        num_graphs: ``G``.
        mode: ``auto`` (:func:`prefers_dense`), ``sparse`` or ``dense``; ``None``: the global setting
            (:func:`set_propagation`).
    """
    mode = _checked_mode(mode or _mode)
    num_nodes = batch.numel()
    if mode == "sparse" or num_nodes == 0 or edge_index.size(1) == 0:
        return SparseAdjacency(edge_index, edge_weight, num_nodes)
    counts = torch.bincount(batch, minlength=num_graphs)
    dense = mode == "dense" or prefers_dense(edge_index.size(1), num_graphs, int(counts.max()))
    # Dense blocks need PyG's sorted batch vector; a hand-made unsorted one stays on the sparse path.
    if dense and (mode == "dense" or bool((batch[1:] >= batch[:-1]).all())):
        return DenseBlockAdjacency(edge_index, edge_weight, batch, num_graphs, counts)
    return SparseAdjacency(edge_index, edge_weight, num_nodes)


def as_adjacency(edge_index: Union[Tensor, Adjacency], edge_weight: Optional[Tensor], num_nodes: int) -> Adjacency:
    """What a layer aggregates over: a prepared adjacency as is, an edge list as :class:`SparseAdjacency`."""
    if isinstance(edge_index, (SparseAdjacency, DenseBlockAdjacency)):
        if edge_weight is not None:
            raise ValueError("edge weights belong in the prepared adjacency, not beside it")
        return edge_index
    return SparseAdjacency(edge_index, edge_weight, num_nodes)


def get_propagation() -> str:
    """The global propagation mode (``auto`` unless set)."""
    return _mode


def set_propagation(mode: Optional[str]) -> None:
    """Choose how dfkd models aggregate: ``auto`` (by size and density), ``sparse`` or ``dense``."""
    global _mode
    _mode = _checked_mode(mode or "auto")


def _checked_mode(mode: str) -> str:
    if mode not in PROPAGATION_MODES:
        raise ValueError(f"unknown propagation mode {mode!r}: choose one of {PROPAGATION_MODES}")
    return mode


use_propagation = scoped_setting(get_propagation, set_propagation, "propagation mode")
