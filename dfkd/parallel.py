"""Process-group and sharding primitives: who this process is in a ``torch.distributed`` group, which
graphs of a global batch are its share, and the collectives that combine the shares.

A core module: the generators (:mod:`dfkd.generators`, sharded generation and generator steps) and the
distiller (:mod:`dfkd.distill.distributed`, multi-process distillation) both build on it, and it imports
neither (data flows one way: generators never import the distiller). Every function is a no-op or the
identity outside a process group where that makes sense (:func:`all_reduce_sum`,
:func:`all_reduce_sum_differentiable`, :func:`broadcast_object`, :func:`barrier`); the others are only
called inside one. Collectives must be called by every rank, in the same order.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch_geometric.data import Batch

from dfkd.nn.utils import select_graphs
from dfkd.utils import check_finite


@dataclasses.dataclass(frozen=True)
class DistContext:
    """Where this process stands in the process group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> Optional[DistContext]:
    """The process group this process belongs to, or ``None`` outside one (or with a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                       dist.get_backend())


def is_main() -> bool:
    """True outside a process group and on rank 0."""
    ctx = context()
    return ctx is None or ctx.is_main


def shard_bounds(num_graphs: int, rank: int, world_size: int) -> Tuple[int, int]:
    """``(lo, hi)``: rank ``rank``'s contiguous share of ``num_graphs`` graphs (sizes differ by at most one,
    earlier ranks take the extra graphs, as :func:`torch.tensor_split`)."""
    base, extra = divmod(num_graphs, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def shard_sizes(num_graphs: int, world_size: int) -> list:
    """Every rank's share size of ``num_graphs`` graphs (:func:`shard_bounds`), in rank order."""
    return [hi - lo for lo, hi in (shard_bounds(num_graphs, r, world_size) for r in range(world_size))]


def slice_graphs(batch: Batch, lo: int, hi: int) -> Batch:
    """Graphs ``lo..hi-1`` of a PyG ``Batch`` as a new ``Batch`` (:func:`dfkd.nn.select_graphs` of a
    contiguous range)."""
    num_graphs = int(batch.num_graphs)
    if not 0 <= lo < hi <= num_graphs:
        raise ValueError(f"graph slice {lo}:{hi} is outside a batch of {num_graphs} graphs")
    keep = torch.zeros(num_graphs, dtype=torch.bool, device=batch.batch.device)
    keep[lo:hi] = True
    return select_graphs(batch, keep)


def rank_share(num_graphs: int, ctx: DistContext) -> Tuple[int, int, int]:
    """``(lo, hi, counted)``: the graphs ``lo..hi-1`` of a global batch of ``num_graphs`` this rank works on,
    and how many of them count.

    Its :func:`shard_bounds` share (``counted = hi - lo``), or, for a rank left without graphs (a batch
    smaller than the world), graph 0 with ``counted = 0``: it still runs every forward/backward and
    collective the others run (DDP needs every rank in every gradient all-reduce) but its contribution is
    weighted by 0.
    """
    lo, hi = shard_bounds(num_graphs, ctx.rank, ctx.world_size)
    return (lo, hi, hi - lo) if hi > lo else (0, 1, 0)


def check_finite_all(terms: Dict[str, Tensor], where: str, advice: str) -> None:
    """:func:`dfkd.utils.check_finite` agreed by every rank (one rank's NaN stops them all, no deadlock)."""
    values = list(terms.values())
    bad = torch.tensor([0.0 if all(bool(torch.isfinite(v).all()) for v in values) else 1.0],
                       device=values[0].device if values else "cpu")
    dist.all_reduce(bad, op=dist.ReduceOp.SUM)
    if bad.item():
        check_finite(terms, where, advice)  # raises with the terms' names on the rank that saw them
        raise FloatingPointError(f"{where}: non-finite loss on another rank; {advice}")


def average_gradients(params, weight: Optional[float] = None) -> None:
    """Replace the ``.grad`` of ``params`` by the sum over the ranks of ``weight * grad`` (one flat all-reduce).

    ``weight``: this rank's factor, ``n_r / n`` for a loss that is a mean over this rank's ``n_r`` of the
    ``n`` graphs (the sum is then the gradient of the global mean); default ``1 / W``, the average.
    A grad missing on some ranks counts as 0 there; one missing on every rank stays ``None`` (so an
    optimiser skips it as a single process would).
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    scale = 1.0 / dist.get_world_size() if weight is None else float(weight)
    grads = [p.grad * scale if p.grad is not None else torch.zeros_like(p) for p in params]
    present = torch.tensor([float(p.grad is not None) for p in params], dtype=grads[0].dtype, device=grads[0].device)
    flat = torch.cat([g.reshape(-1) for g in grads] + [present])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for index, p in enumerate(params):
        present_anywhere = bool(flat[flat.numel() - len(params) + index] > 0)
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone() if present_anywhere else None
        offset += p.numel()


def reduce_terms(terms: Dict[str, float], weight: float, device: torch.device,
                 maxima: Sequence[str] = ()) -> Dict[str, float]:
    """Loss terms of every rank's shard combined into the global batch's: ``sum_r weight_r * value_r`` (with
    ``weight_r = n_r / n``, per-graph means become the global mean), the largest value for names in
    ``maxima``. Every rank holds the same names; ``device``: where the collective runs (a CUDA device for
    NCCL)."""
    keys = sorted(terms)
    local = torch.tensor([[terms[k] for k in keys] + [float(weight)]], dtype=torch.float64, device=device)
    rows = all_gather_rows(local, [1] * dist.get_world_size())  # [W, K + 1]
    values, weights = rows[:, :-1], rows[:, -1:]
    means, largest = (values * weights).sum(0).tolist(), values.max(0).values.tolist()
    return {k: largest[i] if k in maxima else means[i] for i, k in enumerate(keys)}


def all_gather_rows(local: Tensor, sizes: Optional[Sequence[int]] = None) -> Tensor:
    """Every rank's ``local [n_r, ...]`` concatenated in rank order, ``[sum_r n_r, ...]`` (row counts may
    differ and be 0; trailing shape and dtype must agree). ``sizes``: every rank's ``n_r`` when the caller
    knows them (e.g. from :func:`shard_bounds`), else one all-gather finds them first; then one all-gather
    of the rows padded to the largest count."""
    world = dist.get_world_size()
    if sizes is None:
        count = torch.tensor([local.size(0)], dtype=torch.long, device=local.device)
        counts = [torch.zeros_like(count) for _ in range(world)]
        dist.all_gather(counts, count)
        sizes = [int(c) for c in counts]
    if len(sizes) != world or sizes[dist.get_rank()] != local.size(0):
        raise ValueError(f"all_gather_rows: sizes {list(sizes)} do not match {world} ranks with "
                         f"{local.size(0)} rows on this one")
    width = max(sizes)
    padded = local.new_zeros((width,) + tuple(local.shape[1:]))
    padded[:local.size(0)] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


def gather_graphs(batch: Batch, counted: int, keys: Sequence[str]) -> Dict[str, Tensor]:
    """The global batch of which ``batch`` holds this rank's first ``counted`` graphs (rank order), as CPU
    tensors under ``keys`` (``x``, ``edge_index``, ``batch``, ``ptr`` and graph-level keys such as
    ``teacher_logits`` and ``y``). Slicing the result with this rank's :func:`shard_bounds` gives ``batch``
    back exactly (same edge order). Uses ``all_gather_object``: for small batches (replay memory)."""
    local = slice_graphs(batch, 0, counted) if 0 < counted < int(batch.num_graphs) else batch
    mine = {k: getattr(local, k).detach().cpu() for k in keys} if counted else None
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, mine)
    parts = [p for p in parts if p is not None]
    out: Dict[str, Tensor] = {}
    node_offsets = torch.tensor([0] + [int(p["ptr"][-1]) for p in parts]).cumsum(0)
    graph_offsets = torch.tensor([0] + [p["ptr"].numel() - 1 for p in parts]).cumsum(0)
    for key in keys:
        if key == "edge_index":
            out[key] = torch.cat([p[key] + node_offsets[i] for i, p in enumerate(parts)], 1)
        elif key == "batch":
            out[key] = torch.cat([p[key] + graph_offsets[i] for i, p in enumerate(parts)])
        elif key == "ptr":
            out[key] = torch.cat([parts[0][key][:1]] + [p[key][1:] + node_offsets[i] for i, p in enumerate(parts)])
        else:
            out[key] = torch.cat([p[key] for p in parts])
    return out


def reduce_sums(sums: Dict[str, float], count: int, device: torch.device) -> Tuple[Dict[str, float], int]:
    """Per-epoch ``(sums, count)`` added over the ranks (every rank holds the same keys)."""
    keys = sorted(sums)
    packed = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    values = packed.tolist()
    return dict(zip(keys, values[:-1])), int(round(values[-1]))


def all_reduce_sum(values: Tensor) -> Tensor:
    """Sum of ``values`` over the ranks (in place; returned). A no-op outside a process group."""
    if context() is not None:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``factor``."""

    @staticmethod
    def forward(ctx, values: Tensor, factor: float) -> Tensor:  # type: ignore[override]
        ctx.factor = factor
        return values.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad * ctx.factor, None


def scale_gradient(values: Tensor, factor: float) -> Tensor:
    """``values`` (same bits) whose gradient is multiplied by ``factor`` on the way back (``values`` itself when
    it does not require grad)."""
    if not values.requires_grad:
        return values
    return _ScaleGradient.apply(values, float(factor))


def all_reduce_sum_differentiable(values: Tensor) -> Tensor:
    r"""Sum of ``values`` over the ranks, differentiable (:func:`torch.distributed.nn.functional.all_reduce`):
    a new tensor, the same bits on every rank; ``values`` itself outside a process group.

    Its backward all-reduces (sums) the gradients arriving at the sum on every rank: each rank's
    ``values`` receive :math:`\sum_q \partial L_q / \partial S`, the gradient of the sum of every rank's
    loss. That backward is a collective too: when ``values`` require grad on one rank they must on every
    rank, and every rank must back-propagate through the result, together (in the same order as any other
    collective of the backward pass; one such reduce per loss keeps that trivially true).
    """
    if context() is None:
        return values
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # deprecated in favour of the functional collectives, still the autograd one
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(values, op=dist.ReduceOp.SUM)


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled); ``obj`` itself outside a process group."""
    if context() is None:
        return obj
    box = [obj if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    if context() is not None:
        dist.barrier()
