"""Graph sources the distiller draws training batches from.

A source yields PyG ``Batch`` objects for one epoch from a seeded generator; a batch carrying
``teacher_logits`` saves the teacher a forward pass. Offline generators' outputs are wrapped in
:class:`SyntheticSetSource`; real graphs (the real-data KD ceiling) in :class:`GraphListSource`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn
from torch_geometric.data import Batch

from dfkd.distill import distributed
from dfkd.generators import SyntheticGraphSet
from dfkd.generators.base import OnlineGraphGenerator


class GraphSource:
    """Interface: ``batches(epoch, generator)``; sources with state also implement ``state_dict``.

    Online sources also learn from the student: the distiller calls :meth:`update` after every
    student step and adds :meth:`epoch_stats` to its per-epoch history.
    """

    relabel = False  # drop the generator's teacher outputs so the distiller's teacher labels the graphs

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        raise NotImplementedError

    def _emit(self, batch: Batch) -> Batch:
        if self.relabel and "teacher_logits" in batch:
            del batch.teacher_logits
        return batch

    def attach_student(self, student: nn.Module) -> None:
        """Called once by the distiller before the first batch (no-op but for student-aware online generators)."""

    def update(self, student: nn.Module, generator: torch.Generator) -> None:
        """Called after every student step (no-op for fixed sources)."""

    def epoch_stats(self) -> Dict[str, Any]:
        """Facts about the epoch just drawn, for the report."""
        return {}

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
        relabel: ignore the stored teacher outputs (a teacher-assistant stage labels them itself).
    """

    def __init__(self, graphs: SyntheticGraphSet, batch_size: int = 32, resample: bool = False,
                 relabel: bool = False):
        if len(graphs) == 0:
            raise ValueError("the synthetic set is empty: generate at least one graph")
        self.graphs, self.batch_size, self.relabel = graphs, batch_size, relabel
        self.resample = resample and graphs.can_resample

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        graphs = self.graphs.resample(generator) if self.resample else self.graphs
        for chunk in torch.randperm(len(graphs), generator=generator).split(self.batch_size):
            yield self._emit(graphs.batch(chunk.tolist()))

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


class OnlineSource(GraphSource):
    """Fresh graphs from an :class:`OnlineGraphGenerator` every step, and its adversarial updates.

    An epoch is ``ceil(graphs_per_epoch / batch_size)`` student steps; after every
    ``generator.update_every`` of them the generator takes ``generator.generator_steps`` steps
    against the current student. Each epoch records the class histogram of the teacher's predictions
    on the generated graphs and flags collapse (one class above ``collapse_threshold``); for a
    regression teacher (no classes) it records the mean, std, min and max of the teacher's values
    instead (``teacher_output_*``: a shrinking range is the regression form of collapse) and flags nothing.
    With ``replay > 0`` the last ``replay`` generated batches are kept, and after every fresh batch
    the student also takes a step on one of them, drawn at random (a memory against forgetting
    what earlier generators showed it). With ``relabel`` the batches go out without the generator's
    teacher outputs (a teacher-assistant stage labels them itself).

    In a process group (:mod:`dfkd.distill.distributed`) every rank draws the random parts of the whole
    global batch from the shared random stream but gets only its share of the graphs, labelled by the
    teacher there (:meth:`OnlineGraphGenerator.sample_shard`, marked with
    :func:`~dfkd.distill.distributed.mark_shard` so the distiller does not split it again), and generator
    steps are split over the ranks (:meth:`OnlineGraphGenerator.generator_step_shard`). The class
    histogram, output range and generator terms are still the global batch's (reduced over the ranks),
    and the replay memory holds global batches (gathered), the same on every rank.
    """

    _MEMORY_KEYS = ("x", "edge_index", "batch", "ptr", "teacher_logits", "y")
    # In a process group: generate only this rank's share of every batch and split generator steps over the
    # ranks (see dfkd.distill.distributed); False: every rank draws whole batches and takes whole steps.
    sharded = True

    def __init__(self, generator: OnlineGraphGenerator, graphs_per_epoch: int, batch_size: int = 32,
                 collapse_threshold: float = 0.95, replay: int = 0, relabel: bool = False):
        if graphs_per_epoch < 1:
            raise ValueError(f"graphs per epoch must be >= 1, got {graphs_per_epoch}")
        self.generator, self.graphs_per_epoch = generator, graphs_per_epoch
        self.batch_size = max(2, batch_size)  # generators and BatchNorm students need 2+ graphs
        self.collapse_threshold = collapse_threshold
        self.student_steps = 0
        self.seconds = 0.0
        self._hist = torch.zeros(generator.num_classes, dtype=torch.long)
        self.regression = bool(getattr(generator, "regression", False))
        self._values: List[torch.Tensor] = []  # regression: teacher values of the epoch's batches
        self._terms: List[Dict[str, float]] = []
        self.replay, self.relabel = replay, relabel
        self.memory: List[Dict[str, torch.Tensor]] = []
        self._written = 0

    def _remember(self, item: Dict[str, torch.Tensor]) -> None:
        if len(self.memory) < self.replay:
            self.memory.append(item)
        else:
            self.memory[self._written % self.replay] = item
        self._written += 1

    def _draw(self, generator: torch.Generator, ctx: Optional[distributed.DistContext]):
        """``(batch, counted)``: a fresh batch of ``batch_size`` graphs, or in a process group this rank's share
        of it (marked, :func:`~dfkd.distill.distributed.mark_shard`) with the number of its graphs that count."""
        if ctx is None:
            return self.generator.sample(self.batch_size, generator), self.batch_size
        lo, hi, counted = distributed.rank_share(self.batch_size, ctx)
        batch = self.generator.sample_shard(self.batch_size, generator, lo, hi, ctx=ctx)
        return distributed.mark_shard(batch, counted, self.batch_size), counted

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        self._hist.zero_()
        self._values = []
        self._terms = []
        ctx = distributed.context() if self.sharded else None
        for _ in range(math.ceil(self.graphs_per_epoch / self.batch_size)):
            start = time.perf_counter()
            batch, counted = self._draw(generator, ctx)
            outputs = batch.teacher_logits[:counted].detach()
            if self.regression:
                self._values.append(outputs.float().cpu())
            else:
                self._hist += torch.bincount(outputs.argmax(-1).cpu(), minlength=self._hist.numel())
            self.seconds += time.perf_counter() - start
            item = None
            if self.replay:  # the memory holds global batches (every rank the same): gather the shares
                item = ({k: getattr(batch, k).detach().cpu() for k in self._MEMORY_KEYS} if ctx is None
                        else distributed.gather_graphs(batch, counted, self._MEMORY_KEYS))
            yield self._emit(batch)
            if self.replay:
                if self.memory:
                    old = self.memory[int(torch.randint(len(self.memory), (1,), generator=generator))]
                    yield self._emit(Batch(**old))
                self._remember(item)

    def attach_student(self, student: nn.Module) -> None:
        self.generator.attach_student(student)

    def update(self, student: nn.Module, generator: torch.Generator) -> None:
        self.student_steps += 1
        if self.student_steps % self.generator.update_every:
            return
        start = time.perf_counter()
        ctx = distributed.context() if self.sharded else None
        for _ in range(self.generator.generator_steps):
            if ctx is None:
                self._terms.append(self.generator.generator_step(student, self.batch_size, generator))
            else:
                self._terms.append(self.generator.generator_step_shard(student, self.batch_size, generator, ctx))
        self.seconds += time.perf_counter() - start

    def epoch_stats(self) -> Dict[str, Any]:
        """The epoch's class histogram and collapse flag (regression: the teacher's output range) and mean
        generator terms. In a process group every rank holds its shares: the histogram is summed and the
        values gathered over the ranks (collectives: every rank calls this together)."""
        stats: Dict[str, Any] = {}
        ctx = distributed.context() if self.sharded else None
        if self.regression:
            values = torch.cat(self._values) if self._values else torch.zeros(0, self.generator.num_classes)
            if ctx is not None:
                values = distributed.all_gather_rows(values.to(self.generator.device)).cpu()
            if values.numel():
                stats.update({"teacher_output_mean": float(values.mean()),
                              "teacher_output_std": float(values.std(unbiased=False)),
                              "teacher_output_min": float(values.min()), "teacher_output_max": float(values.max())})
        else:
            hist = self._hist
            if ctx is not None:
                hist = distributed.all_reduce_sum(hist.to(self.generator.device)).cpu()
            total = int(hist.sum())
            stats["class_histogram"] = hist.tolist()
            if total and hist.numel() > 1:
                stats["collapsed"] = bool(hist.max().item() >= self.collapse_threshold * total)
        for name in sorted({k for t in self._terms for k in t}):
            values = [t[name] for t in self._terms if name in t]
            stats[f"generator_{name}"] = sum(values) / len(values)
        return stats

    def state_dict(self) -> Dict[str, Any]:
        return {"generator": self.generator.state_dict(), "student_steps": self.student_steps, "seconds": self.seconds,
                "memory": self.memory, "written": self._written}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.student_steps, self.seconds = state["student_steps"], state["seconds"]
        self.memory, self._written = state["memory"], state["written"]

    def describe(self) -> Dict[str, Any]:
        return {"source": "online", "generator": self.generator.registered_name, "graphs": self.graphs_per_epoch,
                "generator_config": self.generator.config.to_dict()}
