"""Multi-process distillation with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Two ways in, the same code path:

* ``torchrun --nproc_per_node=N -m dfkd distill ...``: every process finds ``RANK`` / ``WORLD_SIZE`` /
  ``MASTER_ADDR`` / ``MASTER_PORT`` in its environment and :func:`init_from_env` joins the group.
* ``dfkd distill --nproc N ...`` (or :func:`distill_distributed`): N local processes are spawned on
  loopback (a free TCP port) with :func:`launch`.

This module is the distiller's side (joining the group, launching, DDP, the distiller's batch marks). The
process-group and sharding primitives it uses live in the core module :mod:`dfkd.parallel`, which the
generators use too (they never import ``dfkd.distill``); they are re-exported here.

**What each rank does** (:class:`dfkd.distill.Distiller`): every rank draws the same *global* batch
from the source (same seeds, so the same graphs as a single process), keeps its contiguous share of
the graphs (:func:`~dfkd.parallel.shard_bounds`, :func:`~dfkd.parallel.slice_graphs`) and runs the teacher (when the batch carries
no cached ``teacher_logits``) and the student forward/backward on that share only. The student is
wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`; each rank's loss is scaled by
``W * n_r / n`` (``n_r`` of the batch's ``n`` graphs on rank ``r`` of ``W``) so that DDP's gradient
*average* equals the gradient of the single-process loss on the whole batch (the recipe's per-graph
means). Hence the update, and the trained student, match a single process with the same seed and
global batch up to floating-point summation order.

* Fixed synthetic sets (``gfkd``, ``random``) are generated once by rank 0 (or reloaded on resume)
  and broadcast; resampling draws the same structures on every rank.
* Online generators (``prior``, ``dfad``, ``conditional``) generate in shards
  (:class:`dfkd.distill.OnlineSource`): every rank draws the cheap random parts of the whole global batch
  from the shared random stream, in the same order (node counts, structures, node types, noise, the
  decoder's edge and type draws), so the streams stay in step, but the teacher labels only the rank's
  share (:meth:`~dfkd.generators.OnlineGraphGenerator.sample_shard`). ``prior``'s class balancing couples
  the batch: the teacher scores the rank's share of the ``balance * n`` candidates, the ``[P, C]`` outputs
  are all-gathered (:func:`~dfkd.parallel.all_gather_rows`) and every rank makes the same selection, then keeps its share
  of the chosen graphs. Such a batch is marked (:func:`mark_shard`): the distiller does not split it
  again but still scales by the global count. Generator updates of ``dfad`` / ``conditional``
  (:meth:`~dfkd.generators.OnlineGraphGenerator.generator_step_shard`) decode the whole latent batch on
  every rank, run the teacher and student on the rank's share, and sum the generator's gradients over
  the ranks with weights ``n_r / n`` (:func:`~dfkd.parallel.average_gradients`): the single-process step
  for its per-graph-mean terms (adversarial discrepancy, label cross-entropy). ``conditional``'s
  batch-coupled terms, on by default (``degree_mismatch``: mean and spread of the node degree over the
  batch; ``type_mismatch``: per-class node-type frequencies), are computed on every rank from their
  sufficient statistics summed over the shares by one differentiable all-reduce
  (:meth:`~dfkd.generators.AdversarialGraphGenerator.reduce_over_shards` with ``differentiable=True``,
  whose gradient scaling makes the ranks' weighted, summed gradients the whole batch's); its running
  per-(class, size) cross-entropy (the size law) and fidelity are updated from sums and counts reduced
  over the shares, so every rank holds the single-process state. The epoch's class histogram, output
  range and generator terms are the global batch's (reduced over the ranks), the replay memory holds
  global batches (gathered, :func:`~dfkd.parallel.gather_graphs`), and a curriculum gathers the scores of
  the shares and keeps the global batch's easiest graphs.
* Only rank 0 evaluates, writes checkpoints, the synthetic set and the report; every rank can resume
  from the state rank 0 wrote.

Not exactly equivalent (within tolerance only): students with **dropout** (masks are drawn per
shard) and **BatchNorm** (normalisation statistics are per shard; running statistics follow rank 0,
DDP's ``broadcast_buffers``). ``SyncBatchNorm`` would fix the latter but PyTorch supports it on GPU
only, so it is not used. Losses that couple graphs of a batch (``relation``, ``gsp``, ``gcrd``)
see only their shard's graphs. Likewise the generator terms that are statistics of the generator
batch and off by default: ``dfad``'s (and ``conditional``'s) BatchNorm prior (``bn_weight``) and class
balance (``balance_weight``) are computed per shard, so such runs match a single process only
statistically (a subclass's own batch-level terms and running statistics are per shard too unless it
reduces them with :meth:`~dfkd.generators.AdversarialGraphGenerator.reduce_over_shards`, as
``conditional`` does). Generator warm-up steps before distillation (``warmup_steps``) run whole on every
rank (identical, not split). Everything else, ``conditional`` with its default options included, matches
up to floating-point summation order: generator gradients are summed over the shares in another order
than a single process sums them, and where they nearly cancel (an untrained teacher's saturated outputs
give label-CE and adversarial gradients of ~1e-8, Adam's ``eps``) float32 rounding moves a generator step
by a few per cent of its lr (the gradients agree to 1e-10 in float64); sharded ``conditional`` computes
the degree spread from the summed squares (float64) rather than as a two-pass ``std``, and its
running statistics from summed per-shard sums (a size-law draw whose probability moved by ~1e-7 could
in principle come out differently). The tests' ``dfad`` and default ``conditional`` students match a
single process to 1e-5.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.distributed as dist
from torch_geometric.data import Batch

# The process-group and sharding primitives live in the core module dfkd.parallel (the generators use them
# too, and never import dfkd.distill); re-exported here for callers of dfkd.distill.distributed.
from dfkd.parallel import (  # noqa: F401
    DistContext, all_gather_rows, all_reduce_sum, all_reduce_sum_differentiable, average_gradients, barrier,
    broadcast_object, check_finite_all, context, gather_graphs, is_main, rank_share, reduce_sums, reduce_terms,
    scale_gradient, shard_bounds, shard_sizes, slice_graphs,
)

logger = logging.getLogger(__name__)

_SHARD_MARK = "_dfkd_shard"  # (counted, total) of a batch that is one rank's share (see mark_shard)


def init_from_env(device: str = "cpu") -> str:
    """Join the process group described by torchrun's environment (``WORLD_SIZE > 1``), if not in it yet.

    Backend: NCCL for a CUDA ``device``, gloo otherwise. Returns the device this rank should use
    (``cuda:LOCAL_RANK`` for a CUDA device given without an index; ``device`` unchanged otherwise).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if dev.type == "cuda" and world > 1 and dev.index is None:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world > 1 and dist.is_available() and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        logger.info("rank %d of %d joined the %s process group", dist.get_rank(), world, backend)
    return str(dev)


def mark_shard(batch: Batch, counted: int, total: int) -> Batch:
    """Mark ``batch`` as this rank's share of a global batch of ``total`` graphs, of which its first
    ``counted`` count (``counted = 0``: a placeholder, see :func:`~dfkd.parallel.rank_share`); :func:`shard` then passes it
    through. Sources that generate only their rank's share (:class:`dfkd.distill.OnlineSource`) mark their
    batches. The mark lives outside the batch's data (it is not a key) and is dropped by any selection."""
    batch.__dict__[_SHARD_MARK] = (int(counted), int(total))
    return batch


def shard_info(batch: Batch) -> Optional[Tuple[int, int]]:
    """``(counted, total)`` of a batch marked by :func:`mark_shard`, ``None`` for a global batch."""
    return batch.__dict__.get(_SHARD_MARK)


def global_num_graphs(batch: Batch) -> int:
    """Graphs of the global batch ``batch`` belongs to (its own count when it is not a marked shard)."""
    info = shard_info(batch)
    return int(batch.num_graphs) if info is None else info[1]


def shard(batch: Batch, ctx: DistContext) -> Tuple[Batch, int]:
    """This rank's share of a global batch and the number of its graphs that count.

    A batch already marked as this rank's share (:func:`mark_shard`) is returned as it is. A rank left
    without graphs (a final batch smaller than the world) gets graph 0 with count 0
    (:func:`~dfkd.parallel.rank_share`).
    """
    info = shard_info(batch)
    if info is not None:
        return batch, info[0]
    lo, hi, counted = rank_share(int(batch.num_graphs), ctx)
    return slice_graphs(batch, lo, hi), counted


def wrap_student(student: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The student inside :class:`~torch.nn.parallel.DistributedDataParallel` (parameters broadcast from
    rank 0; gradients averaged over the ranks during backward; buffers follow rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    inexact = [name for name, kind in (("BatchNorm", torch.nn.modules.batchnorm._BatchNorm),
                                       ("dropout", torch.nn.Dropout))
               if any(isinstance(m, kind) and getattr(m, "p", 1.0) > 0 for m in student.modules())]
    if inexact and dist.get_rank() == 0:
        logger.info("student has %s: per-rank statistics/masks, so the run matches a single process only "
                    "statistically (see dfkd.distill.distributed)", " and ".join(inexact))
    device = torch.device(device)
    return DistributedDataParallel(student, device_ids=[device.index] if device.type == "cuda" else None)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(fn: Callable[..., Any], nproc: int, *args: Any, backend: Optional[str] = None,
           log_level: int = logging.WARNING) -> None:
    """Run ``fn(*args)`` in ``nproc`` spawned processes joined in a process group on loopback.

    ``fn`` must be picklable (a module-level function). Backend: ``gloo`` unless given (``nccl`` for
    GPU runs). Raises when a process fails (its traceback is printed by ``torch.multiprocessing``).
    """
    import torch.multiprocessing as mp

    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    port = free_port()
    mp.spawn(_entry, args=(nproc, port, backend or "gloo", log_level, fn, args), nprocs=nproc, join=True)


def _entry(rank: int, world_size: int, port: int, backend: str, log_level: int, fn: Callable[..., Any],
           args: Tuple[Any, ...]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size))
    logging.basicConfig(level=log_level if rank == 0 else max(log_level, logging.WARNING),
                        format=f"%(levelname)s rank{rank} %(name)s: %(message)s", force=True)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def distill_distributed(nproc: int, out: str, log_level: int = logging.WARNING, **kwargs: Any):
    """:func:`dfkd.distill.distill_student` in ``nproc`` local processes (DDP, see the module docstring).

    Same arguments as ``distill_student`` (``out`` is required: rank 0 writes the student checkpoint and
    report there). Returns the :class:`~dfkd.distill.DistillResult` read back from those files.
    """
    from dfkd.checkpoint import load_checkpoint
    from dfkd.distill.api import DistillResult, SYNTHETIC_FILE, report_path
    from dfkd.distill.distiller import DistillReport
    from dfkd.generators import SyntheticGraphSet

    device = str(kwargs.get("device", "cpu"))
    if torch.device(device).type == "cuda":
        if torch.cuda.device_count() < nproc:
            raise ValueError(f"--nproc {nproc} needs {nproc} GPUs but {torch.cuda.device_count()} are visible: "
                             "lower --nproc or use --device cpu")
        kwargs["device"] = "cuda"  # each rank takes cuda:RANK
    backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
    launch(_distill_worker, nproc, out, kwargs, backend=backend, log_level=log_level)
    import json

    with open(report_path(out), encoding="utf-8") as handle:
        report = DistillReport(**json.load(handle))
    ckpt = load_checkpoint(out)
    work_dir = kwargs.get("work_dir") or f"{out}.run"
    synth = os.path.join(work_dir, SYNTHETIC_FILE)
    graphs = SyntheticGraphSet.load(synth) if os.path.exists(synth) else None
    return DistillResult(student=ckpt.build_model().eval(), checkpoint=ckpt, report=report, graphs=graphs)


def _distill_worker(out: str, kwargs: Dict[str, Any]) -> None:
    from dfkd.distill.api import distill_student

    if torch.device(str(kwargs.get("device", "cpu"))).type == "cuda":
        kwargs = {**kwargs, "device": f"cuda:{dist.get_rank()}"}
    distill_student(out=out, **kwargs)
