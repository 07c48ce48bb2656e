"""Oracle generators for the gap analysis: the default's graphs with one factor taken from the real training graphs.

None of this is data-free. Each oracle is dfkd's default generator (``prior``, teacher only: its degree law and
node-type prior read off the teacher, disagreement mining, the same student schedule) with one part of every
synthetic graph replaced by what the teacher's training graphs (its fitting and validation graphs, as for the
``type-shares`` hint) hold, so that the gap to real-data KD can be split into the parts a teacher-only
generator would have to get right:

* ``structures``: ``drawn`` (the default's degree law and node counts) or ``real`` (a random training graph's
  edges and node count per synthetic graph);
* ``node_types``: ``prior`` (the default's, from the teacher), ``shares`` (i.i.d. from the training nodes' type
  shares), ``degree`` (each node's type from the training nodes' shares *among nodes of its degree*:
  :math:`P(t \\mid d)`, so low-degree atoms are oxygen or halogens as in molecules), ``shuffled`` (with real
  structures: the real graph's own types, permuted within the graph: its composition without the link to
  degree and neighbours) or ``real`` (the real graph's types: the graph itself).

``distill_benchmark.py``'s ``oracle:*`` methods run them; ``gap_analysis.py`` tabulates them.
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.utils import degree

from dfkd.data.datasets import one_hot_frequencies
from dfkd.generators.prior import PriorConfig, PriorGraphGenerator
from dfkd.generators.registry import register_generator
from dfkd.generators.synthetic import SyntheticGraphSet

STRUCTURES = ("drawn", "real")
NODE_TYPES = ("prior", "shares", "degree", "shuffled", "real")


@dataclasses.dataclass
class OracleConfig(PriorConfig):
    """:class:`PriorConfig` plus which factors come from the reference graphs (module docstring)."""

    structures: str = "drawn"
    node_types: str = "prior"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.structures not in STRUCTURES:
            raise ValueError(f"structures must be one of {STRUCTURES}, got {self.structures!r}")
        if self.node_types not in NODE_TYPES:
            raise ValueError(f"node_types must be one of {NODE_TYPES}, got {self.node_types!r}")
        if self.node_types in ("shuffled", "real") and self.structures != "real":
            raise ValueError(f"node_types={self.node_types!r} keeps a real graph's types: needs structures='real'")


def type_given_degree(graphs: Sequence) -> Tensor:
    """``[D + 1, F]`` share of each one-hot node type among the nodes of degree ``0..D`` of ``graphs`` (``D``: the
    largest degree); a degree no node has gets the overall shares."""
    batch = Batch.from_data_list(list(graphs))
    x = batch.x.float()
    deg = degree(batch.edge_index[0], batch.num_nodes).long()
    counts = torch.zeros(int(deg.max()) + 1, x.size(1)).index_add_(0, deg, x)
    counts[counts.sum(1) == 0] = x.mean(0)
    return counts / counts.sum(1, keepdim=True)


@register_generator("oracle-prior")
class OraclePriorGenerator(PriorGraphGenerator):
    """The default generator with the factors :class:`OracleConfig` names taken from :attr:`reference`."""

    config_cls = OracleConfig
    reference: List = []  # the teacher's training graphs; the benchmark sets it before each run

    def build(self, seed: int = 0) -> "OraclePriorGenerator":
        super().build(seed)
        if not self.reference:
            raise ValueError("OraclePriorGenerator.reference is empty: set it to the teacher's training graphs")
        self._shares = torch.tensor(one_hot_frequencies(self.reference))
        self._by_degree = type_given_degree(self.reference)
        real = Batch.from_data_list(list(self.reference))  # flat once; each draw slices it (SyntheticGraphSet.batch)
        self._real = SyntheticGraphSet.from_edges(real.x.float(), real.edge_index, real.batch, real.num_graphs,
                                                  torch.zeros(real.num_graphs, dtype=torch.long), self.feature_spec)
        return self

    def _draw(self, num_graphs: int, generator: torch.Generator) -> Batch:
        cfg = self.config
        if cfg.structures == "drawn":
            batch = super()._draw(num_graphs, generator).cpu()
        else:
            real = self._real.batch(torch.randint(len(self._real), (num_graphs,), generator=generator).tolist())
            batch = Batch(x=real.x, edge_index=real.edge_index, batch=real.batch, ptr=real.ptr)
        types = self._oracle_types(batch, num_graphs, generator)
        if types is not None:
            batch.x = F.one_hot(types, self.feature_spec.dim).float()
        return batch.to(self.device)

    def _oracle_types(self, batch: Batch, num_graphs: int, generator: torch.Generator):
        """``[N]`` node types the config asks for, or ``None`` to keep ``batch.x`` (drawn from the prior, or real)."""
        mode, n = self.config.node_types, batch.num_nodes
        if mode == "prior":
            real = self.config.structures == "real"  # real structures carry real types: redraw them from the prior
            return self._node_types(batch.batch, num_graphs, batch.edge_index, generator) if real else None
        if mode == "shares":
            return torch.multinomial(self._shares, n, replacement=True, generator=generator)
        if mode == "degree":
            deg = degree(batch.edge_index[0], n).long().clamp(max=self._by_degree.size(0) - 1)
            return torch.multinomial(self._by_degree[deg], 1, generator=generator).view(-1)
        if mode == "shuffled":  # a random order within each graph: sort by graph index plus a uniform in [0, 1)
            key = batch.batch.double() + torch.rand(n, generator=generator, dtype=torch.float64)
            return batch.x.argmax(1)[key.argsort()]
        return None  # real
