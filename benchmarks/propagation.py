"""Automatic sparse/dense aggregation: the work it speeds up, before (always sparse) and after (auto), side by side.

For the seed-0 MUTAG GIN-5-64 hold-out teacher and a GIN-2-32 student, with one torch thread, the
median time of (repeats interleaved, so both modes see the same machine load):

* a **generator step** of ``dfad`` and of ``conditional`` (teacher and student forward + backward over
  every candidate pair of the relaxed graphs: the dense case);
* **GFKD** ``concrete``, 20 iterations and its set-up (soft all-pairs adjacency through the teacher);
* a **student step** on discrete generated graphs (sparse molecules: ``auto`` must stay on scatter);
* the teacher's forward + backward on a batch of weighted all-pairs graphs of 10, 20, 50 and 100 nodes.

Every workload is appended as one JSON line to ``--raw`` (default ``runs/propagation.jsonl``, committed);
``python benchmarks/regenerate.py`` writes ``results/propagation.md`` from them (:func:`render`).

    python benchmarks/propagation.py --repeats 7
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (RUNS, alternating_medians, append_run, grouped, header_lines, load_average,  # noqa: E402
                    load_note, machine_tags, median, mutag_teacher, provenance, repeat_note, table)

import dfkd  # noqa: E402
from dfkd.distill import make_generator  # noqa: E402
from dfkd.generators.structure import candidate_pairs, node_to_graph, undirected  # noqa: E402
from dfkd.nn import build_model, call_model, forward_batch  # noqa: E402
from dfkd.ops import build_adjacency, use_propagation  # noqa: E402

RAW = os.path.join(RUNS, "propagation.jsonl")


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
    p.add_argument("--raw", default=RAW, help="JSON lines file the workloads are appended to (default: "
                                              "runs/propagation.jsonl)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    teacher = dfkd.load_checkpoint(mutag_teacher())
    student = build_model("gin-2-32", in_channels=teacher.feature_spec.dim, out_channels=teacher.num_classes)
    hard = make_generator("prior", teacher).build(0).sample(args.batch_size, torch.Generator().manual_seed(0))
    chosen = type(build_adjacency(hard.edge_index, None, hard.batch, hard.num_graphs)).__name__
    for index, (what, kind, fn) in enumerate(workloads(teacher, student, args.batch_size)):
        load = load_average()
        t = timed(fn, args.repeats)
        run = dict(benchmark="propagation", work=what, graphs=kind, order=index, batch_size=args.batch_size,
                   repeats=args.repeats, sparse_s=t["sparse"], auto_s=t["auto"], prior_adjacency=chosen,
                   load_average=load, **provenance())
        append_run(args.raw, run)
        print(what, f"sparse {t['sparse'] * 1e3:.1f} ms, auto {t['auto'] * 1e3:.1f} ms", flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/propagation.md, rendered by benchmarks/regenerate.py from the raw runs


def render(runs: List[Dict]) -> str:
    """``results/propagation.md``: per workload, the median milliseconds always on scatter kernels (before)
    and with the automatic choice (after), and the speed-up. A pure function of ``runs`` (sorted; no clock,
    no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "propagation"]
    tags = machine_tags(runs)
    groups = grouped(runs, lambda r: (r["order"], r["work"], r["graphs"]), tags)
    rows = []
    for key, items in groups:
        sparse, auto = median(r["sparse_s"] for r in items), median(r["auto_s"] for r in items)
        rows.append([key[1], key[2], f"{sparse * 1e3:.1f}", f"{auto * 1e3:.1f}", f"{sparse / auto:.2f}×"]
                    + ([key[-1]] if tags else []))
    lines = ["# Automatic sparse/dense aggregation (`dfkd.ops.build_adjacency`)", "",
             *header_lines(runs, ["propagation.jsonl"], tags=tags),
             f"- median of {', '.join(map(str, sorted({r['repeats'] for r in runs})))} repeats per mode, the two "
             "modes alternating call by call; before = every model on scatter kernels (`use_propagation('sparse')`), "
             "after = the automatic choice (dense per-graph blocks once the padded density reaches "
             "min(0.5, 5/n_max)).",
             f"- the automatic choice on the discrete prior graphs: "
             f"{', '.join(f'`{c}`' for c in sorted({r['prior_adjacency'] for r in runs}))}.",
             *load_note(runs), *repeat_note(items for _, items in groups), "",
             *table(["work", "graphs", "before: sparse ms", "after: auto ms", "speed-up"]
                    + (["machine"] if tags else []), rows), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
