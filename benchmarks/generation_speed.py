"""GFKD generation throughput: the batched generator vs a per-graph Python loop doing the same work.

Settings: ``--preset paper`` (default: GFKD as published, ``generators/gfkd.py``'s ``GFKD_PRESETS``: three teacher
passes per iteration, all node pairs as candidates) or ``--preset default`` (dfkd's defaults, two passes).
Both paths optimise graphs for the same teacher with the same settings, side by side in one run:
the batched path optimises all ``G`` graphs in one tensor program; the loop calls the
generator once per graph. Throughput is reported at the paper's iteration count (2500):
measured directly for the batched path with ``--full``, and extrapolated from the measured
per-iteration time otherwise (the per-iteration cost is constant).

Every measured row (``kind``: ``batched``, ``loop``, ``type_prior``, ``full``) is appended as one JSON line
to ``--raw`` (default ``runs/generation_speed.jsonl``, committed); ``python benchmarks/regenerate.py``
writes ``results/generation_speed.md`` from them (:func:`render`).

    python benchmarks/generation_speed.py --threads 1 --full
    python benchmarks/generation_speed.py --threads 1 --preset default
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List

import torch

import dfkd
from dfkd.generators import BernoulliGraphGenerator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_DATA_ROOT, HERE, RUNS, append_run, grouped, header_lines, holdout_teacher,  # noqa: E402
                    load_average, load_note, machine_tags, median, provenance, repeat_note, table)

RAW = os.path.join(RUNS, "generation_speed.jsonl")
PAPER_ITERATIONS = 2500
KINDS = {"batched": "batched (one tensor program)", "loop": "per-graph Python loop",
         "type_prior": "type-prior fit (once per call, batched)",
         "full": f"batched, measured at {PAPER_ITERATIONS} iterations (type prior included where the settings use it)"}


def timed_generate(gen: BernoulliGraphGenerator, num_graphs: int, seed: int) -> float:
    start = time.perf_counter()
    gen.generate(num_graphs, seed=seed, show_progress=False)
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="MUTAG")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--graphs", type=int, default=131, help="graphs in the batched run (GFKD: 70%% of MUTAG)")
    p.add_argument("--loop-graphs", type=int, default=16, help="graphs generated one by one in the loop run")
    p.add_argument("--iterations", type=int, default=50, help="iterations of the timed runs")
    p.add_argument("--full", action="store_true", help=f"also time the batched run at {PAPER_ITERATIONS} iterations")
    p.add_argument("--cache", default=os.path.join(HERE, "runs", "holdout_teachers"))
    p.add_argument("--raw", default=RAW, help="JSON lines file the rows are appended to (default: "
                                              "runs/generation_speed.jsonl)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--preset", choices=["paper", "default"], default="paper",
                   help="generator settings: GFKD's paper preset, or dfkd's defaults")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    dataset = dfkd.load_dataset(args.dataset, root=args.data_root)
    teacher = holdout_teacher(dataset, args.dataset, "gin-5-64", 0, args.cache)
    base = dict(benchmark="generation_speed", dataset=args.dataset, teacher="gin-5-64", teacher_seed=0,
                preset=args.preset)
    preset = None if args.preset == "default" else args.preset

    def record(kind: str, graphs: int, iterations, seconds: float, load) -> None:
        run = dict(base, kind=kind, graphs=graphs, iterations=iterations, seconds=seconds, load_average=load,
                   **provenance())
        append_run(args.raw, run)
        print(kind, graphs, iterations, f"{seconds:.2f} s", flush=True)

    # The optimisation loop is what the two paths share; the type-prior fit (a fixed cost per call)
    # is timed on its own below so it does not inflate the loop's per-iteration cost.
    gen = BernoulliGraphGenerator.from_checkpoint(teacher, preset=preset, iterations=args.iterations, type_prior=False)
    timed_generate(gen, 4, seed=99)  # warm-up
    load = load_average()
    record("batched", args.graphs, args.iterations, timed_generate(gen, args.graphs, seed=0), load)
    load = load_average()
    record("loop", args.loop_graphs, args.iterations,
           sum(timed_generate(gen, 1, seed=g) for g in range(args.loop_graphs)), load)
    if preset is None:  # the paper's settings have no type prior
        prior_only = BernoulliGraphGenerator.from_checkpoint(teacher, iterations=0)
        no_prior = BernoulliGraphGenerator.from_checkpoint(teacher, iterations=0, type_prior=False)
        load = load_average()
        record("type_prior", args.graphs, None,
               timed_generate(prior_only, args.graphs, seed=0) - timed_generate(no_prior, args.graphs, seed=0), load)
    if args.full:
        full = BernoulliGraphGenerator.from_checkpoint(teacher, preset=preset, iterations=PAPER_ITERATIONS)
        load = load_average()
        record("full", args.graphs, PAPER_ITERATIONS, timed_generate(full, args.graphs, seed=0), load)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/generation_speed.md, rendered by benchmarks/regenerate.py from the raw runs


def per_graph_iteration(r: Dict) -> float:
    """Seconds per graph and iteration of a ``batched`` or ``loop`` row."""
    return r["seconds"] / (r["graphs"] * r["iterations"])


def render(runs: List[Dict]) -> str:
    """``results/generation_speed.md``: per dataset and path, the seconds measured (median over runs) and the
    throughput at 2500 iterations (extrapolated from the per-iteration cost, or measured), and the batched
    path's speed-up over the loop. A pure function of ``runs`` (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "generation_speed"]
    tags = machine_tags(runs)
    order = list(KINDS)
    groups = grouped(runs, lambda r: (r["dataset"], r["teacher"], r["teacher_seed"], r.get("preset", "default"),
                                      r["kind"], r["graphs"], r["iterations"] or 0), tags,
                     order=lambda k: (k[:4], order.index(k[4]) if k[4] in order else len(order), k[4:]))
    rows, speedups = [], []
    for key, items in groups:
        seconds = median(r["seconds"] for r in items)
        kind = key[4]
        if kind in ("batched", "loop"):
            rate, how = 1.0 / (median(per_graph_iteration(r) for r in items) * PAPER_ITERATIONS), "extrapolated"
            rate_cell = f"{rate:.3f}" if kind == "batched" else f"{rate:.4f}"
        elif kind == "full":
            rate_cell, how = f"{median(r['graphs'] / r['seconds'] for r in items):.3f}", "measured"
        else:
            rate_cell, how = "-", "measured"
        rows.append([key[0], key[3], KINDS.get(kind, kind), key[5], key[6] or "-",
                     f"{seconds:.1f}" if kind == "full" else f"{seconds:.2f}", rate_cell, how]
                    + ([key[-1]] if tags else []))
    for dataset, preset, machine in sorted({(r["dataset"], r.get("preset", "default"), tags.get(r["machine"], ""))
                                            for r in runs}):
        cost = {kind: [per_graph_iteration(r) for r in runs if r["kind"] == kind and r["dataset"] == dataset
                       and r.get("preset", "default") == preset and tags.get(r["machine"], "") == machine]
                for kind in ("batched", "loop")}
        if cost["batched"] and cost["loop"]:
            speedups.append(f"- {dataset}, {preset} settings{f' ({machine})' if machine else ''}: batched speed-up "
                            f"over the per-graph loop **{median(cost['loop']) / median(cost['batched']):.1f}×** (same "
                            "work per graph and iteration).")
    teachers = sorted({f"{r['teacher']} on {r['dataset']} (holdout seed {r['teacher_seed']})" for r in runs})
    lines = ["# GFKD generation throughput", "",
             *header_lines(runs, ["generation_speed.jsonl"], tags=tags),
             f"- teacher: {', '.join(teachers)}; settings: `paper` = GFKD's paper preset (`--preset paper`), "
             "`default` = dfkd's defaults (the timed iterations without the node-type prior, whose fit is timed on "
             "its own row)",
             *load_note(runs), *repeat_note(items for _, items in groups), "",
             *table(["dataset", "settings", "path", "graphs", "iterations timed", "seconds",
                     f"graphs/s at {PAPER_ITERATIONS} iterations",
                     "rate"] + (["machine"] if tags else []), rows), "",
             *speedups, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
