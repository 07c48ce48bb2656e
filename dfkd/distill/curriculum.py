r"""Curriculum over synthetic graphs: train on the easiest graphs of every batch first, widen over time.

Synthetic graphs range from ones the teacher labels with certainty to ambiguous ones near its
decision boundary. A curriculum (ACGKD's easy-to-hard ordering of pseudo-graphs) lets the student
learn the clear cases before the hard ones. :class:`CurriculumSource` wraps any
:class:`~dfkd.distill.sources.GraphSource` and keeps, of every batch of ``B`` graphs, the
:math:`\lceil \lambda(e) B \rceil` easiest, with the kept fraction growing linearly

.. math:: \lambda(e) = \lambda_0 + (1 - \lambda_0)\,\min\!\left(1, \frac{e}{r E}\right)

from ``start`` (:math:`\lambda_0`) at epoch 0 to all graphs after the first ``ramp`` (:math:`r`)
fraction of the ``E`` epochs. Difficulty of graph :math:`g`:

* ``confidence``: :math:`-\max_c \operatorname{softmax}(z^T_g)_c` (the teacher's least certain graphs are
  the hardest; classification teachers only);
* ``disagreement``: :math:`\mathrm{KL}(p^T_g \,\|\, p^S_g)` between teacher and current student (squared
  error of the outputs for regression teachers), read with the student in eval mode so that its
  BatchNorm statistics are not touched;
* ``size`` and ``density``: the graph's complexity, its node count :math:`n_g` or its mean degree
  :math:`2|E_g| / n_g` (small, sparse graphs first; any teacher).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from dfkd.distill import distributed
from dfkd.distill.sources import GraphSource
from dfkd.losses import per_graph_disagreement
from dfkd.nn import eval_mode, forward_batch, select_graphs

COMPLEXITY = ("size", "density")
CRITERIA = ("confidence", "disagreement") + COMPLEXITY


def complexity(criterion: str, batch: Batch) -> Tensor:
    """``[B]`` node count (``size``) or mean degree (``density``, directed edge entries per node: ``2|E| / n``
    for undirected graphs) of every graph of ``batch``."""
    graphs = int(batch.num_graphs)
    nodes = torch.bincount(batch.batch, minlength=graphs).float()
    if criterion == "size":
        return nodes
    entries = torch.bincount(batch.batch[batch.edge_index[0]], minlength=graphs).float()
    return entries / nodes.clamp_min(1)


def difficulty(criterion: str, teacher_logits: Tensor, student_logits: Optional[Tensor] = None,
               regression: bool = False) -> Tensor:
    """``[B]`` difficulty of each graph (higher = harder) from ``[B, C]`` outputs; see the module docstring."""
    if criterion == "confidence":
        if regression:
            raise ValueError("curriculum=confidence needs class probabilities, which a regression teacher does not "
                             "have: use curriculum=disagreement")
        return -F.softmax(teacher_logits, -1).max(-1).values
    if student_logits is None:
        raise ValueError("curriculum=disagreement needs the student's outputs")
    return per_graph_disagreement(student_logits, teacher_logits, regression)


class CurriculumSource(GraphSource):
    """Easy-to-hard selection inside every batch of ``source`` (see the module docstring).

    Args:
        source: any graph source (fixed synthetic set, online generator, real graphs).
        teacher: the frozen teacher (labels batches that carry no ``teacher_logits``).
        student: the student being trained (``disagreement`` only).
        epochs: the run's epoch count ``E``.
        criterion: ``confidence`` or ``disagreement``.
        start: fraction of every batch kept at epoch 0, in ``(0, 1]``.
        ramp: fraction of the epochs after which all graphs are kept, in ``(0, 1]``.
        regression: the teacher's outputs are values, not class logits.
    """

    def __init__(self, source: GraphSource, teacher: nn.Module, epochs: int, criterion: str = "confidence",
                 start: float = 0.5, ramp: float = 0.5, student: Optional[nn.Module] = None,
                 regression: bool = False):
        if criterion not in CRITERIA:
            raise ValueError(f"unknown curriculum {criterion!r}: choose {' or '.join(CRITERIA)}")
        if not 0 < start <= 1 or not 0 < ramp <= 1:
            raise ValueError(f"curriculum start and ramp must be in (0, 1], got start={start}, ramp={ramp}")
        if criterion == "confidence" and regression:
            difficulty(criterion, torch.zeros(1, 1), regression=True)  # raises the one-line error
        if criterion == "disagreement" and student is None:
            raise ValueError("curriculum=disagreement needs the student")
        self.source, self.teacher, self.student = source, teacher, student
        self.epochs, self.criterion, self.start, self.ramp = epochs, criterion, start, ramp
        self.regression = regression
        self.relabel = source.relabel
        self._kept = self._seen = 0

    def fraction(self, epoch: int) -> float:
        """:math:`\\lambda(e)`, the fraction of every batch kept at ``epoch`` (0-based)."""
        return self.start + (1.0 - self.start) * min(1.0, epoch / (self.ramp * self.epochs))

    @torch.no_grad()
    def _scores(self, batch: Batch) -> Tensor:
        if self.criterion in COMPLEXITY:
            return complexity(self.criterion, batch)
        teacher_logits = getattr(batch, "teacher_logits", None)
        if teacher_logits is None:  # kept on the batch: the distiller then needs no second teacher pass
            teacher_logits = batch.teacher_logits = forward_batch(self.teacher, batch)
        student_logits = None
        if self.criterion == "disagreement":
            with eval_mode(self.student):
                student_logits = forward_batch(self.student, batch)
        return difficulty(self.criterion, teacher_logits.float(), student_logits, self.regression)

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        """Every batch of the source with its easiest graphs kept. A batch that is one rank's share of a
        global batch (:func:`dfkd.distill.distributed.mark_shard`, sharded online generation) is scored here,
        the scores of every rank are gathered and the global batch's easiest graphs selected, and the
        rank keeps its own of them (marked as its share of the kept batch): the graphs a single process
        would keep."""
        self._kept = self._seen = 0
        frac = self.fraction(epoch)
        for batch in self.source.batches(epoch, generator):
            info = distributed.shard_info(batch)
            size = int(batch.num_graphs) if info is None else info[1]
            keep_count = min(size, max(2, math.ceil(frac * size)))
            self._seen += size
            self._kept += keep_count
            if keep_count >= size:
                yield batch
                continue
            batch = batch.to(next(self.teacher.parameters()).device)
            scores = self._scores(batch)
            ctx = distributed.context()
            if info is not None:  # [size]: every rank's counted graphs (its shard_bounds share), in batch order
                scores = distributed.all_gather_rows(scores[:info[0]], distributed.shard_sizes(size, ctx.world_size))
            keep = torch.zeros(size, dtype=torch.bool, device=scores.device)
            keep[torch.argsort(scores, stable=True)[:keep_count]] = True
            if info is None:
                yield select_graphs(batch, keep)
                continue
            lo, _ = distributed.shard_bounds(size, ctx.rank, ctx.world_size)
            mine = keep[lo:lo + info[0]]
            counted = int(mine.sum())
            if not counted:  # none of the kept graphs is here: a placeholder that counts 0
                mine = torch.zeros(int(batch.num_graphs), dtype=torch.bool, device=keep.device)
                mine[0] = True
            else:
                mine = torch.cat([mine, mine.new_zeros(int(batch.num_graphs) - mine.numel())])
            yield distributed.mark_shard(select_graphs(batch, mine), counted, keep_count)

    def attach_student(self, student: nn.Module) -> None:
        self.source.attach_student(student)

    def update(self, student: nn.Module, generator: torch.Generator) -> None:
        self.source.update(student, generator)

    def epoch_stats(self) -> Dict[str, Any]:
        return {**self.source.epoch_stats(), "curriculum_kept": self._kept / max(self._seen, 1)}

    def state_dict(self) -> Dict[str, Any]:
        return self.source.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.source.load_state_dict(state)

    def describe(self) -> Dict[str, Any]:
        return {**self.source.describe(), "curriculum": {"criterion": self.criterion, "start": self.start,
                                                         "ramp": self.ramp}}
