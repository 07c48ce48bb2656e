"""Supervised training of teacher models on real graphs."""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.loader import DataLoader

from dfkd.checkpoint import Checkpoint
from dfkd.config import Config
from dfkd.data import size_stats, split_indices, stratified_split
from dfkd.evaluate import accuracy, labels_of, predict
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


@dataclasses.dataclass
class TrainResult:
    """Best epoch (highest validation accuracy, latest on ties) and per-epoch history."""

    best_epoch: int
    best_val_accuracy: float
    best_val_loss: float
    history: List[dict]


def train_model(model: nn.Module, train_graphs: Sequence, val_graphs: Optional[Sequence] = None,
                config: Optional[TrainConfig] = None, show_progress: bool = True, device: str = "cpu") -> TrainResult:
    """Train ``model`` with cross-entropy; keep the weights of the best validation epoch.

    Without validation graphs the last epoch is kept. The model is left in eval mode.
    """
    config = config or TrainConfig()
    gen = seed_everything(config.seed)
    model.to(device)
    loader = DataLoader(list(train_graphs), batch_size=config.batch_size, shuffle=True, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, config.lr_step, 0.5) if config.lr_step > 0 else None
    best = (-1.0, float("inf"))
    best_state, best_epoch, history = None, config.epochs, []
    val_y = labels_of(val_graphs) if val_graphs else None
    bar = progress(range(1, config.epochs + 1), enabled=show_progress, desc="train")
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            batch = batch.to(device)
            if batch.num_graphs < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(forward_batch(model, batch), batch.y.view(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + loss.item() * batch.num_graphs, count + batch.num_graphs
        if sched:
            sched.step()
        row = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if val_graphs:
            logits = predict(model, val_graphs, device=device)
            row["val_accuracy"] = accuracy(logits, val_y)
            row["val_loss"] = float(F.cross_entropy(logits, val_y))
            # Ties go to the later epoch: on small validation sets accuracy saturates early,
            # and the later weights are better converged.
            if row["val_accuracy"] >= best[0]:
                best, best_epoch = (row["val_accuracy"], row["val_loss"]), epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_accuracy']:.3f}")
        history.append(row)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    logger.info("training done: best epoch %d, val accuracy %.4f", best_epoch, best[0])
    return TrainResult(best_epoch=best_epoch, best_val_accuracy=best[0], best_val_loss=best[1], history=history)


@dataclasses.dataclass
class TeacherResult:
    """A trained teacher, its checkpoint and its scores."""

    model: nn.Module
    checkpoint: Checkpoint
    test_accuracy: float
    val_accuracy: float
    train_result: TrainResult


def train_teacher(dataset, arch: str = "gin-5-64", fold: Optional[int] = None, holdout: Optional[float] = None,
                  config: Optional[TrainConfig] = None, val_ratio: float = 0.1, show_progress: bool = True,
                  device: str = "cpu", dataset_name: Optional[str] = None, **model_overrides) -> TeacherResult:
    """Train a teacher on one split of ``dataset`` and package it as a :class:`Checkpoint`.

    The split is the standard ``fold`` (1..10), a seeded stratified ``holdout``
    fraction, or fold 1 when neither is given. A stratified ``val_ratio`` of
    the training part selects the best epoch; the test part is scored once.
    """
    config = config or TrainConfig()
    train_idx, test_idx, split = split_indices(dataset, fold=fold, holdout=holdout, seed=config.seed)
    labels = dataset.labels
    fit_pos, val_pos = stratified_split([labels[i] for i in train_idx], val_ratio, seed=config.seed)
    fit = [dataset[train_idx[i]] for i in fit_pos]
    val = [dataset[train_idx[i]] for i in val_pos]
    test = [dataset[i] for i in test_idx]
    seed_everything(config.seed)
    model = build_model(arch, in_channels=dataset.num_features, out_channels=dataset.num_classes, **model_overrides)
    result = train_model(model, fit, val, config, show_progress=show_progress, device=device)
    test_acc = accuracy(predict(model, test, device=device), labels_of(test))
    name = dataset_name or getattr(dataset, "name", "unknown")
    checkpoint = Checkpoint.from_model(
        model,
        feature_spec=dataset.feature_spec,
        label_values=list(dataset.label_values),
        size_stats=size_stats([dataset[i] for i in train_idx]),
        provenance={"dataset": name, "split": split, "seed": config.seed, "train": config.to_dict(),
                    "val_accuracy": result.best_val_accuracy, "test_accuracy": test_acc,
                    "best_epoch": result.best_epoch, "dfkd_version": __version__},
    )
    return TeacherResult(model=model, checkpoint=checkpoint, test_accuracy=test_acc,
                         val_accuracy=result.best_val_accuracy, train_result=result)
