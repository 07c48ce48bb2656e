"""Class fidelity of the conditional generator: of the graphs asked for class y, the share the teacher classifies y.

What ``dfkd generate --generator conditional --class y`` gives: for every dataset and seed, the GFKD-protocol
hold-out teacher (as ``distill_benchmark.py``), the conditional generator built with its defaults
(warm-up only, no distillation), then ``--per-class`` graphs asked for each class. Also the size law's
spread (perplexity over the node counts, as a share of them) and the mean node count and degree per
class, so a high fidelity bought with degenerate graphs would show.

Every run (one dataset and seed) is appended as one JSON line to ``--raw`` (default
``runs/class_fidelity.jsonl``, committed; runs already there are skipped); ``python benchmarks/regenerate.py``
writes ``results/class_fidelity.md`` from them (:func:`render`).

    python benchmarks/class_fidelity.py --datasets MUTAG PTC --seeds 0 1 2
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_DATA_ROOT, RUNS, append_run, header_lines, holdout_teacher, mean_std,  # noqa: E402
                    provenance, read_runs, table)
from leaderboard import DATASETS  # noqa: E402

RAW = os.path.join(RUNS, "class_fidelity.jsonl")


def main(argv=None) -> int:
    from dfkd.generators import ConditionalGraphGenerator

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--teacher", default="gin-5-64")
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--cache", default=os.path.join(RUNS, "holdout_teachers"), help="teacher checkpoints (not in git)")
    p.add_argument("--raw", default=RAW,
                   help="JSON lines file the runs are appended to (default: runs/class_fidelity.jsonl)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    done = {run_key(r) for r in read_runs([args.raw]) if r.get("benchmark") == "class_fidelity"}
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        for seed in args.seeds:
            run = dict(benchmark="class_fidelity", dataset=name, seed=seed, teacher=args.teacher,
                       generator="conditional", per_class=args.per_class, sample_seed=seed + 100)
            if run_key(run) in done:
                continue
            start = time.perf_counter()
            teacher = holdout_teacher(dataset, name, args.teacher, seed, args.cache)
            build_start = time.perf_counter()
            gen = ConditionalGraphGenerator.from_checkpoint(teacher).build(seed)
            build_s = time.perf_counter() - build_start
            law = gen.size_law()
            spread = torch.exp(-(law * law.log()).sum(-1)) / law.size(1)
            classes = []
            for c in range(gen.num_classes):
                graphs = gen.generate(args.per_class, seed=run["sample_seed"], classes=[c], show_progress=False)
                classes.append(dict(
                    label=c,
                    fidelity=float((graphs.teacher_logits.argmax(-1) == c).float().mean()),
                    nodes=float(graphs.num_nodes.float().mean()),
                    degree=float(graphs.num_edges.sum() * 2 / graphs.num_nodes.sum()),
                    spread=float(spread[c])))
            run.update(classes=classes, warmup_steps=gen._observed, build_s=build_s,
                       teacher_val_accuracy=teacher.provenance.get("val_accuracy"),
                       teacher_test_accuracy=teacher.provenance.get("test_accuracy"),
                       wall_s=time.perf_counter() - start, **provenance())
            append_run(args.raw, run)
            print(json.dumps({k: run[k] for k in ("dataset", "seed")}),
                  json.dumps([round(c["fidelity"], 3) for c in classes]), f"{run['wall_s']:.0f} s", flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


def run_key(run) -> tuple:
    """What identifies a run: a raw file holds at most one run per key."""
    return (run["dataset"], run["seed"], run["teacher"], run["generator"], run["per_class"], run["sample_seed"])


def render(runs: List[Dict]) -> str:
    """``results/class_fidelity.md``: per dataset, teacher, class and sample size, the fidelity (mean ± std over
    seeds, and the worst seed), node count, degree and size-law spread of the graphs asked for that class,
    warm-up steps and build time. A pure function of ``runs`` (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "class_fidelity"]
    groups: Dict[tuple, List[Dict]] = defaultdict(list)
    for r in runs:
        for c in r["classes"]:
            groups[(r["dataset"], r["teacher"], r["per_class"], c["label"])].append(dict(c, run=r))
    keys = sorted(groups, key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else len(DATASETS), k))
    rows = []
    for key in keys:
        items = sorted(groups[key], key=lambda c: c["run"]["seed"])
        col = lambda metric: mean_std([c[metric] for c in items])  # noqa: E731
        rows.append([key[0], key[1], key[3], key[2], len(items), col("fidelity"),
                     f"{min(c['fidelity'] for c in items):.3f}", col("nodes"), col("degree"), col("spread"),
                     f"{statistics.mean(c['run']['warmup_steps'] for c in items):.0f}",
                     f"{statistics.mean(c['run']['build_s'] for c in items):.1f}"])
    lines = ["# Class fidelity of the conditional generator (`dfkd generate --generator conditional --class y`)", "",
             *header_lines(runs, ["class_fidelity.jsonl"]),
             "- per dataset and seed: the hold-out teacher (GFKD's 70/30, as the distillation benchmark), the "
             "conditional generator with its defaults (warm-up only, no distillation), `graphs` graphs asked for "
             "each class (sampling seed: the seed + 100).",
             "- fidelity: share the teacher classifies as the asked class (min: the worst seed); size-law spread: "
             "perplexity of the class's node-count law as a share of the possible counts; degree: mean node degree; "
             "build s: the generator's warm-up.", "",
             *table(["dataset", "teacher", "class", "graphs", "seeds", "fidelity", "min", "nodes", "degree",
                     "size-law spread", "warm-up steps", "build s"], rows), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
