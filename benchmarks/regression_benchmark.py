"""Data-free distillation of graph-regression teachers (issue 6), on the synthetic tasks dfkd makes.

For every task (``SYNTH:TRIANGLES``: triangles per node, ``SYNTH:CLUSTERING``: average clustering) and
seed: train (or reuse) a GIN regression teacher on a stratified 70% (10% of it for epoch selection),
distil a student with each method and score it on the other 30%: R², MAE and RMSE of teacher and
student against the exact targets, relative R² (student / teacher) and agreement R² (student against
the teacher's outputs). Methods: ``prior`` (dfkd's default: teacher-prior graphs, pools stratified
over the teacher's output range), ``prior-no-balance`` (ablation: no stratification), ``gfkd``
(value targets spread over the teacher's range), ``dfad`` (L1 discrepancy), ``random`` (Erdős–Rényi,
the floor) and ``real`` (KD on the real training split, the ceiling).

    python benchmarks/regression_benchmark.py --seeds 0 1 2 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

import torch

import dfkd
from dfkd.data import split_indices
from dfkd.distill import DistillConfig, distill_student
from dfkd.train import TrainConfig, train_teacher

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, command, machine, mean_std, table  # noqa: E402

METHODS = {
    "prior": dict(generator="prior", options={}),
    "prior-no-balance": dict(generator="prior", options={"balance": 1}),
    "gfkd": dict(generator="gfkd", options={}),
    "dfad": dict(generator="dfad", options={}),
    "dfad-unbounded": dict(generator="dfad", options={"output_bound": False}),
    "random": dict(generator="random", options={}),
    "real": dict(generator=None, options={}),
}
TEACHER_RECIPE = dict(epochs=150, batch_size=32)


def regression_teacher(dataset, name: str, arch: str, seed: int, cache: str) -> dfkd.Checkpoint:
    """A regression teacher on a stratified 70% of ``dataset`` (seeded), cached by name/arch/seed."""
    path = os.path.join(cache, f"{name.replace(':', '_')}-{arch}-holdout-seed{seed}.pt")
    if not os.path.exists(path):
        train_teacher(dataset, arch, holdout=0.3, config=TrainConfig(seed=seed, **TEACHER_RECIPE),
                      show_progress=False, dataset_name=name).checkpoint.save(path)
    return dfkd.load_checkpoint(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["SYNTH:TRIANGLES", "SYNTH:CLUSTERING"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--teacher", default="gin-5-64")
    p.add_argument("--student", default="gin-2-32")
    p.add_argument("--num-graphs", type=int, default=256)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--cache", default=os.path.join(HERE, "runs", "regression_teachers"))
    p.add_argument("--results", default=os.path.join(HERE, "results", "archive", "regression.md"))
    p.add_argument("--raw", default=None, help="append every run as a JSON line; runs already there are skipped")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    runs = []
    if args.raw and os.path.exists(args.raw):
        with open(args.raw, encoding="utf-8") as handle:
            runs = [json.loads(line) for line in handle if line.strip()]
    done = {(r["dataset"], r["seed"], r["method"]) for r in runs}
    for name in args.datasets:
        dataset = dfkd.load_dataset(name)
        for seed in args.seeds:
            teacher = regression_teacher(dataset, name, args.teacher, seed, args.cache)
            train_idx, test_idx, _ = split_indices(dataset, holdout=0.3, seed=seed)
            test = [dataset[i] for i in test_idx]
            for method in args.methods:
                if (name, seed, method) in done:
                    continue
                spec = METHODS[method]
                start = time.perf_counter()
                result = distill_student(
                    teacher, args.student, generator=spec["generator"] or "random", num_graphs=args.num_graphs,
                    generator_options=dict(spec["options"]), config=DistillConfig(epochs=args.epochs, seed=seed),
                    eval_graphs=test, real_graphs=[dataset[i] for i in train_idx] if method == "real" else None,
                    show_progress=False)
                run = dict(dataset=name, seed=seed, teacher=args.teacher, student=args.student, method=method,
                           **result.report.final, wall_s=time.perf_counter() - start, epochs=args.epochs,
                           machine=machine(), command=command())
                runs.append(run)
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in run.items()}),
                      flush=True)
                if args.raw:
                    with open(args.raw, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(run) + "\n")
                write(args, runs)
    write(args, runs)
    return 0


def write(args, runs) -> None:
    groups = defaultdict(list)
    for run in runs:
        groups[(run["dataset"], run["method"])].append(run)
    order = {m: i for i, m in enumerate(METHODS)}
    rows = []
    for (name, method), items in sorted(groups.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 99))):
        col = lambda key: mean_std([r[key] for r in items])  # noqa: E731
        rows.append([name, method, len(items), col("teacher_r2"), col("teacher_mae"), col("r2"), col("mae"),
                     col("relative_r2"), col("agreement_r2"), f"{sum(r['wall_s'] for r in items) / len(items):.0f}"])
    lines = ["# Data-free distillation of regression teachers", "",
             f"- command: `{command()}`", f"- machine: {machine()}",
             f"- protocol: per seed, a {args.teacher} regression teacher trained on a stratified 70% of the task "
             f"(10% of it for epoch selection, {TEACHER_RECIPE['epochs']} epochs), a {args.student} student "
             f"distilled on {args.num_graphs} synthetic graphs per epoch for {args.epochs} epochs (loss `mse`), "
             "both scored on the other 30% against the exact targets. Tasks are made by "
             "`dfkd.data.make_regression_dataset` (1000 graphs of five random-graph families, three node types).",
             "- relative R² = student R² / teacher R²; agreement R² = R² of the student's outputs against the "
             "teacher's outputs on the test graphs.",
             "- `dfad`: the game bounded to the teacher's output range on the generator's starting graphs "
             "(`output_bound`, the default since 2026-11-30); `dfad-unbounded`: DFAD-GNN's plain L1 "
             "(`output_bound=False`), the default before.",
             "- runs already in the `--raw` file are reused, not re-run.",
             "", *table(["task", "method", "seeds", "teacher R²", "teacher MAE", "student R²", "student MAE",
                         "relative R²", "agreement R²", "wall s"], rows), ""]
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
