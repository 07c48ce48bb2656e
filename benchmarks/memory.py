"""GFKD memory against graph size n and batch size: all O(n²) candidate pairs vs random candidates.

Every configuration runs in a fresh child process that reports its own peak resident set size
(``resource.getrusage``), so the numbers do not leak into each other; "above baseline" subtracts the
child's RSS after imports and teacher loading. The last row runs ``dfkd distill --generator gfkd`` on
5,000-node graphs end to end (generation + a short distillation) the same way.

Every configuration (``kind``: ``generation``, ``end_to_end``) is appended as one JSON line to ``--raw``
(default ``runs/memory.jsonl``, committed); ``python benchmarks/regenerate.py`` writes ``results/memory.md``
from them (:func:`render`).

    python benchmarks/memory.py
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (HERE, RUNS, append_run, grouped, header_lines, load_average, load_note,  # noqa: E402
                    machine_tags, median, mutag_teacher, provenance, repeat_note, table)

RAW = os.path.join(RUNS, "memory.jsonl")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB, peak over the process


def _current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class _PeakSampler:
    """Peak of the current RSS while the ``with`` block runs (sampled every 5 ms in a thread): the process's
    lifetime peak (``ru_maxrss``) can be set by the imports, hiding a smaller generation peak."""

    def __enter__(self):
        import threading

        self.peak, self.stop = _current_rss_mb(), threading.Event()

        def sample():
            while not self.stop.wait(0.005):
                self.peak = max(self.peak, _current_rss_mb())

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, _current_rss_mb())


def child(n: int, graphs: int, mode: str, iterations: int, per_node: int) -> dict:
    torch.set_num_threads(1)
    import dfkd
    from dfkd.generators import BernoulliGraphGenerator

    teacher = dfkd.load_checkpoint(mutag_teacher())
    gen = BernoulliGraphGenerator.from_checkpoint(teacher, iterations=iterations, min_nodes=n, max_nodes=n,
                                                  candidates=mode, candidates_per_node=per_node)
    base = _current_rss_mb()
    start = time.perf_counter()
    with _PeakSampler() as sampler:
        out = gen.generate(graphs, seed=0, show_progress=False)
    seconds = time.perf_counter() - start
    pairs = out.distribution["pair_index"].size(1)
    return {"peak_mb": max(sampler.peak, _rss_mb()), "base_mb": base, "during_mb": sampler.peak - base,
            "seconds": seconds, "pairs": pairs,
            "edges": float(out.num_edges.float().mean())}


def run_child(*args) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *map(str, args)],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def end_to_end(n: int, graphs: int, iterations: int, epochs: int) -> dict:
    """``dfkd distill --generator gfkd`` on n-node graphs in a wrapper child that reports its peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["distill", "--teacher", mutag_teacher(), "--generator", "gfkd", "--nodes", f"{n}:{n}",
                "--num-graphs", str(graphs), "--iterations", str(iterations), "--epochs", str(epochs),
                "--batch-size", "4", "--student", "gin-2-32", "--out", os.path.join(tmp, "s.pt"), "--quiet"]
        code = ("import json, resource, sys, time, torch; torch.set_num_threads(1); from dfkd.cli import main; "
                f"t = time.perf_counter(); rc = main({argv!r}); "
                "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t, "
                "'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        if proc.returncode:
            return {"error": proc.stderr.strip().splitlines()[-1]}
        lines = proc.stdout.strip().splitlines()
        shown = [os.path.relpath(a, os.path.join(HERE, "..")) if a == mutag_teacher() else a for a in argv[:-3]]
        return {**json.loads(lines[-1]), "cli": " ".join(["dfkd"] + shown), "summary": lines[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--child", nargs=5, default=None, help=argparse.SUPPRESS)
    p.add_argument("--iterations", type=int, default=3, help="GFKD iterations per configuration (peak is reached at the first)")
    p.add_argument("--per-node", type=int, default=16, help="candidates_per_node of the random mode")
    p.add_argument("--all-sizes", default="500,1000,2000")
    p.add_argument("--random-sizes", default="500,1000,2000,5000,10000")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--e2e-nodes", type=int, default=5000, help="nodes per graph of the end-to-end run (0: skip it)")
    p.add_argument("--e2e-graphs", type=int, default=8)
    p.add_argument("--e2e-iterations", type=int, default=20)
    p.add_argument("--e2e-epochs", type=int, default=2)
    p.add_argument("--raw", default=RAW, help="JSON lines file the rows are appended to (default: runs/memory.jsonl)")
    args = p.parse_args(argv)
    if args.child:
        n, graphs, mode, iterations, per_node = args.child
        print(json.dumps(child(int(n), int(graphs), mode, int(iterations), int(per_node))))
        return 0
    torch.set_num_threads(1)
    teacher_file = os.path.relpath(mutag_teacher(), os.path.join(HERE, ".."))
    base = dict(benchmark="memory", teacher="gin-5-64", teacher_file=teacher_file)
    batches = [int(b) for b in args.batches.split(",")]
    for mode, sizes in (("all", args.all_sizes), ("random", args.random_sizes)):
        for n in [int(s) for s in sizes.split(",") if s]:
            for b in batches:
                load = load_average()
                r = run_child(n, b, mode, args.iterations, args.per_node)
                print(mode, n, b, r, flush=True)
                append_run(args.raw, dict(base, kind="generation", mode=mode, n=n, graphs=b, iterations=args.iterations,
                                          per_node=args.per_node, load_average=load, error=r.get("error"),
                                          **{k: r.get(k) for k in ("pairs", "peak_mb", "base_mb", "during_mb",
                                                                   "seconds", "edges")}, **provenance()))
    if args.e2e_nodes:
        load = load_average()
        e2e = end_to_end(args.e2e_nodes, args.e2e_graphs, args.e2e_iterations, args.e2e_epochs)
        print("end to end", e2e, flush=True)
        append_run(args.raw, dict(base, kind="end_to_end", n=args.e2e_nodes, graphs=args.e2e_graphs,
                                  iterations=args.e2e_iterations, epochs=args.e2e_epochs, load_average=load,
                                  error=e2e.get("error"), **{k: e2e.get(k) for k in ("rc", "seconds", "peak_mb", "cli",
                                                                                     "summary")}, **provenance()))
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/memory.md, rendered by benchmarks/regenerate.py from the raw runs


def render(runs: List[Dict]) -> str:
    """``results/memory.md``: per candidate mode, n and batch, the structure logits and the peak and generation
    RSS (median over runs), the end-to-end run on large graphs, and what all pairs would take at 5,000 and
    10,000 nodes. A pure function of ``runs`` (sorted; no clock, no machine)."""
    from dfkd.generators.structure import SPARSE_NODES

    runs = [r for r in runs if r.get("benchmark") == "memory"]
    tags = machine_tags(runs)
    gen_runs = [r for r in runs if r["kind"] == "generation"]
    groups = grouped(gen_runs, lambda r: (r["mode"], r["n"], r["graphs"], r["iterations"], r["per_node"]), tags)
    rows, figures = [], {}
    for key, items in groups:
        ok = [r for r in items if not r.get("error")]
        if not ok:
            rows.append([key[0], str(key[1]), str(key[2]), "-", "-", "-", "-", sorted(r["error"] for r in items)[0][:60]]
                        + ([key[-1]] if tags else []))
            continue
        fig = {f: median(r[f] for r in ok) for f in ("pairs", "peak_mb", "during_mb", "seconds", "edges")}
        figures[key] = fig
        rows.append([key[0], str(key[1]), str(key[2]), f"{fig['pairs']:,.0f}", f"{fig['peak_mb']:,.0f}",
                     f"{fig['during_mb']:,.0f}", f"{fig['seconds']:.2f}", f"{fig['edges']:.0f}"]
                    + ([key[-1]] if tags else []))
    e2e_groups = grouped([r for r in runs if r["kind"] == "end_to_end"],
                         lambda r: (r["n"], r["graphs"], r["iterations"], r["epochs"]), tags)
    e2e_lines = []
    for key, items in e2e_groups:
        ok = [r for r in items if not r.get("error")]
        e2e_lines += [f"## End to end: {key[0]:,}-node graphs{f' ({key[-1]})' if tags else ''}", ""]
        if not ok:
            e2e_lines += [f"`dfkd distill` failed: {sorted(r['error'] for r in items)[0]}", ""]
            continue
        e2e_lines += [*(f"- command: `{c}`" for c in sorted({r["cli"] for r in ok})),
                      f"- exit status {', '.join(map(str, sorted({r['rc'] for r in ok})))}, "
                      f"{median(r['seconds'] for r in ok):.1f} s wall, peak RSS {median(r['peak_mb'] for r in ok):,.0f} MiB"
                      + (f" (median of {len(ok)} runs)" if len(ok) > 1 else ""),
                      *(f"- output: `{o}`" for o in sorted({r["summary"] for r in ok})), ""]
    extrapolation = []
    all_pairs = [(fig["pairs"], fig["during_mb"], key) for key, fig in figures.items() if key[0] == "all"]
    if all_pairs:  # extrapolate all pairs from the largest measured configuration
        pairs, during, _ = max(all_pairs)
        per_logit = during * 2 ** 20 / pairs
        est = {n: per_logit * 8 * n * (n - 1) / 2 / 2 ** 30 for n in (5000, 10000)}
        measured = [f"{fig['during_mb']:,.0f} MiB ({key[1]:,} nodes)" for key, fig in figures.items()
                    if key[0] == "random" and key[1] in (5000, 10000) and key[2] == 8]
        extrapolation = [f"Extrapolated from the largest all-pairs row ({per_logit:.0f} bytes per structure logit): "
                         f"all pairs for 8 graphs of 5,000 nodes would take about {est[5000]:.0f} GiB, of 10,000 nodes "
                         f"about {est[10000]:.0f} GiB"
                         + (f"; random candidates measured {' and '.join(measured)} for 8 graphs, mostly the "
                            "teacher's activations." if measured else "."), ""]
    lines = ["# Memory of GFKD generation against graph size and batch size", "",
             *header_lines(runs, ["memory.jsonl"], tags=tags),
             f"- teacher: {', '.join(sorted({r['teacher'] for r in runs}))} on MUTAG "
             f"(`{', '.join(sorted({r['teacher_file'] for r in runs}))}`); "
             f"{', '.join(map(str, sorted({r['iterations'] for r in gen_runs})))} GFKD iterations per configuration, "
             "all graphs of exactly n nodes; random mode: `candidates_per_node="
             f"{', '.join(map(str, sorted({r['per_node'] for r in gen_runs})))}`",
             *load_note(runs), *repeat_note([items for _, items in groups + e2e_groups]), "",
             "Peak RSS of a fresh process per row (torch and the teacher included); *generation peak* is the "
             "largest RSS sampled (every 5 ms) during `generate` minus the RSS just before it.", "",
             *table(["candidates", "n (nodes/graph)", "graphs", "structure logits P", "peak RSS MiB",
                     "generation peak MiB", f"seconds ({'/'.join(map(str, sorted({r['iterations'] for r in gen_runs})))} it.)",
                     "edges/graph"] + (["machine"] if tags else []), rows), "",
             *e2e_lines, *extrapolation,
             "## Reading", "",
             "All pairs: `P = G n(n-1)/2` structure logits, and every one carries the logit, its gradient, two Adam "
             "moments, its pair indices and per-step ARM noise (about 60-100 bytes), so memory grows as `G n²`. "
             "Random candidates: `P ≈ G n k` (k partners per node, deduplicated, plus the initial structure), so "
             "memory grows as `G n k`: linear in n and in the batch. "
             f"`candidates=\"auto\"` (the default) switches to random candidates above {SPARSE_NODES} nodes per graph.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
