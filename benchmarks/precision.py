"""Mixed precision (``--precision``): what it costs in accuracy and what it buys in time, side by side.

* **Speed**: the work of ``benchmarks/propagation.py`` (generator steps, GFKD concrete, a student step,
  teacher passes on all-pairs graphs) timed at ``fp32``, ``bf16`` and ``fp16`` (``dfkd.nn.use_precision``),
  the three alternating call by call, one torch thread, median of ``--repeats``. Every workload is appended
  as one JSON line to ``--raw`` (default ``runs/precision.jsonl``, committed).
* **Accuracy**: runs of ``benchmarks/distill_benchmark.py --precision P`` in ``runs/distill_holdout.jsonl``
  (the leaderboard's raw file: its fp32 runs are the leaderboard's), paired by dataset, seed, method and
  distillation setting (same hold-out teacher, same seed): student accuracy at each precision and the
  per-seed difference. This script runs none of them.

``python benchmarks/regenerate.py`` writes ``results/precision.md`` from both files (:func:`render`).

    python benchmarks/distill_benchmark.py --threads 1 --methods prior --precision bf16
    python benchmarks/precision.py --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from typing import Dict, List, Optional

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (RUNS, alternating_medians, append_run, grouped, header_lines, load_average,  # noqa: E402
                    load_note, machine_tags, mean_std, median, mutag_teacher, provenance, repeat_note, table)
from leaderboard import DATASETS, adjusted, mean  # noqa: E402
from propagation import workloads  # noqa: E402

import dfkd  # noqa: E402
from dfkd.nn import PRECISIONS, build_model, use_precision  # noqa: E402

RAW = os.path.join(RUNS, "precision.jsonl")
RAW_FILES = ["precision.jsonl", "distill_holdout.jsonl"]  # what regenerate.py renders results/precision.md from


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--raw", default=RAW, help="JSON lines file the timings are appended to (default: "
                                              "runs/precision.jsonl)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher = dfkd.load_checkpoint(mutag_teacher())
    torch.manual_seed(0)
    student = build_model("gin-2-32", in_channels=teacher.feature_spec.dim, out_channels=teacher.num_classes)
    settings = {name: (lambda n=name: use_precision(n)) for name in PRECISIONS}
    for index, (what, kind, fn) in enumerate(workloads(teacher, student, args.batch_size)):
        load = load_average()
        t = alternating_medians(fn, args.repeats, settings)
        run = dict(benchmark="precision", kind="speed", work=what, graphs=kind, order=index,
                   batch_size=args.batch_size, repeats=args.repeats, seconds=t, teacher="gin-5-64",
                   student="gin-2-32", cpu_capability=torch.backends.cpu.get_cpu_capability(), load_average=load,
                   **provenance())
        append_run(args.raw, run)
        print(what, {n: round(v * 1e3, 1) for n, v in t.items()}, flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/precision.md, rendered by benchmarks/regenerate.py from runs/precision.jsonl and
# runs/distill_holdout.jsonl


def _pair_key(r: Dict) -> tuple:
    return (r["dataset"], r["teacher"], r["student"], r["method"], r["epochs"], r["num_graphs"],
            json.dumps(r.get("overrides") or {}, sort_keys=True), r["seed"])


def paired_runs(runs: List[Dict]) -> Dict[str, Dict[tuple, List[Dict[str, Dict]]]]:
    """Per lower precision: (dataset, teacher, student, method, epochs, graphs, overrides) → the seeds' pairs
    ``{"fp32": run, precision: run}`` of hold-out distillation runs. Runs are taken in a canonical order, so
    a duplicate keeps the same one whatever the order of the files."""
    by_key: Dict[tuple, Dict[str, Dict]] = defaultdict(dict)
    distill = [r for r in runs if r.get("benchmark") == "distill" and r.get("protocol") == "holdout"]
    for r in sorted(distill, key=lambda r: json.dumps(r, sort_keys=True)):
        by_key[_pair_key(r)].setdefault(r.get("precision", "fp32"), r)
    out: Dict[str, Dict[tuple, List[Dict[str, Dict]]]] = defaultdict(lambda: defaultdict(list))
    for key, at in by_key.items():
        for precision in at:
            if precision != "fp32" and "fp32" in at:
                out[precision][key[:-1]].append({"fp32": at["fp32"], precision: at[precision]})
    return out


def _student_cell(items: List[Dict]) -> str:
    ca = adjusted(items)
    return f"{mean_std([r['test']['accuracy'] for r in items])} ({'–' if ca != ca else f'{ca:.2f}'})"


def accuracy_section(precision: str, groups: Dict[tuple, List[Dict[str, Dict]]]) -> List[str]:
    order = lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else len(DATASETS), k)  # noqa: E731
    rows = []
    for key in sorted(groups, key=order):
        pairs = sorted(groups[key], key=lambda p: p["fp32"]["seed"])
        low, high = [p[precision] for p in pairs], [p["fp32"] for p in pairs]
        diffs = [a["test"]["accuracy"] - b["test"]["accuracy"] for a, b in zip(low, high)]
        rows.append([key[0], f"{key[1]} → {key[2]}", key[3] + ("" if key[6] == "{}" else f" {key[6]}"),
                     f"{key[4]} × {key[5]}", len(pairs), mean_std([r["test"]["teacher_accuracy"] for r in high]),
                     f"{mean([r['test']['majority_accuracy'] for r in high]):.3f}",
                     _student_cell(high), _student_cell(low), f"{sum(diffs) / len(diffs):+.3f}",
                     f"{max(abs(d) for d in diffs):.3f}",
                     f"{mean([r['distill_s'] for r in high]):.0f}",
                     f"{mean([r['distill_s'] for r in low]):.0f}"])
    return [f"## Accuracy: the same runs at fp32 and {precision}", "",
            "- runs: `benchmarks/runs/distill_holdout.jsonl` (`benchmarks/distill_benchmark.py --precision P`, "
            "GFKD's 70/30 hold-out per seed); pairs = same dataset, seed, teacher, method and distillation setting "
            "(epochs × graphs per epoch, generator options).",
            f"- cell: student test accuracy, mean ± std over seeds (chance-adjusted accuracy, from the means); "
            f"difference = {precision} − fp32 per seed; majority: the test split's most frequent class. distill s: "
            "each run's own record; the runs may have shared the cores with other jobs, so time is compared in the "
            "speed table below (alternating calls), not here.", "",
            *table(["dataset", "teacher → student", "method", "epochs × graphs", "seeds", "teacher acc", "majority",
                    "fp32 student", f"{precision} student", "mean difference", "largest |difference|",
                    "fp32 distill s", f"{precision} distill s"], rows), ""]


def render(runs: List[Dict]) -> Optional[str]:
    """``results/precision.md``: the accuracy of hold-out distillation runs at a lower precision beside the
    same runs at fp32, and the timing of the same work at every precision; ``None`` (no table) while neither
    exists. A pure function of ``runs`` (sorted; no clock, no machine)."""
    speed = [r for r in runs if r.get("benchmark") == "precision" and r.get("kind") == "speed"]
    pairs = paired_runs(runs)
    if not speed and not pairs:
        return None
    used = speed + [r for groups in pairs.values() for items in groups.values() for p in items for r in p.values()]
    used = list({json.dumps(r, sort_keys=True): r for r in used}.values())
    tags = machine_tags(used)
    lines = ["# Mixed precision (`--precision`): accuracy and speed", "",
             *header_lines(used, RAW_FILES, tags=tags),
             "- bf16/fp16: models' forward passes under `torch.autocast`, weights, gradients, losses and "
             "evaluation in float32, sums aggregated in float32; fp16 adds loss scaling in the student step.", ""]
    for precision in sorted(pairs):
        lines += accuracy_section(precision, pairs[precision])
    if not pairs:
        lines += ["## Accuracy", "", "Not run yet: no hold-out run of `benchmarks/distill_benchmark.py --precision "
                  "bf16` (or fp16) beside the fp32 ones in `benchmarks/runs/distill_holdout.jsonl`.", ""]
    lines += ["## Speed: the same work at each precision", ""]
    if not speed:
        return "\n".join(lines + ["Not run yet (`python benchmarks/precision.py`).", ""])
    precisions = [p for p in PRECISIONS if any(p in r["seconds"] for r in speed)]
    low = [p for p in precisions if p != "fp32"]
    groups = grouped(speed, lambda r: (r["order"], r["work"], r["graphs"]), tags)
    rows = []
    for key, items in groups:
        ms = {p: 1e3 * median(r["seconds"][p] for r in items if p in r["seconds"]) for p in precisions}
        rows.append([key[1], key[2], *(f"{ms[p]:.1f}" for p in precisions),
                     *(f"{ms['fp32'] / ms[p]:.2f}×" for p in low)] + ([key[-1]] if tags else []))
    lines += [f"- median of {', '.join(map(str, sorted({r['repeats'] for r in speed})))} repeats, the precisions "
              "alternating call by call, one torch thread; seed-0 MUTAG GIN-5-64 hold-out teacher, GIN-2-32 student; "
              f"CPU capability {', '.join(sorted({str(r['cpu_capability']) for r in speed}))}.",
              *load_note(speed), *repeat_note(items for _, items in groups), "",
              *table(["work", "graphs", *(f"{p} ms" for p in precisions), *(f"fp32/{p}" for p in low)]
                     + (["machine"] if tags else []), rows), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
