"""Accuracy, teacher agreement, relative accuracy, model size and latency."""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from dfkd.nn import count_parameters, forward_batch


@torch.no_grad()
def predict(model: nn.Module, graphs: Sequence, batch_size: int = 256, device: str = "cpu") -> Tensor:
    """Model outputs for every graph, in order: ``[G, C]`` on CPU. The model is put in eval mode."""
    model.eval()
    outs = [forward_batch(model, batch.to(device)).cpu() for batch in DataLoader(graphs, batch_size=batch_size)]
    return torch.cat(outs) if outs else torch.zeros(0)


def labels_of(graphs: Sequence) -> Tensor:
    """Graph labels ``[G]``."""
    return torch.cat([g.y.view(-1) for g in graphs]) if len(graphs) else torch.zeros(0, dtype=torch.long)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of ``argmax(logits) == labels``."""
    if labels.numel() == 0:
        return float("nan")
    return float((logits.argmax(-1) == labels).float().mean())


@torch.no_grad()
def latency_ms(model: nn.Module, graphs: Sequence, repeats: int = 50, device: str = "cpu") -> float:
    """Median wall time of one single-graph forward pass, in milliseconds."""
    model.eval()
    samples = [Batch.from_data_list([graphs[i % len(graphs)]]).to(device) for i in range(min(repeats, 3 * len(graphs)))]
    forward_batch(model, samples[0])  # warm-up
    times = []
    for sample in samples:
        start = time.perf_counter()
        forward_batch(model, sample)
        times.append(time.perf_counter() - start)
    times.sort()
    return 1000.0 * times[len(times) // 2]


@dataclasses.dataclass
class EvalReport:
    """Result of :func:`evaluate`; ``teacher_*``, ``agreement`` and ``relative_accuracy`` need a teacher."""

    num_graphs: int
    accuracy: float
    parameters: int
    latency_ms: float
    teacher_accuracy: Optional[float] = None
    teacher_parameters: Optional[int] = None
    teacher_latency_ms: Optional[float] = None
    agreement: Optional[float] = None
    relative_accuracy: Optional[float] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def evaluate(model: nn.Module, graphs: Sequence, teacher: Optional[nn.Module] = None,
             device: str = "cpu", measure_latency: bool = True) -> EvalReport:
    """Score ``model`` on labelled graphs, and compare with ``teacher`` when given.

    agreement = fraction of graphs where both predict the same class;
    relative accuracy = student accuracy / teacher accuracy.
    """
    y = labels_of(graphs)
    logits = predict(model, graphs, device=device)
    report = EvalReport(
        num_graphs=len(graphs), accuracy=accuracy(logits, y), parameters=count_parameters(model),
        latency_ms=latency_ms(model, graphs, device=device) if measure_latency else float("nan"),
    )
    if teacher is not None:
        t_logits = predict(teacher, graphs, device=device)
        report.teacher_accuracy = accuracy(t_logits, y)
        report.teacher_parameters = count_parameters(teacher)
        report.teacher_latency_ms = latency_ms(teacher, graphs, device=device) if measure_latency else float("nan")
        report.agreement = float((logits.argmax(-1) == t_logits.argmax(-1)).float().mean())
        report.relative_accuracy = report.accuracy / report.teacher_accuracy if report.teacher_accuracy else float("nan")
    return report
