"""Automatic sparse/dense aggregation: the work it speeds up, before (always sparse) and after (auto), side by side.

For the seed-0 MUTAG GIN-5-64 hold-out teacher and a GIN-2-32 student, with one torch thread, the
median time of (repeats interleaved, so both modes see the same machine load):

* a **generator step** of ``dfad`` and of ``conditional`` (teacher and student forward + backward over
  every candidate pair of the relaxed graphs: the dense case);
* **GFKD** ``concrete``, 20 iterations and its set-up (soft all-pairs adjacency through the teacher);
* a **student step** on discrete generated graphs (sparse molecules: ``auto`` must stay on scatter);
* the teacher's forward + backward on a batch of weighted all-pairs graphs of 10, 20, 50 and 100 nodes.

    python benchmarks/propagation.py --results benchmarks/results/archive/propagation.md
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, alternating_medians, command, machine, mutag_teacher, table, write_results  # noqa: E402

import dfkd  # noqa: E402
from dfkd.distill import make_generator  # noqa: E402
from dfkd.generators.structure import candidate_pairs, node_to_graph, undirected  # noqa: E402
from dfkd.nn import build_model, call_model, forward_batch  # noqa: E402
from dfkd.ops import build_adjacency, use_propagation  # noqa: E402


def timed(fn, repeats: int) -> dict:
    """Median seconds per call of ``fn`` under ``sparse`` and ``auto``, alternating calls."""
    return alternating_medians(fn, repeats, {mode: (lambda m=mode: use_propagation(m)) for mode in ("sparse", "auto")})


def workloads(teacher, student, batch_size: int):
    """``(work, graphs, fn)`` for the work the aggregation choice affects: generator steps over relaxed
    all-pairs graphs, GFKD concrete, a student step on discrete graphs, teacher passes on weighted
    all-pairs graphs of growing size."""
    for name in ("dfad", "conditional"):
        gen = make_generator(name, teacher, warmup_steps=0).build(0)
        rng = torch.Generator().manual_seed(0)
        yield (f"{name} generator step ({batch_size} graphs)", "all pairs, relaxed",
               lambda gen=gen, rng=rng: gen.generator_step(student, batch_size, rng))
    gfkd = make_generator("gfkd", teacher, estimator="concrete", iterations=20)
    yield (f"gfkd concrete, 20 iterations with set-up ({batch_size} graphs)", "all pairs, soft",
           lambda: gfkd.generate(batch_size, seed=0, show_progress=False))
    prior = make_generator("prior", teacher).build(0)
    hard = prior.sample(batch_size, torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(student.parameters(), lr=0.0)

    def student_step():
        opt.zero_grad()
        forward_batch(student, hard).sum().backward()
    yield f"student step on prior graphs ({batch_size} graphs)", "discrete, sparse", student_step
    model = teacher.build_model().eval()
    for n in (10, 20, 50, 100):
        graphs = max(2, 4000 // n)
        counts = torch.full((graphs,), n)
        pairs, _ = candidate_pairs(counts)
        edge_index = undirected(pairs)
        weight = torch.rand(edge_index.size(1), requires_grad=True)
        x = torch.nn.functional.one_hot(torch.randint(teacher.feature_spec.dim, (graphs * n,)),
                                        teacher.feature_spec.dim).float()
        batch = node_to_graph(counts)

        def teacher_pass(x=x, edge_index=edge_index, batch=batch, weight=weight, graphs=graphs):
            call_model(model, x, edge_index, batch, graphs, edge_weight=weight).sum().backward()
        yield f"teacher forward + backward, {graphs} graphs of {n} nodes", "all pairs, weighted", teacher_pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--results", default=os.path.join(HERE, "results", "archive", "propagation.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher = dfkd.load_checkpoint(mutag_teacher())
    student = build_model("gin-2-32", in_channels=teacher.feature_spec.dim, out_channels=teacher.num_classes)
    rows = []

    def add(what, kind, fn):
        t = timed(fn, args.repeats)
        rows.append([what, kind, f"{t['sparse'] * 1e3:.1f}", f"{t['auto'] * 1e3:.1f}", f"{t['sparse'] / t['auto']:.2f}×"])
        print(rows[-1], flush=True)

    for what, kind, fn in workloads(teacher, student, args.batch_size):
        add(what, kind, fn)
    hard = make_generator("prior", teacher).build(0).sample(args.batch_size, torch.Generator().manual_seed(0))
    chosen = type(build_adjacency(hard.edge_index, None, hard.batch, hard.num_graphs)).__name__
    lines = ["# Automatic sparse/dense aggregation (`dfkd.ops.build_adjacency`)", "",
             f"- command: `{command()}`", f"- machine: {machine()}",
             f"- median of {args.repeats} repeats per mode, the two modes alternating call by call; "
             "before = every model on scatter kernels (`use_propagation('sparse')`), after = the automatic "
             "choice (dense per-graph blocks once the padded density reaches min(0.5, 5/n_max)).",
             f"- the automatic choice on the discrete prior graphs: `{chosen}`.", "",
             *table(["work", "graphs", "before: sparse ms", "after: auto ms", "speed-up"], rows)]
    write_results(args.results, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
