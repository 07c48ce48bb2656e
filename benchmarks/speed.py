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

    python benchmarks/speed.py --results benchmarks/results/archive/speed.md
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, command, machine, mutag_teacher, table, write_results  # noqa: E402

import dfkd  # noqa: E402
from dfkd.distill import DistillConfig, Distiller, build_student, make_generator  # noqa: E402
from dfkd.distill.sources import OnlineSource, SyntheticSetSource  # noqa: E402
from dfkd.generators.priors import estimate_type_prior  # noqa: E402
from dfkd.generators.structure import node_to_graph, sample_node_counts, sample_structure, undirected  # noqa: E402
from dfkd.ops import use_propagation  # noqa: E402

GENERATORS = ("random", "prior", "gfkd", "dfad", "conditional")


def generator_row(name: str, teacher, args) -> list:
    """One generator's throughput on scatter kernels only (before the automatic dense switch) and with the
    automatic choice (now): ``--repeats`` rounds, the two modes alternating, best figure of each kept."""
    best = {}
    for _ in range(args.repeats):
        for mode in ("sparse", "auto"):
            with use_propagation(mode):
                what, rate, build, steps, count = generator_figures(name, teacher, args)
            old = best.get(mode, (what, 0.0, None, 0.0, count))
            best[mode] = (what, max(rate, old[1]), build if old[2] is None else min(build, old[2]),
                          max(steps, old[3]), count)
    (what, before_rate, before_build, before_steps, count), (_, rate, build, steps, _) = best["sparse"], best["auto"]
    return [name, what, f"{before_rate:.1f}", f"{rate:.1f}", f"{rate / before_rate:.2f}×",
            f"{before_steps:.1f}", f"{steps:.1f}", f"{steps / before_steps:.2f}×",
            "-" if build is None else f"{before_build:.2f} / {build:.2f}", str(count)]


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


def type_prior_rows(teacher, args) -> list:
    """The node-type prior fit, truncated (after) vs full teacher forward (before), same inputs."""
    model = dfkd.nn.freeze(teacher.build_model())
    gen = torch.Generator().manual_seed(0)
    counts = sample_node_counts(64, 10, 28, gen)
    edges = undirected(sample_structure(counts, 2.2, 0.3, gen))
    rows = []
    results = {}
    for label, truncate in (("before: full teacher forward", False), ("after: stop at the first BatchNorm", True)):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            results[truncate] = estimate_type_prior(model, teacher.feature_spec.dim, edges, node_to_graph(counts),
                                                    64, truncate=truncate)
            times.append(time.perf_counter() - start)
        rows.append([label, f"{min(times):.3f}"])
    same = float((results[True][0] - results[False][0]).abs().max())
    speedup = float(rows[0][1]) / float(rows[1][1])
    return rows, same, speedup


def kernel_rows(args) -> list:
    from kernels import dense_path, make_inputs, scatter_path, time_path

    rows = []
    for n in (20, 100):
        graphs = 4000 // n
        for density in (0.1, 0.5, 1.0):
            inputs = make_inputs(n, density, graphs, 64)
            s = 1e3 * time_path(scatter_path("native"), inputs, graphs, n, 0.2)
            d = 1e3 * time_path(dense_path, inputs, graphs, n, 0.2)
            rows.append([str(n), f"{density:g}", f"{s:.2f}", f"{d:.2f}", f"{s / d:.2f}×"])
    return rows


def memory_rows() -> list:
    from memory import run_child

    rows = []
    for mode, n, b in (("all", 1000, 4), ("random", 1000, 4), ("all", 2000, 4), ("random", 2000, 4),
                       ("random", 5000, 4), ("random", 10000, 4)):
        r = run_child(n, b, mode, 2, 16)
        rows.append([mode, str(n), str(b), "-" if "error" in r else f"{r['pairs']:,}",
                     r.get("error", f"{r.get('during_mb', 0):,.0f}")])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graphs", type=int, default=256, help="graphs per epoch / synthetic set size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--gfkd-iterations", type=int, default=50)
    p.add_argument("--sample-batches", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2, help="rounds of every before/after pair (best kept)")
    p.add_argument("--generators", default=",".join(GENERATORS))
    p.add_argument("--no-memory", action="store_true", help="skip the memory rows (child processes)")
    p.add_argument("--results", default=os.path.join(HERE, "results", "archive", "speed.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher = dfkd.load_checkpoint(mutag_teacher())
    prior_rows, same, speedup = type_prior_rows(teacher, args)
    print(prior_rows, same, flush=True)
    gen_rows = []
    for name in args.generators.split(","):
        gen_rows.append(generator_row(name, teacher, args))
        print(gen_rows[-1], flush=True)
    k_rows = kernel_rows(args)
    print(k_rows, flush=True)
    m_rows = [] if args.no_memory else memory_rows()
    print(m_rows, flush=True)
    lines = ["# Speed: generation and distillation throughput on CPU", "",
             f"- command: `{command()}`", f"- machine: {machine()}",
             f"- teacher: gin-5-64 on MUTAG (`{os.path.relpath(mutag_teacher(), os.path.join(HERE, '..'))}`), student gin-2-32, "
             f"batch {args.batch_size}, {args.graphs} graphs per epoch, {args.epochs} epochs, generator defaults "
             f"(gfkd: {args.gfkd_iterations} iterations)",
             "- the 2 cores are shared with other jobs: absolute numbers move between runs, side-by-side ratios less", "",
             "## Per generator", ""]
    lines += table(["generator", "generation measured", "graphs/s, before: scatter only", "graphs/s, now: auto",
                    "speed-up", "student steps/s, before", "student steps/s, now", "speed-up",
                    "build s (once), before / now", "steps timed"], gen_rows)
    lines += ["", "Before = every model on scatter kernels (`use_propagation('sparse')`), now = the automatic "
              "sparse/dense choice (dense per-graph blocks for dense relaxed graphs); each generator measured "
              f"both ways in {args.repeats} alternating rounds in this run, best of each kept. Online generators' student steps include drawing each "
              "batch (and DFAD's and conditional's generator updates); offline sets are drawn once, resampled "
              "every epoch, and labelled by the teacher batch by batch.", "",
              "## Before/after: node-type prior fit (set-up of prior, gfkd, dfad)", ""]
    lines += table(["teacher forward", "seconds (300 Adam steps, 64 graphs)"], prior_rows)
    lines += ["", f"Speed-up **{speedup:.1f}×**, same distribution (largest difference {same:.1e}). The fit only "
              "needs the first BatchNorm layer's input, so the forward now stops there.", "",
              "## Scatter vs dense aggregation (forward + backward, 64 features, 4,000 nodes per batch)", ""]
    lines += table(["n", "density", "scatter ms", "dense bmm + conversion ms", "dense speed-up"], k_rows)
    lines += ["", "Full grid and crossover: `benchmarks/results/archive/kernels.md`.", ""]
    if m_rows:
        lines += ["## GFKD memory against n (batch of 4 graphs, 2 iterations)", ""]
        lines += table(["candidates", "n", "graphs", "structure logits", "generation peak RSS MiB"], m_rows)
        lines += ["", "Full table and the 5,000-node end-to-end run: `benchmarks/results/archive/memory.md`.", ""]
    write_results(args.results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
