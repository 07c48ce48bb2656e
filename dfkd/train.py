"""Supervised training of teacher models on real graphs: classification (cross-entropy, accuracy) and
graph regression (MSE; MAE, RMSE and R²)."""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.loader import DataLoader

from dfkd.checkpoint import Checkpoint
from dfkd.config import Config
from dfkd.data import is_regression_dataset, size_stats, split_indices, stratified_split
from dfkd.evaluate import accuracy, is_regression_target, labels_of, predict, regression_metrics, targets_of
from dfkd.nn import build_model, forward_batch
from dfkd.version import __version__
from dfkd.utils import progress, seed_everything

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig(Config):
    """Teacher training recipe (defaults follow GIN: Adam 0.01, halved every 50 epochs).

    Args:
        epochs: passes over the training graphs.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: graphs per step.
        lr_step: epochs between learning-rate halvings (0 = constant).
        seed: seeds initialisation and shuffling.
    """

    epochs: int = 300
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 32
    lr_step: int = 50
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"invalid training config: epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}")


TASKS = ("classification", "regression")


@dataclasses.dataclass
class TrainResult:
    """Best epoch and per-epoch history.

    Classification keeps the highest validation accuracy (latest on ties); regression the lowest
    validation MSE (latest on ties), with ``best_val_accuracy`` NaN and the validation MAE / RMSE / R²
    in ``best_val_metrics``.
    """

    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float
    history: List[dict]
    task: str = "classification"
    best_val_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)


def _resolve_task(task: Optional[str], graphs: Sequence) -> str:
    if task is None:
        return "regression" if len(graphs) and is_regression_target(graphs[0].y) else "classification"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: choose classification or regression")
    return task


def train_model(model: nn.Module, train_graphs: Sequence, val_graphs: Optional[Sequence] = None,
                config: Optional[TrainConfig] = None, show_progress: bool = True, device: str = "cpu",
                task: Optional[str] = None) -> TrainResult:
    """Train ``model`` and keep the weights of the best validation epoch.

    ``task`` ``classification`` trains with cross-entropy against integer ``y``; ``regression`` with
    the MSE between the ``[B, T]`` outputs and float ``y`` (``[T]`` per graph); ``None`` picks
    regression when the graphs' ``y`` is floating point. Without validation graphs the last epoch is
    kept. The model is left in eval mode.
    """
    config = config or TrainConfig()
    regression = _resolve_task(task, train_graphs) == "regression"
    gen = seed_everything(config.seed)
    model.to(device)
    loader = DataLoader(list(train_graphs), batch_size=config.batch_size, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, config.lr_step, 0.5) if config.lr_step > 0 else None
    best_score, best_val = -float("inf"), {}
    best_state, best_epoch, history = None, config.epochs, []
    val_y = (targets_of if regression else labels_of)(val_graphs) if val_graphs else None
    bar = progress(range(1, config.epochs + 1), enabled=show_progress, desc="train")
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            batch = batch.to(device)
            if batch.num_graphs < 2:  # BatchNorm needs two samples
                continue
            out = forward_batch(model, batch)
            loss = _regression_loss(out, batch.y) if regression else F.cross_entropy(out, batch.y.view(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * batch.num_graphs, count + batch.num_graphs
        if sched:
            sched.step()
        row: Dict[str, Any] = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if val_graphs:
            val, score, shown = _validate(predict(model, val_graphs, device=device), val_y, regression)
            row.update(val)
            # Ties go to the later epoch: on small validation sets accuracy saturates early,
            # and the later weights are better converged.
            if score >= best_score:
                best_score, best_val, best_epoch = score, val, epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", **shown)
        history.append(row)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    best_loss = best_val.get("val_loss", float("inf"))
    if regression:
        metrics = {k[4:]: v for k, v in best_val.items() if k != "val_loss"}
        logger.info("training done: best epoch %d, val MSE %.4f, R² %.4f", best_epoch, best_loss,
                    metrics.get("r2", float("nan")))
        return TrainResult(best_epoch=best_epoch, best_val_accuracy=float("nan"), best_val_loss=best_loss,
                           history=history, task="regression", best_val_metrics=metrics)
    best_accuracy = best_val.get("val_accuracy", -1.0)
    logger.info("training done: best epoch %d, val accuracy %.4f", best_epoch, best_accuracy)
    return TrainResult(best_epoch=best_epoch, best_val_accuracy=best_accuracy, best_val_loss=best_loss,
                       history=history)


def _validate(logits: Tensor, y: Tensor, regression: bool) -> Tuple[Dict[str, float], float, Dict[str, str]]:
    """Validation row (``val_*``), the score the best epoch maximises (accuracy; regression: -MSE) and
    what the progress bar shows."""
    if regression:
        metrics = regression_metrics(logits, y)
        val = {"val_loss": metrics["rmse"] ** 2, **{f"val_{k}": v for k, v in metrics.items()}}
        return val, -val["val_loss"], {"val_r2": f"{metrics['r2']:.3f}"}
    val = {"val_accuracy": accuracy(logits, y), "val_loss": float(F.cross_entropy(logits, y))}
    return val, val["val_accuracy"], {"val": f"{val['val_accuracy']:.3f}"}


def _regression_loss(out: Tensor, y: Tensor) -> Tensor:
    """MSE between ``[B, T]`` outputs and targets ``[B]``/``[B, T]``; a one-line error when widths differ."""
    if y.numel() != out.numel():
        raise ValueError(f"the model gives {out.size(-1)} output(s) per graph but the targets have "
                         f"{y.numel() // max(out.size(0), 1)}: build it with out_channels = number of targets")
    return F.mse_loss(out, y.view(out.shape).to(out.dtype))


@dataclasses.dataclass
class TeacherResult:
    """A trained teacher, its checkpoint and its scores.

    Regression teachers have ``test_accuracy`` and ``val_accuracy`` NaN and their MAE / RMSE / R² in
    ``test_metrics`` and ``val_metrics`` (classification: ``{"accuracy": ...}`` there too).
    """

    model: nn.Module
    checkpoint: Checkpoint
    test_accuracy: float
    val_accuracy: float
    train_result: TrainResult
    task: str = "classification"
    test_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)
    val_metrics: Dict[str, float] = dataclasses.field(default_factory=dict)


def train_teacher(dataset, arch: str = "gin-5-64", fold: Optional[int] = None, holdout: Optional[float] = None,
                  config: Optional[TrainConfig] = None, val_ratio: float = 0.1, show_progress: bool = True,
                  device: str = "cpu", dataset_name: Optional[str] = None, task: Optional[str] = None,
                  **model_overrides) -> TeacherResult:
    """Train a teacher on one split of ``dataset`` and package it as a :class:`Checkpoint`.

    The split is the standard ``fold`` (1..10), a seeded stratified ``holdout``
    fraction, or fold 1 when neither is given. A stratified ``val_ratio`` of
    the training part selects the best epoch; the test part is scored once.

    ``task``: ``classification`` or ``regression``; ``None`` takes the dataset's ``task`` attribute, else
    regression when its targets are floating point (:func:`dfkd.data.is_regression_dataset`). A
    regression teacher has ``dataset.num_targets`` outputs (1 for the ``SYNTH:`` tasks), its head bias
    starts at the mean training target, it trains on the MSE and is scored by MAE, RMSE and R²; its
    checkpoint has ``task="regression"`` and no ``label_values``, and its provenance records the test
    scores and the training targets' mean and standard deviation.
    """
    config = config or TrainConfig()
    if task is None:
        task = "regression" if is_regression_dataset(dataset) else "classification"
    elif task not in TASKS:
        raise ValueError(f"unknown task {task!r}: choose classification or regression")
    regression = task == "regression"
    if not 0.0 < val_ratio < 1.0:  # NaN fails too
        raise ValueError(f"--val-ratio (validation fraction of the training split) must be in (0, 1), got {val_ratio}")
    train_idx, test_idx, split = split_indices(dataset, fold=fold, holdout=holdout, seed=config.seed)
    fit_idx, val_idx = _validation_split(dataset, train_idx, val_ratio, config.seed)
    fit = [dataset[i] for i in fit_idx]
    val = [dataset[i] for i in val_idx]
    test = [dataset[i] for i in test_idx]
    seed_everything(config.seed)
    if regression:
        out_channels = getattr(dataset, "num_targets", None) or targets_of(fit[:1]).size(-1)
    else:
        out_channels = dataset.num_classes
    model = build_model(arch, in_channels=dataset.num_features, out_channels=out_channels, **model_overrides)
    train_targets = targets_of([dataset[i] for i in train_idx]) if regression else None
    if regression and isinstance(getattr(model, "head", None), nn.Linear):
        with torch.no_grad():  # start at the mean target: the MSE need not climb to the offset first
            model.head.bias.copy_(targets_of(fit).mean(0))
    result = train_model(model, fit, val, config, show_progress=show_progress, device=device, task=task)
    name = dataset_name or getattr(dataset, "name", "unknown")
    provenance: Dict[str, Any] = {"dataset": name, "split": split, "seed": config.seed, "train": config.to_dict(),
                                  "val_ratio": val_ratio, "best_epoch": result.best_epoch, "dfkd_version": __version__}
    if regression:
        test_metrics = regression_metrics(predict(model, test, device=device), targets_of(test))
        val_metrics = dict(result.best_val_metrics)
        test_acc, val_acc = float("nan"), float("nan")
        provenance.update({"task": "regression", **{f"val_{k}": v for k, v in val_metrics.items()},
                           **{f"test_{k}": v for k, v in test_metrics.items()},
                           "target_mean": float(train_targets.mean()),
                           "target_std": float(train_targets.std(unbiased=False))})
        label_values: List[Any] = []
    else:
        test_acc = accuracy(predict(model, test, device=device), labels_of(test))
        val_acc = result.best_val_accuracy
        test_metrics, val_metrics = {"accuracy": test_acc}, {"accuracy": val_acc}
        provenance.update({"val_accuracy": val_acc, "test_accuracy": test_acc})
        label_values = list(dataset.label_values)
    checkpoint = Checkpoint.from_model(
        model,
        task=task,
        feature_spec=dataset.feature_spec,
        label_values=label_values,
        size_stats=size_stats([dataset[i] for i in train_idx]),
        provenance=provenance,
    )
    return TeacherResult(model=model, checkpoint=checkpoint, test_accuracy=test_acc, val_accuracy=val_acc,
                         train_result=result, task=task, test_metrics=test_metrics, val_metrics=val_metrics)


def _validation_split(dataset, train_idx: Sequence[int], val_ratio: float, seed: int) -> Tuple[List[int], List[int]]:
    """Dataset indices of the part of ``train_idx`` a teacher fits and of the stratified ``val_ratio`` that
    picks its best epoch."""
    labels = dataset.labels
    fit_pos, val_pos = stratified_split([labels[i] for i in train_idx], val_ratio, seed=seed)
    return [train_idx[i] for i in fit_pos], [train_idx[i] for i in val_pos]


def recorded_splits(dataset, provenance: Dict[str, Any]) -> Tuple[List[int], List[int], List[int]]:
    """``(fit, val, test)`` dataset indices of a teacher that :func:`train_teacher` trained on ``dataset``,
    from its checkpoint's provenance: the graphs its weights were fitted on, the validation graphs that
    only chose its best epoch, and the test graphs it never saw.

    The validation graphs are the ones a benchmark may tune student settings on: no student trains on
    them and they are not the reported test graphs. Raises ``ValueError`` when the provenance records no
    split or no validation ratio (teachers from elsewhere, or saved by an older dfkd).
    """
    split, val_ratio = provenance.get("split"), provenance.get("val_ratio")
    if not split or val_ratio is None:
        raise ValueError("the checkpoint records no training split and validation ratio: train the teacher with "
                         "dfkd (train_teacher) to get its validation graphs")
    from dfkd.data import split_from_record

    train_idx, test_idx = split_from_record(dataset, split)
    fit_idx, val_idx = _validation_split(dataset, train_idx, float(val_ratio), int(provenance.get("seed", 0)))
    return fit_idx, val_idx, test_idx
