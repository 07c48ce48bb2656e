"""Shared helpers of the benchmark scripts: machine description, holdout teachers, markdown tables."""
from __future__ import annotations

import os
import platform
import statistics
import sys
from typing import List, Sequence

import torch

import dfkd
from dfkd.train import TrainConfig, train_teacher

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_ROOT = os.path.join(HERE, "..", "..", "shared", "datasets")
TEACHER_EPOCHS = {"MUTAG": 300, "PTC": 300, "PROTEINS": 150, "IMDBBINARY": 150, "NCI1": 100}


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
            f"Python {platform.python_version()}, torch {torch.__version__}, dfkd {dfkd.__version__}")


def command() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], os.path.join(HERE, ".."))] + sys.argv[1:])


def mean_std(values: Sequence[float]) -> str:
    values = list(values)
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def holdout_teacher(dataset, name: str, arch: str, seed: int, cache: str) -> dfkd.Checkpoint:
    """GFKD protocol: a teacher trained on a stratified 70% (seeded) and tested on the other 30%. Cached."""
    path = os.path.join(cache, f"{name}-{arch}-holdout-seed{seed}.pt")
    if not os.path.exists(path):
        config = TrainConfig(epochs=TEACHER_EPOCHS.get(name, 150), seed=seed)
        train_teacher(dataset, arch, holdout=0.3, config=config, show_progress=False,
                      dataset_name=name).checkpoint.save(path)
    return dfkd.load_checkpoint(path)


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out
