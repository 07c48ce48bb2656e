"""Accuracy, the majority-class baseline, teacher agreement, relative and chance-adjusted accuracy, model
size and latency; for regression models MAE, RMSE and R² against the targets and the student's R² / MAE
against the teacher's outputs."""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from dfkd.nn import count_parameters, forward_batch, use_precision


@torch.no_grad()
def predict(model: nn.Module, graphs: Sequence, batch_size: int = 256, device: str = "cpu") -> Tensor:
    """Model outputs for every graph, in order: ``[G, C]`` on CPU. The model is put in eval mode and runs in
    float32 whatever the global precision: evaluation scores the model as it ships."""
    model.eval()
    with use_precision("fp32"):
        outs = [forward_batch(model, batch.to(device)).cpu() for batch in DataLoader(graphs, batch_size=batch_size)]
    return torch.cat(outs) if outs else torch.zeros(0)


def labels_of(graphs: Sequence) -> Tensor:
    """Graph labels ``[G]``."""
    return torch.cat([g.y.view(-1) for g in graphs]) if len(graphs) else torch.zeros(0, dtype=torch.long)


def targets_of(graphs: Sequence) -> Tensor:
    """Regression targets ``[G, T]`` (float) of graphs whose ``y`` is ``[T]`` or ``[1, T]``."""
    if not len(graphs):
        return torch.zeros(0, 1)
    return torch.cat([g.y.view(1, -1).float() for g in graphs])


def is_regression_target(y: Tensor) -> bool:
    """Whether graph targets are regression values (floating point) rather than class indices."""
    return torch.is_floating_point(y)


def regression_metrics(pred: Tensor, target: Tensor) -> Dict[str, float]:
    r"""``{"mae", "rmse", "r2"}`` of predictions against targets.

    :math:`R^2 = 1 - \sum (y - \hat y)^2 / \sum (y - \bar y)^2`, per output column and averaged over
    columns (NaN when a column's targets are constant); MAE and RMSE over all entries.

    Shapes: pred, target ``[G]`` or ``[G, T]`` (same number of entries) → floats.
    """
    pred = pred.detach().float().reshape(target.shape[0], -1).cpu()
    target = target.detach().float().reshape(target.shape[0], -1).cpu()
    if target.numel() == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "r2": float("nan")}
    err = pred - target
    ss_res = (err ** 2).sum(0)
    ss_tot = ((target - target.mean(0)) ** 2).sum(0)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp(min=1e-30), torch.full_like(ss_tot, float("nan")))
    return {"mae": float(err.abs().mean()), "rmse": float((err ** 2).mean().sqrt()), "r2": float(r2.mean())}


def compare_regression(student: Tensor, teacher: Optional[Tensor], target: Tensor) -> Dict[str, float]:
    """Regression scores of a student, and of its teacher when given, on the same graphs.

    Keys: ``r2``, ``mae``, ``rmse`` (student vs targets); with a teacher also ``teacher_r2``,
    ``teacher_mae``, ``teacher_rmse``, ``agreement_r2`` and ``agreement_mae`` (student vs the teacher's
    outputs: how well the student imitates it) and ``relative_r2`` = student R² / teacher R²
    (NaN when the teacher's R² is not positive). These mirror accuracy, agreement and relative accuracy
    of classification.

    Shapes: student, teacher, target ``[G, T]`` → floats.
    """
    out = regression_metrics(student, target)
    if teacher is not None:
        t = regression_metrics(teacher, target)
        agree = regression_metrics(student, teacher)
        out.update({"teacher_r2": t["r2"], "teacher_mae": t["mae"], "teacher_rmse": t["rmse"],
                    "agreement_r2": agree["r2"], "agreement_mae": agree["mae"],
                    "relative_r2": out["r2"] / t["r2"] if t["r2"] > 0 and not math.isnan(out["r2"]) else float("nan")})
    return out


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of ``argmax(logits) == labels``."""
    if labels.numel() == 0:
        return float("nan")
    return int((logits.argmax(-1) == labels.view(-1)).sum()) / labels.numel()  # exact: counts, not a float32 mean


def majority_accuracy(labels: Tensor) -> float:
    """Accuracy of always predicting the most frequent class of ``labels`` ``[G]``: the chance level a
    classifier must beat on these graphs."""
    if labels.numel() == 0:
        return float("nan")
    return float(torch.bincount(labels.view(-1).long()).max()) / labels.numel()


def chance_adjusted(student_accuracy: float, teacher_accuracy: float, majority: float) -> float:
    r"""Share of the teacher's gain over chance that the student keeps:
    :math:`(a_S - a_{maj}) / (a_T - a_{maj})`.

    1 means the student is as far above always-predict-majority as the teacher, 0 that it is no better
    than chance, negative that it is below. NaN when the teacher is not above the majority class (then
    nothing can be kept and the figure means nothing).
    """
    gain = teacher_accuracy - majority
    return (student_accuracy - majority) / gain if gain > 0 else float("nan")


# Teachers whose gain over the majority class is below this make student figures noise; tables flag them.
WEAK_TEACHER_GAIN = 0.05


def classification_metrics(student: Tensor, teacher: Optional[Tensor], labels: Tensor) -> Dict[str, float]:
    """Scores of a classifier, and of its teacher when given, on the same graphs.

    Keys: ``accuracy`` and ``majority_accuracy`` (:func:`majority_accuracy` of ``labels``); with a teacher
    also ``teacher_accuracy``, ``agreement`` (share of graphs on which both predict the same class),
    ``relative_accuracy`` = student / teacher accuracy and ``chance_adjusted_accuracy``
    (:func:`chance_adjusted`).

    Shapes: student, teacher ``[G, C]`` logits, labels ``[G]`` → floats.
    """
    s_acc, majority = accuracy(student, labels), majority_accuracy(labels)
    out = {"accuracy": s_acc, "majority_accuracy": majority}
    if teacher is not None:
        t_acc = accuracy(teacher, labels)
        out.update({"teacher_accuracy": t_acc,
                    "agreement": accuracy(student, teacher.argmax(-1)),
                    "relative_accuracy": s_acc / t_acc if t_acc else float("nan"),
                    "chance_adjusted_accuracy": chance_adjusted(s_acc, t_acc, majority)})
    return out


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


# The score keys of a classification and of a regression evaluation, in display order.
CLASSIFICATION_SCORES = ("accuracy", "teacher_accuracy", "majority_accuracy", "agreement", "relative_accuracy",
                         "chance_adjusted_accuracy")
REGRESSION_SCORES = ("r2", "mae", "rmse", "teacher_r2", "teacher_mae", "teacher_rmse", "agreement_r2",
                     "agreement_mae", "relative_r2")


@dataclasses.dataclass
class EvalReport:
    """Result of :func:`evaluate`; ``teacher_*``, ``agreement*``, ``relative_*`` and ``chance_adjusted_*``
    need a teacher.

    Classification models fill ``accuracy``, ``majority_accuracy`` (always predicting the most frequent
    class of the scored graphs), ``agreement`` (same predicted class), ``relative_accuracy`` (student /
    teacher accuracy) and ``chance_adjusted_accuracy`` ((student − majority) / (teacher − majority)).
    Regression models (``task="regression"``) leave those ``None`` and fill ``mae``, ``rmse``, ``r2`` (and the
    teacher's), ``agreement_r2`` / ``agreement_mae`` (student against the teacher's outputs) and
    ``relative_r2`` (student R² / teacher R²). R² is already chance-adjusted: it is 1 minus the error
    relative to the constant predictor at the targets' mean, so ``relative_r2`` is the regression analogue
    of ``chance_adjusted_accuracy``.
    """

    num_graphs: int
    accuracy: Optional[float]
    parameters: int
    latency_ms: float
    teacher_accuracy: Optional[float] = None
    teacher_parameters: Optional[int] = None
    teacher_latency_ms: Optional[float] = None
    agreement: Optional[float] = None
    relative_accuracy: Optional[float] = None
    majority_accuracy: Optional[float] = None
    chance_adjusted_accuracy: Optional[float] = None
    task: str = "classification"
    mae: Optional[float] = None
    rmse: Optional[float] = None
    r2: Optional[float] = None
    teacher_mae: Optional[float] = None
    teacher_rmse: Optional[float] = None
    teacher_r2: Optional[float] = None
    agreement_r2: Optional[float] = None
    agreement_mae: Optional[float] = None
    relative_r2: Optional[float] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def metrics(self) -> Dict[str, float]:
        """The scores alone, keyed as :meth:`dfkd.Distiller.evaluate` keys them (``None`` fields left out)."""
        names = (CLASSIFICATION_SCORES if self.task == "classification"
                 else REGRESSION_SCORES)
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def evaluate(model: nn.Module, graphs: Sequence, teacher: Optional[nn.Module] = None,
             device: str = "cpu", measure_latency: bool = True) -> EvalReport:
    """Score ``model`` on labelled graphs, and compare with ``teacher`` when given.

    Classification (integer ``y``): see :func:`classification_metrics` (majority-class accuracy, agreement,
    relative and chance-adjusted accuracy). Regression (floating-point ``y``): MAE,
    RMSE and R² against the targets; agreement as R² and MAE of the student against the teacher's
    outputs; relative R² = student R² / teacher R² (see :func:`compare_regression`).
    """
    y = labels_of(graphs)
    logits = predict(model, graphs, device=device)
    regression = is_regression_target(y)
    report = EvalReport(
        num_graphs=len(graphs), accuracy=None, parameters=count_parameters(model),
        latency_ms=latency_ms(model, graphs, device=device) if measure_latency else float("nan"),
        task="regression" if regression else "classification",
    )
    t_logits = None
    if teacher is not None:
        t_logits = predict(teacher, graphs, device=device)
        report.teacher_parameters = count_parameters(teacher)
        report.teacher_latency_ms = latency_ms(teacher, graphs, device=device) if measure_latency else float("nan")
    scores = (compare_regression(logits, t_logits, targets_of(graphs)) if regression
              else classification_metrics(logits, t_logits, y))
    for key, value in scores.items():
        setattr(report, key, value)
    return report
