"""Multi-process distillation with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Two ways in, the same code path:

* ``torchrun --nproc_per_node=N -m dfkd distill ...``: every process finds ``RANK`` / ``WORLD_SIZE`` /
  ``MASTER_ADDR`` / ``MASTER_PORT`` in its environment and :func:`init_from_env` joins the group.
* ``dfkd distill --nproc N ...`` (or :func:`distill_distributed`): N local processes are spawned on
  loopback (a free TCP port) with :func:`launch`.

**What each rank does** (:class:`dfkd.distill.Distiller`): every rank draws the same *global* batch
from the source (same seeds, so the same graphs as a single process), keeps its contiguous share of
the graphs (:func:`shard_bounds`, :func:`slice_graphs`) and runs the teacher (when the batch carries
no cached ``teacher_logits``) and the student forward/backward on that share only. The student is
wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`; each rank's loss is scaled by
``W * n_r / n`` (``n_r`` of the batch's ``n`` graphs on rank ``r`` of ``W``) so that DDP's gradient
*average* equals the gradient of the single-process loss on the whole batch (the recipe's per-graph
means). Hence the update, and the trained student, match a single process with the same seed and
global batch up to floating-point summation order.

* Fixed synthetic sets (``gfkd``, ``random``) are generated once by rank 0 (or reloaded on resume)
  and broadcast; resampling draws the same structures on every rank.
* Online generators (``prior``, ``dfad``, ``conditional``) run replicated: every rank draws the same
  global batch and takes the same generator steps against the (identical) student, so the generators
  stay in step without communication; the student's forward/backward is what is sharded.
* Only rank 0 evaluates, writes checkpoints, the synthetic set and the report; every rank can resume
  from the state rank 0 wrote.

Not exactly equivalent (within tolerance only): students with **dropout** (masks are drawn per
shard) and **BatchNorm** (normalisation statistics are per shard; running statistics follow rank 0,
DDP's ``broadcast_buffers``). ``SyncBatchNorm`` would fix the latter but PyTorch supports it on GPU
only, so it is not used. Losses that couple graphs of a batch (``relation``, ``gsp``, ``gcrd``)
see only their shard's graphs.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor
from torch_geometric.data import Batch

from dfkd.nn.utils import select_graphs

logger = logging.getLogger(__name__)

# Graph-level, node-level and edge-level attribute names whose level is known (others: by size).


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


def shard_bounds(num_graphs: int, rank: int, world_size: int) -> Tuple[int, int]:
    """``(lo, hi)``: rank ``rank``'s contiguous share of ``num_graphs`` graphs (sizes differ by at most one,
    earlier ranks take the extra graphs, as :func:`torch.tensor_split`)."""
    base, extra = divmod(num_graphs, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def slice_graphs(batch: Batch, lo: int, hi: int) -> Batch:
    """Graphs ``lo..hi-1`` of a PyG ``Batch`` as a new ``Batch`` (:func:`dfkd.nn.select_graphs` of a
    contiguous range)."""
    num_graphs = int(batch.num_graphs)
    if not 0 <= lo < hi <= num_graphs:
        raise ValueError(f"graph slice {lo}:{hi} is outside a batch of {num_graphs} graphs")
    keep = torch.zeros(num_graphs, dtype=torch.bool, device=batch.batch.device)
    keep[lo:hi] = True
    return select_graphs(batch, keep)


def shard(batch: Batch, ctx: DistContext) -> Tuple[Batch, int]:
    """This rank's share of a global batch and the number of its graphs that count.

    A rank left without graphs (a final batch smaller than the world) gets graph 0 with count 0: it
    still runs forward/backward (DDP needs every rank in every gradient all-reduce) but its loss is
    scaled to nothing.
    """
    lo, hi = shard_bounds(int(batch.num_graphs), ctx.rank, ctx.world_size)
    if hi > lo:
        return slice_graphs(batch, lo, hi), hi - lo
    return slice_graphs(batch, 0, 1), 0


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


def check_finite_all(terms: Dict[str, Tensor], where: str, advice: str) -> None:
    """:func:`dfkd.utils.check_finite` agreed by every rank (one rank's NaN stops them all, no deadlock)."""
    from dfkd.utils import check_finite

    values = list(terms.values())
    bad = torch.tensor([0.0 if all(bool(torch.isfinite(v).all()) for v in values) else 1.0],
                       device=values[0].device if values else "cpu")
    dist.all_reduce(bad, op=dist.ReduceOp.SUM)
    if bad.item():
        check_finite(terms, where, advice)  # raises with the terms' names on the rank that saw them
        raise FloatingPointError(f"{where}: non-finite loss on another rank; {advice}")


def average_gradients(params) -> None:
    """Average the ``.grad`` of ``params`` over the ranks (one flat all-reduce); missing grads count as 0."""
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()


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
