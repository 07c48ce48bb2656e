"""Generation and distillation throughput per generator on CPU, before/after figures side by side.

For every generator (``random``, ``prior``, ``gfkd``, ``dfad``, ``conditional``), with one torch thread:

* **graphs/s generated**: offline generators (``random``, ``gfkd``): ``generate(G)`` end to end (GFKD at
  ``--gfkd-iterations``); online generators: ``sample(batch)`` after ``build`` (their per-step cost), with the
  one-off ``build`` time reported beside it;
* **student steps/s**: :class:`dfkd.distill.Distiller` steps (generation of online batches and generator
  updates included, as in a real run) divided by the distillation seconds;

both on scatter kernels only (before the automatic sparse/dense switch) and with the automatic choice (now).

Before/after (measured in this run, same inputs): the node-type prior fit (``estimate_type_prior``), the
set-up cost of ``prior``, ``gfkd`` and ``dfad``, with the teacher's forward truncated at its first
BatchNorm layer (now) against the full forward (before). Also a small scatter-vs-dense aggregation grid
(full grid: ``benchmarks/kernels.py``) and GFKD memory against n (full table: ``benchmarks/memory.py``).

Every measured row is appended as one JSON line (``kind``: ``generator``, ``type_prior``, ``kernel``,
``memory``) to ``--raw`` (default ``runs/speed.jsonl``, committed); ``python benchmarks/regenerate.py``
writes ``results/speed.md`` from them (:func:`render`).

    python benchmarks/speed.py
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (HERE, RUNS, append_run, grouped, header_lines, load_average, load_note,  # noqa: E402
                    machine_tags, median, mutag_teacher, provenance, repeat_note, settings, speedup, table)

import dfkd  # noqa: E402
from dfkd.distill import DistillConfig, Distiller, build_student, make_generator  # noqa: E402
from dfkd.distill.sources import OnlineSource, SyntheticSetSource  # noqa: E402
from dfkd.generators.priors import estimate_type_prior  # noqa: E402
from dfkd.generators.structure import node_to_graph, sample_node_counts, sample_structure, undirected  # noqa: E402
from dfkd.ops import use_propagation  # noqa: E402

RAW = os.path.join(RUNS, "speed.jsonl")
GENERATORS = ("random", "prior", "gfkd", "dfad", "conditional")
KINDS = ("generator", "type_prior", "kernel", "memory")


def generator_figures_both(name: str, teacher, args) -> dict:
    """One generator's throughput on scatter kernels only (before the automatic dense switch) and with the
    automatic choice (now): ``--repeats`` rounds, the two modes alternating, best figure of each kept."""
    best: Dict[str, dict] = {}
    for _ in range(args.repeats):
        for mode in ("sparse", "auto"):
            with use_propagation(mode):
                what, rate, build, steps, count = generator_figures(name, teacher, args)
            old = best.setdefault(mode, dict(rate=0.0, build=None, steps=0.0))
            old.update(rate=max(rate, old["rate"]), steps=max(steps, old["steps"]),
                       build=build if old["build"] is None else min(build, old["build"]))
    return dict(generator=name, what=what, steps_timed=count,
                **{f"{field}_{when}": best[mode][field] for mode, when in (("sparse", "before"), ("auto", "now"))
                   for field in ("rate", "build", "steps")})


def generator_figures(name: str, teacher, args) -> tuple:
    """``(what, graphs/s generated, build seconds or None, student steps/s, steps timed)``."""
    options = {"iterations": args.gfkd_iterations} if name == "gfkd" else {}
    gen = make_generator(name, teacher, **options)
    config = DistillConfig(epochs=args.epochs, batch_size=args.batch_size, checkpoint_every=0, seed=0)
    if gen.online:
        start = time.perf_counter()
        gen.build(0)
        build = time.perf_counter() - start
        rng = torch.Generator().manual_seed(0)
        gen.sample(args.batch_size, rng)  # warm-up
        start = time.perf_counter()
        for _ in range(args.sample_batches):
            gen.sample(args.batch_size, rng)
        rate = args.sample_batches * args.batch_size / (time.perf_counter() - start)
        source = OnlineSource(gen, args.graphs, args.batch_size, replay=getattr(gen.config, "replay", 0))
        what = f"sample({args.batch_size}) after build"
    else:
        start = time.perf_counter()
        graphs = gen.generate(args.graphs, seed=0, show_progress=False)
        rate, build = args.graphs / (time.perf_counter() - start), None
        source = SyntheticSetSource(graphs, args.batch_size, resample=True)
        what = f"generate({args.graphs})" + (f", {args.gfkd_iterations} iterations" if name == "gfkd" else "")
    torch.manual_seed(0)
    student = build_student("gin-2-32", teacher)
    steps = []
    distiller = Distiller(teacher.build_model(), student, source, config.replace(loss=gen.recommended_loss),
                          show_progress=False)
    original = distiller.source.update

    def counting_update(*a, **k):
        steps.append(1)
        return original(*a, **k)

    distiller.source.update = counting_update
    report = distiller.fit()
    return what, rate, build, len(steps) / report.distill_seconds, len(steps)


def type_prior_figures(teacher, args) -> dict:
    """The node-type prior fit, truncated (after) vs full teacher forward (before), same inputs: best
    seconds of ``--repeats`` each, and the largest difference between the two fitted priors."""
    model = dfkd.nn.freeze(teacher.build_model())
    gen = torch.Generator().manual_seed(0)
    counts = sample_node_counts(64, 10, 28, gen)
    edges = undirected(sample_structure(counts, 2.2, 0.3, gen))
    results, best = {}, {}
    for truncate in (False, True):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results[truncate] = estimate_type_prior(model, teacher.feature_spec.dim, edges, node_to_graph(counts),
                                                    64, steps=300, truncate=truncate)
            times.append(time.perf_counter() - start)
        best[truncate] = min(times)
    return dict(before_s=best[False], after_s=best[True], graphs=64, adam_steps=300,
                max_difference=float((results[True][0] - results[False][0]).abs().max()))


def kernel_figures(n: int, density: float, min_seconds: float) -> dict:
    from kernels import dense_path, make_inputs, scatter_path, time_path

    graphs = 4000 // n
    inputs = make_inputs(n, density, graphs, 64)
    return dict(n=n, density=density, graphs=graphs, features=64, min_seconds=min_seconds,
                scatter_ms=1e3 * time_path(scatter_path("native"), inputs, graphs, n, min_seconds),
                dense_ms=1e3 * time_path(dense_path, inputs, graphs, n, min_seconds))


def memory_figures(mode: str, n: int, graphs: int, iterations: int = 2, per_node: int = 16) -> dict:
    from memory import run_child

    r = run_child(n, graphs, mode, iterations, per_node)
    return dict(mode=mode, n=n, graphs=graphs, iterations=iterations, per_node=per_node, error=r.get("error"),
                pairs=r.get("pairs"), during_mb=r.get("during_mb"))


def _ints(text: str) -> List[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graphs", type=int, default=256, help="graphs per epoch / synthetic set size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--gfkd-iterations", type=int, default=50)
    p.add_argument("--sample-batches", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2, help="rounds of every before/after pair (best kept)")
    p.add_argument("--generators", default=",".join(GENERATORS))
    p.add_argument("--kernel-sizes", default="20,100", help="n of the aggregation grid (empty: skip it)")
    p.add_argument("--kernel-densities", default="0.1,0.5,1.0")
    p.add_argument("--memory-all-sizes", default="1000,2000", help="n of the all-pairs memory rows")
    p.add_argument("--memory-random-sizes", default="1000,2000,5000,10000", help="n of the random-candidate rows")
    p.add_argument("--no-memory", action="store_true", help="skip the memory rows (child processes)")
    p.add_argument("--raw", default=RAW, help="JSON lines file the rows are appended to (default: runs/speed.jsonl)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher_path = mutag_teacher()
    teacher = dfkd.load_checkpoint(teacher_path)
    base = dict(benchmark="speed", teacher="gin-5-64", teacher_file=os.path.relpath(teacher_path, os.path.join(HERE, "..")),
                student="gin-2-32", graphs_per_epoch=args.graphs, batch_size=args.batch_size, epochs=args.epochs,
                gfkd_iterations=args.gfkd_iterations, sample_batches=args.sample_batches, repeats=args.repeats)

    def record(kind: str, figures: dict, load) -> None:
        run = dict(base, kind=kind, load_average=load, **figures, **provenance())
        append_run(args.raw, run)
        print(kind, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}, flush=True)

    load = load_average()
    record("type_prior", type_prior_figures(teacher, args), load)
    for name in args.generators.split(","):
        load = load_average()
        record("generator", generator_figures_both(name, teacher, args), load)
    for n in _ints(args.kernel_sizes):
        for density in [float(d) for d in args.kernel_densities.split(",") if d]:
            load = load_average()
            record("kernel", kernel_figures(n, density, 0.2), load)
    if not args.no_memory:
        for n in sorted(set(_ints(args.memory_all_sizes)) | set(_ints(args.memory_random_sizes))):
            for mode in ("all", "random"):
                if n in _ints(getattr(args, f"memory_{mode}_sizes")):
                    load = load_average()
                    record("memory", memory_figures(mode, n, 4), load)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/speed.md, rendered by benchmarks/regenerate.py from the raw runs



def render(runs: List[Dict]) -> str:
    """``results/speed.md``: per generator, graphs/s and student steps/s before (scatter only) and now (auto),
    the node-type prior fit before/after, a small scatter-vs-dense grid and GFKD memory against n; every
    figure the median over the runs of its row. A pure function of ``runs`` (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "speed"]
    tags = machine_tags(runs)
    of = {kind: [r for r in runs if r["kind"] == kind] for kind in KINDS}
    tag_col = ["machine"] if tags else []
    order = {g: i for i, g in enumerate(GENERATORS)}
    gen_groups = grouped(of["generator"], lambda r: (r["generator"], r["what"]), tags,
                         order=lambda k: (order.get(k[0], len(order)), k))
    gen_rows = []
    for key, items in gen_groups:
        fig = {f: median(r[f] for r in items) for f in ("rate_before", "rate_now", "steps_before", "steps_now")}
        builds = [r for r in items if r["build_now"] is not None]
        gen_rows.append([key[0], key[1], f"{fig['rate_before']:.1f}", f"{fig['rate_now']:.1f}",
                         speedup(fig["rate_now"], fig["rate_before"]), f"{fig['steps_before']:.1f}",
                         f"{fig['steps_now']:.1f}", speedup(fig["steps_now"], fig["steps_before"]),
                         "-" if not builds else f"{median(r['build_before'] for r in builds):.2f} / "
                                                f"{median(r['build_now'] for r in builds):.2f}",
                         settings(items, "steps_timed")] + ([key[-1]] if tags else []))
    prior_groups = grouped(of["type_prior"], lambda r: (r["graphs"], r["adam_steps"]), tags)
    prior_lines = []
    for key, items in prior_groups:
        before, after = median(r["before_s"] for r in items), median(r["after_s"] for r in items)
        where = f" ({key[-1]})" if tags else ""
        prior_lines += [*table(["teacher forward", f"seconds ({key[1]} Adam steps, {key[0]} graphs){where}"],
                               [["before: full teacher forward", f"{before:.3f}"],
                                ["after: stop at the first BatchNorm", f"{after:.3f}"]]), "",
                        f"Speed-up **{before / after:.1f}×**, same distribution (largest difference "
                        f"{max(r['max_difference'] for r in items):.1e}). The fit only needs the first BatchNorm "
                        "layer's input, so the forward now stops there.", ""]
    kernel_groups = grouped(of["kernel"], lambda r: (r["n"], r["density"], r["graphs"], r["features"]), tags)
    kernel_rows = []
    for key, items in kernel_groups:
        s, d = median(r["scatter_ms"] for r in items), median(r["dense_ms"] for r in items)
        kernel_rows.append([str(key[0]), f"{key[1]:g}", f"{s:.2f}", f"{d:.2f}", speedup(s, d)] + ([key[-1]] if tags else []))
    memory_groups = grouped(of["memory"], lambda r: (r["n"], r["mode"], r["graphs"], r["iterations"]), tags)
    memory_rows = []
    for key, items in memory_groups:
        ok = [r for r in items if not r.get("error")]
        memory_rows.append([key[1], str(key[0]), str(key[2]), f"{median(r['pairs'] for r in ok):,.0f}" if ok else "-",
                            f"{median(r['during_mb'] for r in ok):,.0f}" if ok else sorted(r["error"] for r in items)[0]]
                           + ([key[-1]] if tags else []))
    gen_runs = of["generator"] or runs
    lines = ["# Speed: generation and distillation throughput on CPU", "",
             *header_lines(runs, ["speed.jsonl"], tags=tags),
             f"- teacher: {settings(runs, 'teacher')} on MUTAG (`{settings(runs, 'teacher_file')}`), student "
             f"{settings(runs, 'student')}, batch {settings(gen_runs, 'batch_size')}, "
             f"{settings(gen_runs, 'graphs_per_epoch')} graphs per epoch, {settings(gen_runs, 'epochs')} epochs, "
             f"generator defaults (gfkd: {settings(gen_runs, 'gfkd_iterations')} iterations)",
             *load_note(runs),
             *repeat_note([items for _, items in gen_groups + prior_groups + kernel_groups + memory_groups]), ""]
    if gen_rows:
        lines += ["## Per generator", "",
                  *table(["generator", "generation measured", "graphs/s, before: scatter only", "graphs/s, now: auto",
                          "speed-up", "student steps/s, before", "student steps/s, now", "speed-up",
                          "build s (once), before / now", "steps timed"] + tag_col, gen_rows), "",
                  "Before = every model on scatter kernels (`use_propagation('sparse')`), now = the automatic "
                  "sparse/dense choice (dense per-graph blocks for dense relaxed graphs); each generator measured "
                  f"both ways in {settings(of['generator'], 'repeats')} alternating rounds per run, best of each "
                  "kept. Online generators' student steps include drawing each batch (and DFAD's and conditional's "
                  "generator updates); offline sets are drawn once, resampled every epoch, and labelled by the "
                  "teacher batch by batch.", ""]
    if prior_lines:
        lines += ["## Before/after: node-type prior fit (set-up of prior, gfkd, dfad)", "", *prior_lines]
    if kernel_rows:
        lines += ["## Scatter vs dense aggregation (forward + backward, 64 features, 4,000 nodes per batch)", "",
                  *table(["n", "density", "scatter ms", "dense bmm + conversion ms", "dense speed-up"] + tag_col,
                         kernel_rows), "",
                  "Full grid and crossover: `kernels.md`.", ""]
    if memory_rows:
        lines += [f"## GFKD memory against n (batch of {settings(of['memory'], 'graphs')} graphs, "
                  f"{settings(of['memory'], 'iterations')} iterations)", "",
                  *table(["candidates", "n", "graphs", "structure logits", "generation peak RSS MiB"] + tag_col,
                         memory_rows), "",
                  "Full table and the end-to-end run on large graphs: `memory.md`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
