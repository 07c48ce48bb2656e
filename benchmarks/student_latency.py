"""Forward latency and size of small students: GNNs vs structure-blind MLPs (issue 6).

Times the forward pass (eval mode, ``torch.inference_mode``) of untrained students of the given
architectures on MUTAG-sized random molecule-like graphs (10-28 nodes, a random tree plus a few
ring-closing edges: mean degree about 2.2; 7 one-hot node types; 2 classes). Weights do not matter
for speed. Two numbers per student: one batch of ``--batch-size`` graphs and one single graph
(median over ``--repeats`` timed calls after ``--warmup`` untimed ones). ``mlp_pe`` is timed twice:
end to end (structural encodings computed from ``edge_index`` inside the forward) and graph-less,
on encodings precomputed once per graph (``forward_features``: what a deployment that stores the
encodings with the node features pays); the encoding step alone is timed too.

Every (student, mode) is appended as one JSON line to ``--raw`` (default ``runs/student_latency.jsonl``,
committed); ``python benchmarks/regenerate.py`` writes ``results/student_latency.md`` from them
(:func:`render`).

    python benchmarks/student_latency.py --threads 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable, Dict, List

import torch
from torch_geometric.data import Batch, Data

from dfkd.nn import build_model, count_parameters

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (RUNS, append_run, grouped, header_lines, load_average, load_note, machine_tags,  # noqa: E402
                    median, provenance, repeat_note, table)

RAW = os.path.join(RUNS, "student_latency.jsonl")
DEFAULT_ARCHS = ["gin-2-32", "gcn-2-32", "mlp-2-32", "mlp_pe-2-32"]
NUM_TYPES, NUM_CLASSES = 7, 2  # MUTAG


def molecule_like_graphs(count: int, seed: int, min_nodes: int = 10, max_nodes: int = 28) -> List[Data]:
    """Random connected graphs of MUTAG's sizes: a random tree plus ``n // 8`` extra edges, undirected."""
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(count):
        n = int(torch.randint(min_nodes, max_nodes + 1, (1,), generator=gen))
        parents = (torch.rand(n - 1, generator=gen) * torch.arange(1, n)).long()  # node i+1 -> a node < i+1
        src, dst = torch.arange(1, n), parents
        extra = torch.randint(0, n, (2, n // 8), generator=gen)
        extra = extra[:, extra[0] != extra[1]]
        src, dst = torch.cat([src, extra[0]]), torch.cat([dst, extra[1]])
        edge_index = torch.unique(torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]), dim=1)
        x = torch.nn.functional.one_hot(torch.randint(0, NUM_TYPES, (n,), generator=gen), NUM_TYPES).float()
        graphs.append(Data(x=x, edge_index=edge_index, num_nodes=n))
    return graphs


def median_ms(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=DEFAULT_ARCHS, help="students (NAME-LAYERS-HIDDEN)")
    p.add_argument("--batch-size", type=int, default=128, help="graphs per batch")
    p.add_argument("--single-graphs", type=int, default=32,
                   help="distinct graphs cycled through for the single-graph timing")
    p.add_argument("--repeats", type=int, default=100, help="timed calls per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls before each measurement")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", default=RAW, help="JSON lines file the rows are appended to (default: "
                                              "runs/student_latency.jsonl)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    batch = Batch.from_data_list(molecule_like_graphs(args.batch_size, args.seed))
    singles = [Batch.from_data_list([g]) for g in molecule_like_graphs(args.single_graphs, args.seed + 1)]
    mean_nodes = batch.num_nodes / args.batch_size
    mean_degree = batch.edge_index.size(1) / batch.num_nodes

    def timer(run: Callable[[Batch], object]):
        cursor = {"i": 0}

        def one() -> object:
            g = singles[cursor["i"] % len(singles)]
            cursor["i"] += 1
            return run(g)

        return (median_ms(lambda: run(batch), args.repeats, args.warmup), median_ms(one, args.repeats, args.warmup))

    base = dict(benchmark="student_latency", batch_size=args.batch_size, single_graphs=args.single_graphs,
                repeats=args.repeats, warmup=args.warmup, seed=args.seed, threads=args.threads,
                num_types=NUM_TYPES, num_classes=NUM_CLASSES, mean_nodes=mean_nodes, mean_degree=mean_degree)

    def record(arch: str, mode: str, params, times, load) -> None:
        append_run(args.raw, dict(base, arch=arch, mode=mode, parameters=params, batch_ms=times[0], single_ms=times[1],
                                  load_average=load, **provenance()))
        print(arch, mode, f"batch {times[0]:.3f} ms, single {times[1]:.3f} ms", flush=True)

    with torch.inference_mode():
        for arch in args.archs:
            torch.manual_seed(args.seed)
            model = build_model(arch, in_channels=NUM_TYPES, out_channels=NUM_CLASSES).eval()
            params = count_parameters(model)
            load = load_average()
            record(arch, MODES[0], params, timer(lambda b: model(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs)),
                   load)
            if hasattr(model, "forward_features"):  # mlp_pe: encodings precomputed once per graph
                cached = {id(b): model.encode(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs)
                          for b in [batch, *singles]}
                load = load_average()
                record(arch, MODES[1], params,
                       timer(lambda b: model.forward_features(cached[id(b)], b.batch, b.num_graphs)), load)
                load = load_average()
                record(arch, MODES[2], None,
                       timer(lambda b: model.encode(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs)), load)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/student_latency.md, rendered by benchmarks/regenerate.py from the raw runs

MODES = ("end to end", "graph-less (precomputed encodings)", "encodings only")
BASELINE = "gin-2-32"


def render(runs: List[Dict]) -> str:
    """``results/student_latency.md``: per graph set-up (batch size, timing settings), student and mode, the
    median batch and single-graph latency over runs, the throughput and the batch time against gin-2-32's. A
    pure function of ``runs`` (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "student_latency"]
    tags = machine_tags(runs)
    archs = {a: i for i, a in enumerate(DEFAULT_ARCHS)}
    modes = {m: i for i, m in enumerate(MODES)}
    setup = lambda r: (r["batch_size"], r["single_graphs"], r["seed"], r["repeats"], r["warmup"])  # noqa: E731
    groups = grouped(runs, lambda r: setup(r) + (r["arch"], r["mode"]), tags,
                     order=lambda k: (k[:5], k[-1], archs.get(k[5], len(archs)), k[5], modes.get(k[6], len(modes)), k[6]))
    figures = {key: (median(r["batch_ms"] for r in items), median(r["single_ms"] for r in items))
               for key, items in groups}
    lines = ["# Student inference latency", "", *header_lines(runs, ["student_latency.jsonl"], tags=tags),
             *load_note(runs), *repeat_note(items for _, items in groups)]
    for config in sorted({setup(r) for r in runs}):
        batch_size, single_graphs, seed, repeats, warmup = config
        items = [r for r in runs if setup(r) == config]
        rows = []
        for key, group in groups:
            if key[:5] != config:
                continue
            batch_ms, single_ms = figures[key]
            base = figures.get(config + (BASELINE, MODES[0], key[-1]))
            params = group[0]["parameters"]
            rows.append([f"`{key[5]}`", key[6], f"{params:,}" if isinstance(params, int) else "-", f"{batch_ms:.3f}",
                         f"{batch_size / batch_ms * 1000:,.0f}", f"{single_ms:.3f}",
                         f"{batch_ms / base[0]:.2f}×" if base else "-"] + ([key[-1]] if tags else []))
        several = len({setup(r) for r in runs}) > 1
        lines += [*(["", f"## Batch of {batch_size} graphs (seed {seed}, {repeats} repeats)", ""] if several else []),
                  f"- graphs: random molecule-like (seed {seed}), {', '.join(map(str, sorted({r['num_types'] for r in items})))} "
                  f"one-hot node types, {', '.join(map(str, sorted({r['num_classes'] for r in items})))} classes; batch "
                  f"of {batch_size} graphs, {median(r['mean_nodes'] for r in items):.1f} nodes/graph, mean degree "
                  f"{median(r['mean_degree'] for r in items):.2f}; single-graph timing cycles through {single_graphs} "
                  "other graphs",
                  f"- median of {repeats} timed forward calls after {warmup} warm-up calls, eval mode, "
                  f"`torch.inference_mode`, untrained weights, {', '.join(map(str, sorted({r['threads'] for r in items})))} "
                  "torch thread(s)", "",
                  *table(["student", "mode", "parameters", f"batch of {batch_size} (ms)", "graphs/s",
                          "single graph (ms)", f"batch time vs {BASELINE}"] + (["machine"] if tags else []), rows)]
    return "\n".join(lines + [""])


if __name__ == "__main__":
    sys.exit(main())
