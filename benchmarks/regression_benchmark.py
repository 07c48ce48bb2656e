"""Data-free distillation of graph-regression teachers (issue 6), on the synthetic tasks dfkd makes.

For every task (``SYNTH:TRIANGLES``: triangles per node, ``SYNTH:CLUSTERING``: average clustering) and
seed: train (or reuse) a GIN regression teacher on a stratified 70% (it fits 90% of it and keeps the other
10%, its validation graphs, to choose its best epoch), distil a student with each method and score it on
the other 30% (test) and on the teacher's validation graphs, which no student trains on: R², MAE and RMSE
of teacher and student against the exact targets, agreement R² / MAE (student against the teacher's
outputs) and relative R² (student / teacher; ``dfkd.evaluate.compare_regression``). Methods: ``prior``
(dfkd's default: teacher-prior graphs, pools stratified over the teacher's output range),
``prior-no-balance`` (ablation: no stratification), ``gfkd`` (value targets spread over the teacher's
range), ``dfad`` (L1 discrepancy, bounded to the teacher's output range), ``dfad-unbounded`` (DFAD-GNN's
plain L1), ``random`` (Erdős–Rényi, the floor) and ``real`` (KD on the graphs the teacher was fitted on,
the ceiling).

Every run is appended as one JSON line to ``--raw`` (default ``runs/regression.jsonl``, committed; runs
already there are skipped, so an interrupted benchmark resumes); ``python benchmarks/regenerate.py``
writes ``results/regression.md`` from them (:func:`render`).

    python benchmarks/regression_benchmark.py --seeds 0 1 2 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Dict, List, Sequence

import torch

import dfkd
from dfkd.distill import DistillConfig, distill_student
from dfkd.evaluate import WEAK_TEACHER_GAIN, compare_regression, predict, targets_of
from dfkd.train import TrainConfig, recorded_splits, train_teacher

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RUNS, append_run, header_lines, mean_std, provenance, read_runs, table  # noqa: E402

RAW = os.path.join(RUNS, "regression.jsonl")
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
    """A regression teacher on a stratified 70% of ``dataset`` (seeded), cached by name/arch/seed. A cached one
    saved before teachers recorded their validation ratio is retrained (the same seed gives the same split)."""
    path = os.path.join(cache, f"{name.replace(':', '_')}-{arch}-holdout-seed{seed}.pt")
    if not os.path.exists(path) or dfkd.load_checkpoint(path).provenance.get("val_ratio") is None:
        os.makedirs(cache, exist_ok=True)
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
    p.add_argument("--cache", default=os.path.join(RUNS, "regression_teachers"),
                   help="teacher checkpoints (not in git)")
    p.add_argument("--raw", default=RAW,
                   help="JSON lines file the runs are appended to (default: runs/regression.jsonl)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    done = {run_key(r) for r in read_runs([args.raw]) if r.get("benchmark") == "regression"}
    for name in args.datasets:
        dataset = dfkd.load_dataset(name)
        for seed in args.seeds:
            teacher = regression_teacher(dataset, name, args.teacher, seed, args.cache)
            fit_idx, val_idx, test_idx = recorded_splits(dataset, teacher.provenance)
            parts = {part: [dataset[i] for i in idx] for part, idx in
                     (("fit", fit_idx), ("val", val_idx), ("test", test_idx))}
            for method in args.methods:
                run = dict(benchmark="regression", dataset=name, seed=seed, teacher=args.teacher,
                           student=args.student, method=method, epochs=args.epochs, num_graphs=args.num_graphs)
                if run_key(run) in done:
                    continue
                run.update(distill_run(teacher, args.student, METHODS[method], parts, seed, args))
                run.update(provenance())
                append_run(args.raw, run)
                print(json.dumps({k: run[k] for k in ("dataset", "seed", "method")}),
                      json.dumps({k: round(v, 4) for k, v in run["test"].items()}), f"{run['wall_s']:.0f} s",
                      flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


def run_key(run) -> tuple:
    """What identifies a run: a raw file holds at most one run per key."""
    return (run["dataset"], run["seed"], run["teacher"], run["student"], run["method"], run["epochs"],
            run["num_graphs"])


def distill_run(teacher: dfkd.Checkpoint, student: str, spec: dict, parts: dict, seed: int, args) -> dict:
    """Distil one student (real-data KD on the teacher's fitting graphs only) and score it, with its teacher,
    on the test graphs and on the teacher's validation graphs."""
    start = time.perf_counter()
    result = distill_student(
        teacher, student, generator=spec["generator"] or "random", num_graphs=args.num_graphs,
        generator_options=dict(spec["options"]), config=DistillConfig(epochs=args.epochs, seed=seed),
        real_graphs=parts["fit"] if spec["generator"] is None else None,  # test graphs: scored once, below
        show_progress=False)
    wall = time.perf_counter() - start
    model = teacher.build_model()
    scores = {part: score(result.student, model, parts[part]) for part in ("test", "val")}
    return dict(scores, teacher_train=teacher.provenance.get("train"), generation_s=result.report.generation_seconds,
                distill_s=result.report.distill_seconds, wall_s=wall)


def score(student, teacher, graphs) -> dict:
    """:func:`dfkd.evaluate.compare_regression` of ``student`` and ``teacher`` against the targets of ``graphs``."""
    return dict(compare_regression(predict(student, graphs), predict(teacher, graphs), targets_of(graphs)),
                num_graphs=len(graphs))


# ---------------------------------------------------------------------------------------------------------------
# results/regression.md, rendered by benchmarks/regenerate.py from the raw runs


def _mean(values: Sequence[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def relative_r2(items: List[Dict], part: str = "test") -> float:
    """Mean student R² / mean teacher R² of a group of runs (a ratio of means: per-run ratios blow up where
    one seed's teacher explains little); NaN when the teacher's mean R² is not positive."""
    teacher = _mean([r[part]["teacher_r2"] for r in items])
    return _mean([r[part]["r2"] for r in items]) / teacher if teacher > 0 else float("nan")


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.2f}"


def render(runs: List[Dict]) -> str:
    """``results/regression.md``: per task, teacher → student pair, method and distillation setting, test R²
    (mean ± std over seeds), relative R² from the means, agreement R², MAE, the same on the teachers'
    validation graphs, and wall time. A pure function of ``runs`` (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "regression"]
    groups: Dict[tuple, List[Dict]] = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["teacher"], r["student"], r["method"], r["epochs"], r["num_graphs"])].append(r)
    order = {m: i for i, m in enumerate(METHODS)}
    keys = sorted(groups, key=lambda k: (k[0], k[1], k[2], order.get(k[3], len(order)), k[3], k[4], k[5]))
    test_rows, val_rows = [], []
    for key in keys:
        items = sorted(groups[key], key=lambda r: r["seed"])
        label = [key[0], f"{key[1]} → {key[2]}", key[3], f"{key[4]} × {key[5]}", len(items)]
        weak = " ⚠" if _mean([r["test"]["teacher_r2"] for r in items]) < WEAK_TEACHER_GAIN else ""
        col = lambda part, metric: mean_std([r[part][metric] for r in items])  # noqa: E731
        test_rows.append(label + [col("test", "teacher_r2") + weak, col("test", "r2"), _fmt(relative_r2(items)),
                                  col("test", "agreement_r2"), col("test", "mae"), col("test", "teacher_mae"),
                                  f"{_mean([r['wall_s'] for r in items]):.0f}"])
        val_rows.append(label + [col("val", "teacher_r2"), col("val", "r2"), _fmt(relative_r2(items, "val")),
                                 col("val", "agreement_r2")])
    seeds = ", ".join(map(str, sorted({r["seed"] for r in runs})))
    teacher_epochs = sorted({str((r.get("teacher_train") or {}).get("epochs", "?")) for r in runs})
    head = ["task", "teacher → student", "method", "epochs × graphs", "seeds"]
    lines = ["# Data-free distillation of regression teachers", "",
             *header_lines(runs, ["regression.jsonl"]),
             f"- protocol: per seed ({seeds}), a regression teacher trained on a stratified 70% of the task "
             f"({', '.join(teacher_epochs)} epochs; it fits 90% of it and keeps the other 10%, its validation graphs, "
             "to choose its best epoch), a student distilled on `graphs` synthetic graphs per epoch for `epochs` "
             "epochs (loss `mse`), both scored against the exact targets on the other 30% (test) and on the "
             "teacher's validation graphs, which no student trains on. Tasks are made by "
             "`dfkd.data.make_regression_dataset` (1000 graphs of five random-graph families, three node types).",
             "- R² = 1 − squared error / squared error of the constant predictor at the targets' mean: it is "
             "already relative to chance (0: no better than predicting the mean), so relative R² = student R² / "
             "teacher R² is the regression analogue of the leaderboard's chance-adjusted accuracy (the share of "
             "what the teacher explains that the student keeps). It is computed from the means over seeds (– when "
             f"the teacher's mean R² is not positive); ⚠ marks teachers whose mean R² is below {WEAK_TEACHER_GAIN}, "
             "on which student figures are noise.",
             "- agreement R²: R² of the student's outputs against the teacher's outputs (how well it imitates the "
             "teacher); MAE against the exact targets.",
             "- methods: names as in `benchmarks/regression_benchmark.py` (`METHODS`); `real` is KD on the graphs "
             "the teacher was fitted on, every other method sees no real graph. `dfad`: the game bounded to the "
             "teacher's output range on the generator's starting graphs (`output_bound`); `dfad-unbounded`: "
             "DFAD-GNN's plain L1.",
             "- defaults are chosen on the validation figures, never on the test figures (`results/README.md`).", "",
             "## Test graphs (mean ± std over seeds)", "",
             *table(head + ["teacher R²", "student R²", "relative R²", "agreement R²", "student MAE", "teacher MAE",
                            "wall s"], test_rows), "",
             "## Teachers' validation graphs (mean ± std over seeds)", "",
             *table(head + ["teacher R²", "student R²", "relative R²", "agreement R²"], val_rows), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
