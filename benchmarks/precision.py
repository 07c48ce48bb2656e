"""Mixed precision (``--precision``): what it costs in accuracy and what it buys in time, side by side.

* **Speed**: the work of ``benchmarks/propagation.py`` (generator steps, GFKD concrete, a student step,
  teacher passes on all-pairs graphs) timed at ``fp32``, ``bf16`` and ``fp16`` (``dfkd.nn.use_precision``),
  the three alternating call by call, one torch thread, median of ``--repeats``.
* **Accuracy**: runs of ``benchmarks/distill_benchmark.py --precision P`` (``--raw`` files), paired by
  dataset, seed and method (same hold-out teacher, same seed): student accuracy at each precision and the
  per-seed difference.

    python benchmarks/distill_benchmark.py --threads 1 --datasets MUTAG PTC PROTEINS IMDBBINARY NCI1 \\
        --methods prior --precision fp32 --raw benchmarks/runs/precision_fp32.jsonl --results /tmp/p32.md
    python benchmarks/distill_benchmark.py ... --precision bf16 --raw benchmarks/runs/precision_bf16.jsonl ...
    python benchmarks/precision.py --raw benchmarks/runs/precision_fp32.jsonl benchmarks/runs/precision_bf16.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, alternating_medians, command, machine, mean_std, mutag_teacher, table, write_results  # noqa: E402
from propagation import workloads  # noqa: E402

import dfkd  # noqa: E402
from dfkd.nn import PRECISIONS, build_model, use_precision  # noqa: E402


def speed_rows(args) -> list:
    teacher = dfkd.load_checkpoint(mutag_teacher())
    torch.manual_seed(0)
    student = build_model("gin-2-32", in_channels=teacher.feature_spec.dim, out_channels=teacher.num_classes)
    settings = {name: (lambda n=name: use_precision(n)) for name in PRECISIONS}
    rows = []
    for what, kind, fn in workloads(teacher, student, args.batch_size):
        t = alternating_medians(fn, args.repeats, settings)
        rows.append([what, kind, *(f"{t[n] * 1e3:.1f}" for n in PRECISIONS),
                     *(f"{t['fp32'] / t[n]:.2f}×" for n in PRECISIONS if n != "fp32")])
        print(rows[-1], flush=True)
    return rows


def accuracy_rows(paths) -> list:
    runs = [json.loads(line) for path in paths for line in open(path, encoding="utf-8") if line.strip()]
    by_key = defaultdict(dict)
    for r in runs:
        by_key[(r["dataset"], r["teacher"], r["student"], r["method"], r["seed"])][r.get("precision", "fp32")] = r
    groups = defaultdict(list)
    for (dataset, teacher, student, method, _), pair in by_key.items():
        if {"fp32", "bf16"} <= set(pair):
            groups[(dataset, f"{teacher} → {student}", method)].append(pair)
    rows = []
    for (dataset, models, method), pairs in groups.items():
        diffs = [p["bf16"]["accuracy"] - p["fp32"]["accuracy"] for p in pairs]
        rows.append([dataset, models, method, str(len(pairs)),
                     mean_std([p["fp32"]["teacher_accuracy"] for p in pairs]),
                     f"{mean_std([p['fp32']['accuracy'] for p in pairs])} "
                     f"({sum(p['fp32']['relative_accuracy'] for p in pairs) / len(pairs):.2f})",
                     f"{mean_std([p['bf16']['accuracy'] for p in pairs])} "
                     f"({sum(p['bf16']['relative_accuracy'] for p in pairs) / len(pairs):.2f})",
                     f"{sum(diffs) / len(diffs):+.3f}", f"{max(abs(d) for d in diffs):.3f}",
                     f"{sum(p['fp32']['distill_s'] for p in pairs) / len(pairs):.0f}",
                     f"{sum(p['bf16']['distill_s'] for p in pairs) / len(pairs):.0f}"])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--raw", nargs="*", default=[], help="distill_benchmark.py runs at fp32 and bf16 (JSON lines)")
    p.add_argument("--results", default=os.path.join(HERE, "results", "archive", "precision.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    lines = ["# Mixed precision (`--precision`): accuracy and speed", "",
             f"- command: `{command()}`", f"- machine: {machine()}, CPU capability "
             f"{torch.backends.cpu.get_cpu_capability()}",
             "- bf16/fp16: models' forward passes under `torch.autocast`, weights, gradients, losses and "
             "evaluation in float32, sums aggregated in float32; fp16 adds loss scaling in the student step."]
    if args.raw:
        rows = accuracy_rows(args.raw)
        lines += ["", "## Accuracy: the same runs at fp32 and bf16", "",
                  "- runs: " + ", ".join(f"`{path}`" for path in args.raw) + " (`benchmarks/distill_benchmark.py"
                  " --precision P`, GFKD's 70/30 hold-out per seed, 400 epochs, 256 graphs per epoch); pairs = "
                  "same dataset, seed and teacher.",
                  "- cell: student test accuracy, mean ± std over seeds (relative accuracy); difference = bf16 − "
                  "fp32 per seed. distill s: each run's own record; the runs shared the 2 cores with other jobs, "
                  "so time is compared in the speed table below (alternating calls), not here.", "",
                  *table(["dataset", "teacher → student", "method", "seeds", "teacher acc", "fp32 student",
                          "bf16 student", "mean difference", "largest |difference|", "fp32 distill s",
                          "bf16 distill s"], rows)]
    rows = speed_rows(args)
    lines += ["", "## Speed: the same work at each precision", "",
              f"- median of {args.repeats} repeats, the precisions alternating call by call, one torch thread; "
              "seed-0 MUTAG GIN-5-64 hold-out teacher, GIN-2-32 student.", "",
              *table(["work", "graphs", *(f"{n} ms" for n in PRECISIONS),
                      *(f"fp32/{n}" for n in PRECISIONS if n != "fp32")], rows)]
    write_results(args.results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
