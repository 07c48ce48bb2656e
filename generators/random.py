"""Random graphs: the floor every data-free method must beat (GFKD's "Random" baseline)."""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F

from dfkd.config import Config
from dfkd.generators.base import GraphGenerator
from dfkd.generators.registry import register_generator
from dfkd.generators.structure import candidate_pairs, node_to_graph, sample_node_counts, undirected
from dfkd.generators.synthetic import SyntheticGraphSet, degree_features


@dataclasses.dataclass
class RandomGraphConfig(Config):
    """Erdős–Rényi structure with the given mean degree (``None``: the teacher's, else 2) and
    uniformly random one-hot (or Gaussian, for continuous encodings) node features."""

    mean_degree: Optional[float] = None
    min_nodes: Optional[int] = None
    max_nodes: Optional[int] = None


@register_generator("random")
class RandomGraphGenerator(GraphGenerator):
    """Erdős–Rényi graphs with random features; targets are the teacher's own predictions (its classes,
    or for a regression teacher its ``[G, T]`` values)."""

    config_cls = RandomGraphConfig

    @torch.no_grad()
    def generate(self, num_graphs: int, seed: int = 0, show_progress: bool = True) -> SyntheticGraphSet:
        if num_graphs < 1:
            raise ValueError(f"num_graphs must be >= 1, got {num_graphs}")
        gen = torch.Generator().manual_seed(seed)
        spec = self.feature_spec
        self.log_sources(self.structure_sources(self.config.mean_degree))
        counts = sample_node_counts(num_graphs, *self.node_range(), gen)
        node_graph = node_to_graph(counts)
        pairs, pair_graph = candidate_pairs(counts)
        degree = self.mean_degree(self.config.mean_degree)
        prob = (degree / (counts.float() - 1).clamp(min=1)).clamp(max=1.0)[pair_graph]
        edge_index = undirected(pairs[:, torch.rand(prob.shape, generator=gen) < prob])
        n = node_graph.numel()
        if spec.encoding == "degree":
            x = degree_features(edge_index, n, spec)
        elif spec.encoding == "one_hot":
            x = F.one_hot(torch.randint(0, spec.dim, (n,), generator=gen), spec.dim).float()
        else:
            x = torch.randn(n, spec.dim, generator=gen)
        graphs = SyntheticGraphSet.from_edges(x, edge_index, node_graph, num_graphs,
                                              torch.zeros(num_graphs, dtype=torch.long), spec,
                                              meta={"generator": "random", "config": self.config.to_dict(), "seed": seed})
        self.label_set(graphs)
        graphs.target = graphs.teacher_logits.clone() if self.regression else graphs.teacher_logits.argmax(-1)
        return graphs
