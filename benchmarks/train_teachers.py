"""Train the benchmark teachers: GIN-5-64 on every standard fold of each dataset.

Writes one checkpoint per (dataset, fold) under ``--out`` (default
``benchmarks/runs/teachers/DATASET/ARCH-foldK.pt``; not in git), which later benchmarks reuse, and appends
one JSON line per (dataset, fold) to ``--raw`` (default ``runs/teachers.jsonl``, committed): test and
validation accuracy, the test fold's majority-class accuracy, the recipe and wall time. A fold already in
``--raw`` with the same recipe whose checkpoint exists is skipped. ``python benchmarks/regenerate.py``
writes ``results/teachers.md`` from the runs (:func:`render`).

    python benchmarks/train_teachers.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Dict, List

import torch

import dfkd
from dfkd.evaluate import WEAK_TEACHER_GAIN, labels_of, majority_accuracy
from dfkd.train import TrainConfig, recorded_splits, train_teacher

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_DATA_ROOT, HERE, RUNS, TEACHER_RECIPES, append_run, header_lines, mean_std,  # noqa: E402
                    provenance, read_runs, table, teacher_model_options, teacher_recipe)

RAW = os.path.join(RUNS, "teachers.jsonl")
GIN_PAPER = ("GIN paper (Xu et al. 2019, Table 1; best epoch chosen on the test folds, so optimistic): "
             "MUTAG 89.4 ± 5.6, PTC 64.6 ± 7.0, PROTEINS 76.2 ± 2.8, IMDB-B 75.1 ± 5.1, NCI1 82.7 ± 1.7.")


def teacher_path(root: str, dataset: str, arch: str, fold: int) -> str:
    return os.path.join(root, dataset, f"{arch}-fold{fold}.pt")


def run_key(run: Dict) -> tuple:
    """What identifies a run: a raw file holds at most one run per key."""
    return (run["dataset"], run["arch"], run["fold"], json.dumps(run["train"], sort_keys=True),
            json.dumps(run["model"], sort_keys=True))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(TEACHER_RECIPES))
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--arch", default="gin-5-64")
    parser.add_argument("--folds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--epochs", type=int, default=None, help="override the per-dataset epochs")
    parser.add_argument("--out", default=os.path.join(HERE, "runs", "teachers"), help="checkpoints (not in git)")
    parser.add_argument("--raw", default=RAW, help="JSON lines file the folds are appended to (default: "
                                                   "runs/teachers.jsonl)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    done = {run_key(r) for r in read_runs([args.raw]) if r.get("benchmark") == "teachers"}
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        recipe = teacher_recipe(name)
        if args.epochs:
            recipe["epochs"] = args.epochs
        config, model = TrainConfig(seed=0, **recipe), teacher_model_options(name)
        for fold in args.folds:
            path = teacher_path(args.out, name, args.arch, fold)
            run = dict(benchmark="teachers", dataset=name, arch=args.arch, fold=fold, train=config.to_dict(),
                       model=model, recipe=recipe)
            if run_key(run) in done and os.path.exists(path):
                continue
            start = time.perf_counter()
            result = train_teacher(dataset, args.arch, fold=fold, config=config, show_progress=False,
                                   dataset_name=name, **model)
            wall = time.perf_counter() - start
            result.checkpoint.save(path)
            _, _, test_idx = recorded_splits(dataset, result.checkpoint.provenance)
            run.update(test_accuracy=result.test_accuracy, val_accuracy=result.val_accuracy,
                       majority_accuracy=majority_accuracy(labels_of([dataset[i] for i in test_idx])),
                       test_graphs=len(test_idx), best_epoch=result.train_result.best_epoch, wall_s=wall,
                       **provenance())
            append_run(args.raw, run)
            print(f"{name} fold {fold}: test {result.test_accuracy:.4f} (majority {run['majority_accuracy']:.4f}, "
                  f"val {result.val_accuracy:.4f}, best epoch {run['best_epoch']}), {wall:.0f} s", flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/teachers.md, rendered by benchmarks/regenerate.py from the raw runs


def render(runs: List[Dict]) -> str:
    """``results/teachers.md``: per dataset, architecture and recipe, test accuracy over the folds (mean ± std),
    the test folds' majority-class accuracy, the teacher's gain over it (⚠ below
    ``dfkd.evaluate.WEAK_TEACHER_GAIN``), validation accuracy and wall time. A pure function of ``runs``
    (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "teachers"]
    groups: Dict[tuple, List[Dict]] = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["arch"], json.dumps(r["recipe"], sort_keys=True),
                json.dumps(r["model"], sort_keys=True))].append(r)
    order = list(TEACHER_RECIPES)
    rows = []
    for key in sorted(groups, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k)):
        items = sorted(groups[key], key=lambda r: (r["fold"], json.dumps(r, sort_keys=True)))
        test = statistics.mean(r["test_accuracy"] for r in items)
        majority = statistics.mean(r["majority_accuracy"] for r in items)
        gain = test - majority
        recipe = ", ".join(f"{k}={v}" for k, v in json.loads(key[2]).items())
        model = ", ".join(f"{k}={v}" for k, v in json.loads(key[3]).items())
        rows.append([key[0], key[1], len({r["fold"] for r in items}), mean_std([r["test_accuracy"] for r in items]),
                     f"{majority:.3f}", f"{gain:+.3f}" + (" ⚠" if gain < WEAK_TEACHER_GAIN else ""),
                     mean_std([r["val_accuracy"] for r in items]), recipe + (f"; {model}" if model else ""),
                     f"{sum(r['wall_s'] for r in items):.0f}"])
    lines = ["# Teachers", "", *header_lines(runs, ["teachers.jsonl"]),
             "- teachers trained on the standard 10-fold splits (train part minus a stratified 10% validation part "
             "that picks the best epoch, ties to the later epoch; test fold scored once). Checkpoints are written to "
             "`benchmarks/runs/teachers/` (not in git) and reused by later benchmarks.",
             "- majority: always predicting the test fold's most frequent class (mean over folds); gain: test "
             f"accuracy − majority, from the means; ⚠ marks teachers less than {WEAK_TEACHER_GAIN} above it, on which "
             "students' figures are noise. val accuracy: on the validation part, where the best epoch was chosen.",
             "- wall time: all folds of the row together, on the machines above, with whatever else ran on them.", "",
             *table(["dataset", "arch", "folds", "test accuracy (mean ± std)", "majority", "gain", "val accuracy",
                     "recipe", "wall time (s)"], rows), "",
             GIN_PAPER, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
