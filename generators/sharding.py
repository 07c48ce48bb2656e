r"""A generator step split over the ranks of a process group: the sharding machinery of the adversarial
generators (:class:`~dfkd.generators.AdversarialGraphGenerator` and its conditional subclass), kept apart from
the game they play.

:class:`ShardedGeneratorStep` is a mixin for an :class:`~dfkd.generators.OnlineGraphGenerator` whose
``generator_step(student, num_graphs, generator, ctx=None)`` computes its loss terms on graphs ``lo..hi-1`` of
the batch it decodes. It gives the public face of a sharded step (:meth:`~ShardedGeneratorStep.generator_step_shard`,
:attr:`~ShardedGeneratorStep.sharded_step`, :meth:`~ShardedGeneratorStep.reduce_over_shards`) and the three hooks
the step is written with: :meth:`~ShardedGeneratorStep._shard` (this rank's share, the step marked as under way),
:meth:`~ShardedGeneratorStep._check_finite` (agreed by every rank) and :meth:`~ShardedGeneratorStep._reduce_step`
(gradients and terms combined over the ranks). Without a process group (``ctx=None``) every hook is the identity
or the single-process check, so a single process computes exactly what it did without the mixin. The primitives
are :mod:`dfkd.parallel`'s; the distiller's side is :mod:`dfkd.distill.distributed`.
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from dfkd.parallel import (DistContext, all_reduce_sum, all_reduce_sum_differentiable, average_gradients,
                           check_finite_all, rank_share, reduce_terms, scale_gradient)
from dfkd.utils import check_finite


class ShardedGeneratorStep:
    r"""Mixin: the generator step taken together by every rank of a process group.

    With a process group ``ctx`` (:meth:`generator_step_shard`) every rank decodes the whole batch, computes
    the terms on its :func:`~dfkd.parallel.rank_share` of ``n_r`` of the ``n`` graphs, and the generator's
    gradients are summed over the ranks with weights ``n_r / n``: for the per-graph-mean terms
    (adversarial discrepancy, label cross-entropy) that is the single-process gradient, so every rank
    takes the single-process step. Terms computed on every rank from statistics summed over the shares
    with :meth:`reduce_over_shards` (``differentiable=True``; the conditional generator's degree and
    node-type terms) are the whole batch's, and so is their summed gradient. The BatchNorm prior and the
    class balance (both off by default) see per-shard statistics: equivalent only statistically. The
    returned terms are the global batch's (weighted means; ``teacher_logit_max``: the largest).

    The host class provides ``generator_step(student, num_graphs, generator, ctx=None)`` written with the
    hooks, and ``device`` (where the collectives run). Place the mixin before
    :class:`~dfkd.generators.OnlineGraphGenerator` among the bases, so its :meth:`generator_step_shard` (split)
    overrides the base class's (replicated).
    """

    # (process group or None, graphs counted here, graphs of the batch) during a generator step
    _step_share: Optional[Tuple[Optional[DistContext], int, int]] = None

    def generator_step_shard(self, student: nn.Module, num_graphs: int, generator: torch.Generator,
                             ctx: DistContext) -> Dict[str, float]:
        """:meth:`generator_step` split over the ranks of ``ctx`` (see there)."""
        return self.generator_step(student, num_graphs, generator, ctx)

    @property
    def sharded_step(self) -> bool:
        """Whether a generator step split over the ranks of a process group is under way (then each rank's
        generator batch is its share of the global one, see :meth:`generator_step`)."""
        return self._step_share is not None and self._step_share[0] is not None

    def reduce_over_shards(self, values: Tensor, differentiable: bool = False) -> Tensor:
        r"""``values`` summed over the ranks taking the current generator step together, each computed from its
        own share of the batch (a rank holding only a placeholder graph adds zeros); ``values`` itself outside
        a sharded step (:attr:`sharded_step`), so a single process computes exactly what it did before. The
        collective runs on the generator's device; the sum comes back on ``values``' device.

        For sums and counts of a batch statistic: the reduced ones are the whole batch's, the same bits on every
        rank. State a subclass updates from the generator batch in :meth:`extra_terms` (running per-class
        statistics): reduce the sums and counts, then update, and every rank holds the single-process state.

        ``differentiable=True``: for a loss term computed from the reduced sums, identically on every rank
        (the same function with the same weight; the conditional generator's degree and node-type terms).
        The sum is :func:`~dfkd.parallel.all_reduce_sum_differentiable`, whose backward sums the gradients
        arriving on every rank, :math:`W\,T'(S)` for a term :math:`T(S)` of the sum :math:`S = \sum_r s_r`
        over :math:`W` ranks; this rank's share of that gradient is scaled by :math:`n / (W n_r)`, so after
        :meth:`generator_step` weights the rank's gradient by :math:`n_r / n` and sums over the ranks the
        term contributes :math:`T'(S) \sum_r \partial s_r / \partial \theta = \partial T(S) / \partial \theta`,
        the single-process gradient. Every rank must take part (the backward pass is a collective too): call
        it once per step, with the statistics of all such terms packed in one tensor.
        """
        if not self.sharded_step:
            return values
        ctx, counted, total = self._step_share
        local = values.to(self.device)
        if not counted:  # a placeholder graph: zeros (also for non-finite values), still in the autograd graph
            local = torch.where(torch.zeros((), dtype=torch.bool, device=local.device), local,
                                torch.zeros((), dtype=local.dtype, device=local.device))
        if differentiable:
            local = scale_gradient(local, total / (ctx.world_size * counted) if counted else 0.0)
            return all_reduce_sum_differentiable(local).to(values.device)
        return all_reduce_sum(local.detach().clone()).to(values.device)

    # --- hooks of generator_step ----------------------------------------------------------------
    @contextlib.contextmanager
    def _shard(self, num_graphs: int, ctx: Optional[DistContext]) -> Iterator[Tuple[int, int, int]]:
        """``(lo, hi, counted)``: the graphs ``lo..hi-1`` of the batch this rank computes the terms on, and how many
        of them count (0: a placeholder graph); the whole batch without ``ctx``. While the block runs the step is
        marked as under way (:attr:`sharded_step`, :meth:`reduce_over_shards`); the mark is cleared on leaving it,
        also on an error. In a sharded step the backward of a differentiable :meth:`reduce_over_shards` is a
        collective: take the gradients inside the block, on every rank together."""
        lo, hi, counted = (0, num_graphs, num_graphs) if ctx is None else rank_share(num_graphs, ctx)
        self._step_share = (ctx, counted, num_graphs)
        try:
            yield lo, hi, counted
        finally:
            self._step_share = None

    @staticmethod
    def _check_finite(terms: Dict[str, Tensor], ctx: Optional[DistContext], where: str, advice: str) -> None:
        """:func:`dfkd.utils.check_finite` on this process's ``terms``; with ``ctx``, agreed by every rank
        (:func:`dfkd.parallel.check_finite_all`: one rank's NaN stops them all, no deadlock)."""
        if ctx is None:
            check_finite(terms, where, advice)
        else:
            check_finite_all(terms, where, advice)

    def _reduce_step(self, params: List[nn.Parameter], values: Dict[str, float], counted: int, num_graphs: int,
                     ctx: Optional[DistContext], maxima: Sequence[str] = ()) -> Dict[str, float]:
        """The step's gradients and loss terms, combined over the ranks of ``ctx`` before the optimiser step: the
        ``.grad`` of ``params`` summed with this rank's weight ``counted / num_graphs``
        (:func:`~dfkd.parallel.average_gradients`), the terms reduced to the global batch's (weighted means; the
        largest for names in ``maxima``, :func:`~dfkd.parallel.reduce_terms`). Without ``ctx``: ``values``, the
        gradients left as they are."""
        if ctx is None:
            return values
        weight = counted / num_graphs
        average_gradients(params, weight)
        return reduce_terms(values, weight, self.device, maxima=maxima)
