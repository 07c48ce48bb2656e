"""Leaderboard: every method side by side per dataset, from the raw runs of ``distill_benchmark.py``.

    python benchmarks/leaderboard.py --raw benchmarks/runs/leaderboard_runs.jsonl

Reads the JSON lines the benchmark appended (one per dataset, seed, teacher, student and method) and
writes ``results/leaderboard.md``: student accuracy (mean ± std over seeds) and relative accuracy
(student / teacher test accuracy) per method, the real-data KD ceiling and the random-graph floor,
wall time, and whether the default recipe reaches relative accuracy 0.90.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from collections import defaultdict
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, command, mean_std, table  # noqa: E402

ORDER = ["prior", "gfkd", "dfad", "conditional", "random", "real"]
TITLES = {"prior": "prior (default)", "gfkd": "GFKD", "dfad": "DFAD-GNN", "conditional": "conditional (CGDD)",
          "random": "random graphs", "real": "real-data KD"}
DATASETS = ["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"]
DEFAULT = "prior"
TARGET = 0.90


def load(paths: List[str]) -> List[Dict]:
    runs = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        runs += [r for r in rows if "accuracy" in r]  # classification runs (regression ones have R² instead)
    return runs


def cell(items: List[Dict]) -> str:
    if not items:
        return "–"
    rel = statistics.mean(r["relative_accuracy"] for r in items)
    seeds = "" if len(items) >= 3 else f" [{len(items)} seed{'s' if len(items) > 1 else ''}]"
    return f"{mean_std([r['accuracy'] for r in items])} ({rel:.2f}){seeds}"


def wall(items: List[Dict]) -> str:
    """Mean wall time of the runs, with the machine's core count when it is not the usual 2-core one
    (runs of one table may come from several machines)."""
    if not items:
        return "–"
    cores = {m.group(1) for m in (re.search(r"(\d+) CPU cores", r.get("machine", "")) for r in items) if m}
    text = f"{statistics.mean(r['wall_s'] for r in items):.0f}"
    return text if cores <= {"2"} else f"{text} ({'/'.join(sorted(cores))} cores)"


def generic_command(command: str) -> str:
    """A run's command with its own output paths and, for one-run processes, the dataset/seed/method as
    placeholders, so that the commands of a sharded benchmark read as one."""
    command = re.sub(r" --(raw|results|data-root|cache) \S+", "", command)
    return re.sub(r"--datasets \S+ --seeds \S+ --methods \S+", "--datasets D --seeds S --methods M", command)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw", nargs="+", default=[os.path.join(HERE, "runs", "leaderboard_runs.jsonl")])
    p.add_argument("--results", default=os.path.join(HERE, "results", "leaderboard.md"))
    args = p.parse_args(argv)
    runs = load(args.raw)
    groups = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r.get("teacher", "gin-5-64"), r["student"], r["method"])].append(r)
    pairs = sorted({k[:3] for k in groups}, key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else 99, k))
    methods = [m for m in ORDER if any(k[3] == m for k in groups)]
    ablations = sorted({k[3] for k in groups} - set(methods))
    header = ["dataset", "teacher → student", "teacher acc"] + [TITLES.get(m, m) for m in methods]
    rows, ablation_rows, timing, verdict = [], [], [], []
    for name, teacher, student in pairs:
        items = {m: groups.get((name, teacher, student, m), []) for m in methods + ablations}
        any_items = next(v for v in items.values() if v)
        rows.append([name, f"{teacher} → {student}", mean_std([r["teacher_accuracy"] for r in any_items])]
                    + [cell(items[m]) for m in methods])
        if any(items[m] for m in ablations):
            ablation_rows.append([name, f"{teacher} → {student}", cell(items.get(DEFAULT, []))]
                                 + [cell(items[m]) for m in ablations])
        timing.append([name, f"{teacher} → {student}"] + [wall(items[m]) for m in methods + ablations])
        if items.get(DEFAULT):
            rel = [r["relative_accuracy"] for r in items[DEFAULT]]
            best_free = max((statistics.mean(r["accuracy"] for r in items[m]), m) for m in methods
                            if m not in ("real",) and items[m])
            verdict.append(f"- {name}, {teacher} → {student}: default relative accuracy "
                           f"{statistics.mean(rel):.3f} (per seed {', '.join(f'{v:.2f}' for v in rel)}): "
                           f"{'meets' if statistics.mean(rel) >= TARGET else 'below'} the {TARGET:.2f} bar; "
                           f"best data-free method here: {TITLES.get(best_free[1], best_free[1])}.")
    machines = sorted({r["machine"] for r in runs if "machine" in r})
    commands = sorted({generic_command(r["command"]) for r in runs if "command" in r})
    seeds = sorted({r["seed"] for r in runs})
    epochs = sorted({r["epochs"] for r in runs if "epochs" in r})
    lines = [
        "# Leaderboard: data-free students on the five benchmark datasets", "",
        f"- written by: `{command()}`",
        *(f"- runs made by: `{c}`" for c in commands),
        *(f"- machine: {m}" for m in machines),
        f"- protocol: GFKD's 70/30 hold-out per seed (seeds {seeds}); the teacher is trained on a stratified 70%, "
        "every student is scored on the other 30%; 256 graphs per epoch, "
        f"{', '.join(map(str, epochs)) or 'the default'} distillation epochs, each method's default recipe.",
        "- cell: student test accuracy, mean ± std over seeds (relative accuracy = student / teacher accuracy, "
        "mean over seeds).",
        "- published figures of GFKD, DFAD-GNN and ACGKD: not available to this project (see `published.md`), "
        "so they are not shown.", "",
        *table(header, rows), "",
        "## Against the bar (relative accuracy >= 0.90)", "", *verdict, "",
        *(["## Ablations (same protocol, teachers and seeds)", "",
           "Names as in `benchmarks/distill_benchmark.py` (`METHODS`): `prior-no-balance` no class balancing, "
           "`prior-er` Erdős–Rényi degrees (dispersion 1), `prior-uniform-types` uniformly random node types, "
           "`prior+X` the default with loss term X added (or `dynamic_kl` instead of `kl`), `prior+assistant` "
           "a teacher → gin-3-48 → student chain, `prior+curriculum` the confidence curriculum, `prior+teacher_head` "
           "the student predicting through the teacher's frozen classifier, `gfkd-er` GFKD from its former "
           "Erdős–Rényi start. Datasets without a cell were not run.", "",
           *table(["dataset", "teacher → student", TITLES[DEFAULT]] + ablations, ablation_rows), ""]
          if ablation_rows else []),
        "## Wall time per run (s, mean over seeds; generation included)", "",
        "Runs made on the 2-core machine at one torch thread, often beside other jobs; cells marked with "
        "another core count come from that machine (one run per process, one thread each, 15 processes at "
        "once) and are not comparable.", "",
        *table(["dataset", "teacher → student"] + [TITLES.get(m, m) for m in methods + ablations], timing), "",
    ]
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
