"""Graph sources the distiller draws training batches from.

A source yields PyG ``Batch`` objects for one epoch from a seeded generator; a batch carrying
``teacher_logits`` saves the teacher a forward pass. Offline generators' outputs are wrapped in
:class:`SyntheticSetSource`; real graphs (the real-data KD ceiling) in :class:`GraphListSource`.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, Sequence

import torch
from torch_geometric.data import Batch

from dfkd.generators import SyntheticGraphSet


class GraphSource:
    """Interface: ``batches(epoch, generator)``; sources with state also implement ``state_dict``."""

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass

    def describe(self) -> Dict[str, Any]:
        return {"source": type(self).__name__}


class SyntheticSetSource(GraphSource):
    """Shuffled mini-batches of a fixed :class:`SyntheticGraphSet`.

    Args:
        graphs: the synthetic set.
        batch_size: graphs per batch.
        resample: when the set holds learnt distributions, draw a fresh sample of every graph each
            epoch (labelled by the teacher online) instead of reusing the same graphs.
    """

    def __init__(self, graphs: SyntheticGraphSet, batch_size: int = 32, resample: bool = False):
        if len(graphs) == 0:
            raise ValueError("the synthetic set is empty: generate at least one graph")
        self.graphs, self.batch_size = graphs, batch_size
        self.resample = resample and graphs.can_resample

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        graphs = self.graphs.resample(generator) if self.resample else self.graphs
        for chunk in torch.randperm(len(graphs), generator=generator).split(self.batch_size):
            yield graphs.batch(chunk.tolist())

    def describe(self) -> Dict[str, Any]:
        return {"source": "synthetic", "graphs": len(self.graphs), "resample": self.resample, **self.graphs.summary()}


class GraphListSource(GraphSource):
    """Shuffled mini-batches of given graphs (their labels are ignored: the teacher labels them)."""

    def __init__(self, graphs: Sequence, batch_size: int = 32):
        if len(graphs) == 0:
            raise ValueError("no graphs to distil on")
        self.graphs, self.batch_size = list(graphs), batch_size

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        for chunk in torch.randperm(len(self.graphs), generator=generator).split(self.batch_size):
            yield Batch.from_data_list([self.graphs[i] for i in chunk.tolist()])

    def describe(self) -> Dict[str, Any]:
        return {"source": "graphs", "graphs": len(self.graphs)}
