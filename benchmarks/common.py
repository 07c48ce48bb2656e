"""Shared helpers of the benchmark scripts: provenance of raw runs, holdout teachers, the tables' header lines,
grouping and markdown."""
from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from typing import Callable, ContextManager, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

import dfkd
from dfkd.train import TrainConfig, train_teacher

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "runs")  # committed raw runs (*.jsonl); sub-folders hold caches (git-ignored)
RESULTS = os.path.join(HERE, "results")
DEFAULT_DATA_ROOT = os.path.join(HERE, "..", "..", "shared", "datasets")
# Teacher recipes per dataset: GIN's (Adam 0.01, halved every 50 epochs, dropout 0.5), shortened on the
# larger sets so a 10-fold run fits in minutes on 2 CPU cores. Learning rate and dropout are the ones kept
# on validation graphs (results/teacher_recipes.md; tests/test_benchmarks.py checks the two agree).
TEACHER_RECIPES = {
    "MUTAG": dict(epochs=300, batch_size=32),
    "PTC": dict(epochs=300, batch_size=32),
    "PROTEINS": dict(epochs=150, batch_size=32),
    "IMDBBINARY": dict(epochs=150, batch_size=32),
    "NCI1": dict(epochs=100, batch_size=64),
}


# Model options of the teachers per dataset (e.g. dropout), beside the training recipe.
TEACHER_MODEL_OPTIONS: Dict[str, dict] = {}


def teacher_recipe(name: str) -> dict:
    """``TrainConfig`` arguments of the benchmark teachers of dataset ``name``."""
    return dict(TEACHER_RECIPES.get(name, dict(epochs=150, batch_size=32)))


def teacher_model_options(name: str) -> dict:
    """``build_model`` options of the benchmark teachers of dataset ``name``."""
    return dict(TEACHER_MODEL_OPTIONS.get(name, {}))


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
            f"Python {platform.python_version()}, torch {torch.__version__}, dfkd {dfkd.__version__}")


def command() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], os.path.join(HERE, ".."))] + sys.argv[1:])


def without_paths(command: str) -> str:
    """A run's recorded command without its own output, cache and data paths (``--raw``, ``--results``,
    ``--cache``, ``--data-root``, ``--out``), so the same benchmark run into different files reads as one
    command."""
    return re.sub(r" --(raw|results|data-root|cache|out) \S+", "", command)


def git_commit() -> str:
    """Short commit of the working tree, ``+dirty`` when tracked code (dfkd/, generators/, benchmarks/*.py)
    differs from it; ``unknown`` outside a git checkout."""
    root = os.path.join(HERE, "..")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dfkd", "generators",
                                "benchmarks/*.py"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


LOADED_COMMIT = git_commit()  # the code this process imported: later commits in the checkout do not change it


def provenance() -> Dict[str, str]:
    """What every raw run records about where and how it was made (``git_commit``: the checkout's commit
    when this benchmark process started, i.e. the code it runs)."""
    return {"machine": machine(), "command": command(), "dfkd_version": dfkd.__version__,
            "git_commit": LOADED_COMMIT, "date": datetime.date.today().isoformat()}


def read_runs(paths: Iterable[str]) -> List[Dict]:
    """Every JSON line of the raw-run files that exist, in file order."""
    runs: List[Dict] = []
    for path in paths:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                runs += [json.loads(line) for line in handle if line.strip()]
    return runs


def append_run(path: str, run: Dict) -> None:
    """Append one raw run as a JSON line (flushed at once: an interrupted benchmark keeps what finished)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(run, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def header_lines(runs: Sequence[Dict], raw_files: Sequence[str], code: bool = True,
                 tags: Optional[Dict[str, str]] = None) -> List[str]:
    """The provenance lines a generated table starts with: the raw files it is rendered from (names under
    ``benchmarks/runs/`` or repository paths), the commands that made its runs (:func:`without_paths`), their
    machines (named by their ``tags``, see :func:`machine_tags`, when given) and, with ``code``, their commits
    and dates. Sorted: the same runs give the same lines."""
    shown = [f if "/" in f else f"benchmarks/runs/{f}" for f in raw_files]
    lines = [f"- written by: `python benchmarks/regenerate.py` from {', '.join(f'`{s}`' for s in shown)}",
             *(f"- runs made by: `{c}`" for c in sorted({without_paths(r['command']) for r in runs})),
             *(f"- machine {tags[m]}: {m}" if tags else f"- machine: {m}" for m in sorted({r['machine'] for r in runs}))]
    if code:
        lines.append(f"- code: commits {', '.join(sorted({r['git_commit'] for r in runs}))}; dates "
                     f"{', '.join(sorted({r['date'] for r in runs}))}")
    return lines


def speedup(a: float, b: float) -> str:
    """``a / b`` as ``1.23×`` (``-`` when ``b`` is 0)."""
    return f"{a / b:.2f}×" if b else "-"


def settings(runs: Sequence[Dict], field: str) -> str:
    """The distinct values of ``field`` over ``runs``, sorted, comma-separated: a table's settings line."""
    return ", ".join(map(str, sorted({r[field] for r in runs})))


def machine_tags(runs: Sequence[Dict]) -> Dict[str, str]:
    """``M1``, ``M2``, ... per machine (sorted) when ``runs`` come from several machines, else ``{}``: timing
    tables keep the machines' figures apart, in rows tagged with their machine."""
    machines = sorted({r["machine"] for r in runs})
    return {m: f"M{i}" for i, m in enumerate(machines, 1)} if len(machines) > 1 else {}


def grouped(runs: Iterable[Dict], key: Callable[[Dict], tuple], tags: Optional[Dict[str, str]] = None,
            order: Optional[Callable[[tuple], object]] = None) -> List[Tuple[tuple, List[Dict]]]:
    """``runs`` grouped by ``key(run)`` + their machine's tag (``""`` without ``tags``), sorted by the key (or
    ``order(key)``): the rows of a table, independent of the order of the runs."""
    groups: Dict[tuple, List[Dict]] = defaultdict(list)
    for r in runs:
        groups[tuple(key(r)) + ((tags or {}).get(r["machine"], ""),)].append(r)
    return sorted(groups.items(), key=lambda item: order(item[0]) if order else item[0])


def load_average() -> Optional[float]:
    """The machine's 1-minute load average now (timing runs record it: other jobs slow them down)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def load_note(runs: Sequence[Dict]) -> List[str]:
    """A header line with the range of the runs' recorded load averages (none when none was recorded)."""
    loads = sorted(r["load_average"] for r in runs if r.get("load_average") is not None)
    if not loads:
        return []
    span = f"{loads[0]:.1f}" if loads[0] == loads[-1] else f"{loads[0]:.1f}-{loads[-1]:.1f}"
    return [f"- load average (1 min) when each measurement started: {span} (other jobs on the cores slow every "
            "figure; ratios measured side by side in one run move less than absolute figures)"]


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def repeat_note(groups: Iterable[Sequence]) -> List[str]:
    """A header line saying how many runs each row pools (its figures: their median), when any pools several."""
    sizes = sorted({len(g) for g in groups})
    if not sizes or sizes == [1]:
        return []
    return [f"- every row: the median of its runs ({', '.join(map(str, sizes))} runs per row; commits and dates "
            "above)"]


def mean_std(values: Sequence[float]) -> str:
    values = list(values)
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def holdout_teacher(dataset, name: str, arch: str, seed: int, cache: str) -> dfkd.Checkpoint:
    """GFKD protocol: a teacher trained on a stratified 70% (seeded) and tested on the other 30%. Cached."""
    return _cached_teacher(dataset, name, arch, cache, f"holdout-seed{seed}", holdout=0.3, seed=seed)


def fold_teacher(dataset, name: str, arch: str, fold: int, cache: str) -> dfkd.Checkpoint:
    """DFAD-GNN protocol: a teacher trained on the nine other standard folds, tested on ``fold``. Cached."""
    return _cached_teacher(dataset, name, arch, cache, f"fold{fold}", fold=fold, seed=0)


def _cached_teacher(dataset, name: str, arch: str, cache: str, tag: str, seed: int, **split) -> dfkd.Checkpoint:
    path = os.path.join(cache, f"{name}-{arch}-{tag}.pt")
    if not os.path.exists(path):
        config = TrainConfig(seed=seed, **teacher_recipe(name))
        os.makedirs(cache, exist_ok=True)
        train_teacher(dataset, arch, config=config, show_progress=False, dataset_name=name,
                      **split, **teacher_model_options(name)).checkpoint.save(path)
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


@functools.lru_cache(maxsize=None)
def mutag_teacher() -> str:
    """Path of the seed-0 MUTAG GIN-5-64 hold-out teacher the speed and memory benchmarks use (the
    distillation benchmark's cached one; trained first when missing, e.g. in a fresh clone)."""
    cache = os.path.join(HERE, "runs", "holdout_teachers")
    holdout_teacher(dfkd.load_dataset("MUTAG"), "MUTAG", "gin-5-64", 0, cache)
    return os.path.join(cache, "MUTAG-gin-5-64-holdout-seed0.pt")
