"""``SyntheticGraphSet``: the graphs a generator produced, their targets and the teacher's outputs.

Stored as flat tensors (node and edge offsets per graph) so it saves and loads
with ``torch.load(weights_only=True)`` and batches without Python loops. When
the generator learnt a structure distribution per graph (GFKD's Bernoulli
logits), it is kept too, so fresh structures of every graph can be drawn later
(:meth:`SyntheticGraphSet.resample`).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from dfkd.checkpoint import CheckpointError, atomic_save, safe_torch_load
from dfkd.config import FeatureSpec

FORMAT = "dfkd.synthetic"
FORMAT_VERSION = 1


def _ptr(counts: Tensor) -> Tensor:
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _ranges(starts: Tensor, counts: Tensor) -> Tensor:
    """Concatenation of ``arange(s, s + c)`` for every ``(s, c)``, without a Python loop."""
    offsets = _ptr(counts)[:-1]
    return torch.arange(int(counts.sum()), device=counts.device) - torch.repeat_interleave(offsets - starts, counts)


def degree_features(edge_index: Tensor, num_nodes: int, spec: FeatureSpec) -> Tensor:
    """One-hot node degree clipped at ``spec.max_degree``: ``[N, spec.dim]``."""
    deg = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    deg.index_add_(0, edge_index[1], torch.ones_like(edge_index[1]))
    return torch.nn.functional.one_hot(deg.clamp(max=spec.dim - 1), spec.dim).float()


class SyntheticGraphSet:
    """A fixed set of synthetic graphs.

    Args:
        x: node features of all graphs, ``[N, F]``.
        edge_index: directed edges with global node indices, ``[2, E]`` (both directions of each edge).
        node_ptr: ``[G + 1]`` node offsets; graph ``g`` owns nodes ``node_ptr[g]:node_ptr[g+1]``.
        edge_ptr: ``[G + 1]`` edge offsets into ``edge_index`` (edges sorted by graph).
        target: ``[G]`` the class each graph was generated for (or ``[G, T]`` regression targets).
        teacher_logits: ``[G, C]`` teacher outputs on these graphs, if computed.
        feature_spec: the node-feature encoding.
        distribution: optional learnt structure for :meth:`resample`: ``structure_logits [P]`` and
            ``pair_index [2, P]`` (global node indices, ``i < j``).
        meta: plain-type facts (generator name, config, timings).
    """

    def __init__(self, x: Tensor, edge_index: Tensor, node_ptr: Tensor, edge_ptr: Tensor, target: Tensor,
                 feature_spec: FeatureSpec, teacher_logits: Optional[Tensor] = None,
                 distribution: Optional[Dict[str, Tensor]] = None, meta: Optional[Dict[str, Any]] = None):
        self.x, self.edge_index, self.node_ptr, self.edge_ptr = x, edge_index, node_ptr, edge_ptr
        self.target, self.teacher_logits = target, teacher_logits
        self.feature_spec = feature_spec
        self.distribution = distribution
        self.meta = dict(meta or {})

    # construction ---------------------------------------------------------------------------
    @classmethod
    def from_edges(cls, x: Tensor, edge_index: Tensor, node_graph: Tensor, num_graphs: int, target: Tensor,
                   feature_spec: FeatureSpec, **kwargs: Any) -> "SyntheticGraphSet":
        """Build from unsorted edges; ``node_graph [N]`` must be sorted (graph of each node)."""
        order = torch.argsort(node_graph[edge_index[0]] * (x.size(0) + 1) + edge_index[0], stable=True)
        edge_index = edge_index[:, order]
        node_ptr = _ptr(torch.bincount(node_graph, minlength=num_graphs))
        edge_ptr = _ptr(torch.bincount(node_graph[edge_index[0]], minlength=num_graphs))
        return cls(x, edge_index, node_ptr, edge_ptr, target, feature_spec, **kwargs)

    # access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.node_ptr.numel() - 1

    @property
    def num_nodes(self) -> Tensor:
        """``[G]`` node count per graph."""
        return self.node_ptr[1:] - self.node_ptr[:-1]

    @property
    def num_edges(self) -> Tensor:
        """``[G]`` undirected edge count per graph."""
        return (self.edge_ptr[1:] - self.edge_ptr[:-1]) // 2

    def __getitem__(self, g: int) -> Data:
        n0, n1 = int(self.node_ptr[g]), int(self.node_ptr[g + 1])
        e0, e1 = int(self.edge_ptr[g]), int(self.edge_ptr[g + 1])
        data = Data(x=self.x[n0:n1], edge_index=self.edge_index[:, e0:e1] - n0, y=self.target[g].view(1, -1).squeeze(-1) if self.target.dim() > 1 else self.target[g].view(1),
                    num_nodes=n1 - n0)
        if self.teacher_logits is not None:
            data.teacher_logits = self.teacher_logits[g].view(1, -1)
        return data

    def to_data_list(self) -> List[Data]:
        return [self[g] for g in range(len(self))]

    def batch(self, indices: Sequence[int]) -> Batch:
        """A PyG ``Batch`` of the given graphs (``teacher_logits`` included when known).

        Sliced straight out of the flat tensors (no per-graph ``Data`` objects): this is the
        distiller's hot path. Equal to ``Batch.from_data_list([self[g] for g in indices])``.
        """
        # On the set's device (a set can live on a GPU: the prior generator balances its pool there).
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=self.node_ptr.device)
        n_counts = self.num_nodes[idx]
        e_counts = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        ptr = _ptr(n_counts)
        node_ids = _ranges(self.node_ptr[idx], n_counts)
        edge_ids = _ranges(self.edge_ptr[idx], e_counts)
        shift = torch.repeat_interleave(ptr[:-1] - self.node_ptr[idx], e_counts)
        batch = Batch(x=self.x[node_ids.to(self.x.device)],
                      edge_index=self.edge_index[:, edge_ids.to(self.edge_index.device)] + shift.to(self.edge_index.device),
                      y=self.target[idx.to(self.target.device)],
                      batch=torch.repeat_interleave(torch.arange(idx.numel(), device=idx.device), n_counts), ptr=ptr)
        if self.teacher_logits is not None:
            batch.teacher_logits = self.teacher_logits[idx.to(self.teacher_logits.device)]
        return batch

    # resampling -----------------------------------------------------------------------------
    @property
    def can_resample(self) -> bool:
        return self.distribution is not None

    def resample(self, generator: Optional[torch.Generator] = None) -> "SyntheticGraphSet":
        """Draw a fresh structure for every graph from its learnt Bernoulli logits (same nodes, features
        and targets; degree-encoded features follow the new structure).

        Edges ~ Bernoulli(σ(structure_logits)). Teacher logits are dropped (they must be recomputed).
        """
        if self.distribution is None:
            raise ValueError("this synthetic set stores no distribution to resample from (generator was not GFKD)")
        d = self.distribution
        device = d["structure_logits"].device
        u = torch.rand(d["structure_logits"].shape, generator=generator).to(device)
        keep = u < torch.sigmoid(d["structure_logits"])
        pairs = d["pair_index"][:, keep]
        edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
        node_graph = torch.repeat_interleave(torch.arange(len(self), device=device), self.num_nodes.to(device))
        x = self.x
        if self.feature_spec.encoding == "degree":
            x = degree_features(edge_index, self.x.size(0), self.feature_spec)
        return SyntheticGraphSet.from_edges(x, edge_index, node_graph, len(self), self.target, self.feature_spec,
                                            distribution=self.distribution, meta=self.meta)

    # persistence ----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "x": self.x.detach().cpu(), "edge_index": self.edge_index.cpu(), "node_ptr": self.node_ptr.cpu(),
            "edge_ptr": self.edge_ptr.cpu(), "target": self.target.cpu(),
            "teacher_logits": None if self.teacher_logits is None else self.teacher_logits.detach().cpu(),
            "feature_spec": self.feature_spec.to_dict(),
            "distribution": None if self.distribution is None else {k: v.detach().cpu() for k, v in self.distribution.items()},
            "meta": self.meta,
        }

    def save(self, path: str) -> None:
        """Write atomically; reload with :meth:`load`."""
        atomic_save(self.to_dict(), path)

    @classmethod
    def load(cls, path: str) -> "SyntheticGraphSet":
        obj = safe_torch_load(path)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ValueError(f"{path}: not a dfkd synthetic graph set (make one with 'dfkd generate')")
        if obj.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: synthetic set format {obj['format_version']} is newer than this dfkd: upgrade dfkd")
        try:
            graphs = cls.from_dict(obj)
            if not all(isinstance(t, torch.Tensor) for t in (graphs.x, graphs.edge_index, graphs.node_ptr,
                                                             graphs.edge_ptr, graphs.target)):
                raise TypeError("x, edge_index, node_ptr, edge_ptr and target must be tensors")
        except (KeyError, TypeError, ValueError) as exc:  # a damaged file: one line, never a KeyError
            raise CheckpointError(f"{path}: damaged dfkd synthetic graph set ({exc}): generate it again") from None
        return graphs

    @classmethod
    def from_dict(cls, obj: Dict[str, Any]) -> "SyntheticGraphSet":
        """Inverse of :meth:`to_dict` (CPU tensors)."""
        return cls(obj["x"], obj["edge_index"], obj["node_ptr"], obj["edge_ptr"], obj["target"],
                   FeatureSpec.from_dict(obj["feature_spec"]), teacher_logits=obj["teacher_logits"],
                   distribution=obj["distribution"], meta=obj["meta"])

    # inspection -----------------------------------------------------------------------------
    def to_networkx(self, g: int):
        """Graph ``g`` as an undirected ``networkx.Graph`` with ``type`` (feature column) and ``target``."""
        import networkx as nx

        data = self[g]
        graph = nx.Graph(target=int(self.target[g]) if self.target.dim() == 1 else self.target[g].tolist())
        types = data.x.argmax(-1).tolist() if data.num_nodes else []
        for node, kind in enumerate(types):
            graph.add_node(node, type=int(kind))
        graph.add_edges_from((int(a), int(b)) for a, b in data.edge_index.t().tolist() if a < b)
        return graph

    def export_graphml(self, folder: str) -> List[str]:
        """Write one GraphML file per graph into ``folder``; returns the paths."""
        import networkx as nx

        os.makedirs(folder, exist_ok=True)
        paths = []
        for g in range(len(self)):
            path = os.path.join(folder, f"graph_{g:05d}.graphml")
            nx.write_graphml(self.to_networkx(g), path)
            paths.append(path)
        return paths

    def summary(self) -> Dict[str, Any]:
        """Counts and averages for logs and reports."""
        out: Dict[str, Any] = {
            "graphs": len(self), "mean_nodes": float(self.num_nodes.float().mean()) if len(self) else 0.0,
            "mean_edges": float(self.num_edges.float().mean()) if len(self) else 0.0,
        }
        if self.teacher_logits is not None and self.target.dim() == 1:
            probs = torch.softmax(self.teacher_logits.float(), -1)
            out["teacher_agreement"] = float((probs.argmax(-1) == self.target).float().mean())
            out["teacher_confidence"] = float(probs.max(-1).values.mean())
            out["class_histogram"] = torch.bincount(probs.argmax(-1), minlength=probs.size(1)).tolist()
        return out

    def __repr__(self) -> str:
        return f"SyntheticGraphSet(graphs={len(self)}, features={self.feature_spec.dim}, encoding={self.feature_spec.encoding})"
