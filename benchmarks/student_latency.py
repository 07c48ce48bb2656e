"""Forward latency and size of small students: GNNs vs structure-blind MLPs (issue 6).

Times the forward pass (eval mode, ``torch.inference_mode``) of untrained students of the given
architectures on MUTAG-sized random molecule-like graphs (10-28 nodes, a random tree plus a few
ring-closing edges: mean degree about 2.2; 7 one-hot node types; 2 classes). Weights do not matter
for speed. Two numbers per student: one batch of ``--batch-size`` graphs and one single graph
(median over ``--repeats`` timed calls after ``--warmup`` untimed ones). ``mlp_pe`` is timed twice:
end to end (structural encodings computed from ``edge_index`` inside the forward) and graph-less,
on encodings precomputed once per graph (``forward_features``: what a deployment that stores the
encodings with the node features pays); the encoding step alone is timed too.

    python benchmarks/student_latency.py --threads 1 --repeats 200
    python benchmarks/student_latency.py --threads 2 --results benchmarks/results/archive/student_latency.md
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable, List

import torch
from torch_geometric.data import Batch, Data

from dfkd.nn import build_model, count_parameters

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, command, machine, table  # noqa: E402

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
    p.add_argument("--results", default=os.path.join(HERE, "results", "archive", "student_latency.md"))
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

    rows, measured = [], {}
    with torch.inference_mode():
        for arch in args.archs:
            torch.manual_seed(args.seed)
            model = build_model(arch, in_channels=NUM_TYPES, out_channels=NUM_CLASSES).eval()
            params = count_parameters(model)
            batch_ms, single_ms = timer(lambda b: model(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs))
            measured[arch] = batch_ms
            rows.append([arch, "end to end", params, batch_ms, single_ms])
            if hasattr(model, "forward_features"):  # mlp_pe: encodings precomputed once per graph
                cached = {id(b): model.encode(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs)
                          for b in [batch, *singles]}
                batch_ms, single_ms = timer(lambda b: model.forward_features(cached[id(b)], b.batch, b.num_graphs))
                rows.append([arch, "graph-less (precomputed encodings)", params, batch_ms, single_ms])
                batch_ms, single_ms = timer(lambda b: model.encode(b.x, b.edge_index, b.batch, num_graphs=b.num_graphs))
                rows.append([arch, "encodings only", "-", batch_ms, single_ms])

    base = measured.get("gin-2-32")
    body = []
    for arch, mode, params, batch_ms, single_ms in rows:
        rel = f"{batch_ms / base:.2f}×" if base else "-"
        body.append([f"`{arch}`", mode, f"{params:,}" if isinstance(params, int) else params,
                     f"{batch_ms:.3f}", f"{args.batch_size / batch_ms * 1000:,.0f}", f"{single_ms:.3f}", rel])
    lines = ["# Student inference latency", "",
             f"- command: `{command()}`", f"- machine: {machine()}",
             f"- graphs: random molecule-like, {NUM_TYPES} one-hot node types, {NUM_CLASSES} classes; batch of "
             f"{args.batch_size} graphs, {mean_nodes:.1f} nodes/graph, mean degree {mean_degree:.2f}; single-graph "
             f"timing cycles through {args.single_graphs} other graphs",
             f"- median of {args.repeats} timed forward calls after {args.warmup} warm-up calls, eval mode, "
             "`torch.inference_mode`, untrained weights", "",
             *table(["student", "mode", "parameters", f"batch of {args.batch_size} (ms)", "graphs/s",
                     "single graph (ms)", "batch time vs gin-2-32"], body),
             ""]
    print("\n".join(lines))
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
