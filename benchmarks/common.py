"""Shared helpers of the benchmark scripts: machine description, holdout teachers, markdown tables."""
from __future__ import annotations

import functools
import os
import platform
import statistics
import sys
import time
from typing import Callable, ContextManager, Dict, List, Sequence

import torch

import dfkd
from dfkd.train import TrainConfig, train_teacher

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_ROOT = os.path.join(HERE, "..", "..", "shared", "datasets")
# Teacher recipes per dataset: GIN's (Adam, halved every 50 epochs), shortened on the larger sets so a
# 10-fold run fits in minutes on 2 CPU cores; PTC needs lr 0.001 (0.01 overfits: 0.53 vs 0.61, 10 folds).
TEACHER_RECIPES = {
    "MUTAG": dict(epochs=300, batch_size=32),
    "PTC": dict(epochs=300, batch_size=32, lr=0.001),
    "PROTEINS": dict(epochs=150, batch_size=32),
    "IMDBBINARY": dict(epochs=150, batch_size=32),
    "NCI1": dict(epochs=100, batch_size=64),
}


def teacher_recipe(name: str) -> dict:
    return dict(TEACHER_RECIPES.get(name, dict(epochs=150, batch_size=32)))


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
        config = TrainConfig(seed=seed, **teacher_recipe(name))
        train_teacher(dataset, arch, holdout=0.3, config=config, show_progress=False,
                      dataset_name=name).checkpoint.save(path)
    return dfkd.load_checkpoint(path)


def alternating_medians(fn: Callable[[], object], repeats: int,
                        settings: Dict[str, Callable[[], ContextManager]]) -> Dict[str, float]:
    """Median seconds per call of ``fn`` under each setting (a context-manager factory), one warm-up call
    each, then the settings alternating call by call so all see the same machine load."""
    times: Dict[str, List[float]] = {name: [] for name in settings}
    for name, setting in settings.items():
        with setting():
            fn()
    for _ in range(repeats):
        for name, setting in settings.items():
            with setting():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def table(header: List[str], rows: List[List[str]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def write_results(path: str, lines: List[str]) -> None:
    """Write a results markdown file (folders made as needed) and say where."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


@functools.lru_cache(maxsize=None)
def mutag_teacher() -> str:
    """Path of the seed-0 MUTAG GIN-5-64 hold-out teacher the speed and memory benchmarks use (the
    distillation benchmark's cached one; trained first when missing, e.g. in a fresh clone)."""
    cache = os.path.join(HERE, "runs", "holdout_teachers")
    holdout_teacher(dfkd.load_dataset("MUTAG"), "MUTAG", "gin-5-64", 0, cache)
    return os.path.join(cache, "MUTAG-gin-5-64-holdout-seed0.pt")
