"""Class fidelity of the conditional generator: of the graphs asked for class y, the share the teacher classifies y.

What ``dfkd generate --generator conditional --class y`` gives: for every dataset and seed, the GFKD-protocol
hold-out teacher (as ``distill_benchmark.py``), the conditional generator built with its defaults
(warm-up only, no distillation), then ``--per-class`` graphs asked for each class. Also the size law's
spread (perplexity over the node counts, as a share of them) and the mean node count and degree per
class, so a high fidelity bought with degenerate graphs would show.

    python benchmarks/class_fidelity.py --results benchmarks/results/archive/class_fidelity.md
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_DATA_ROOT, HERE, command, holdout_teacher, machine, mean_std, table, write_results  # noqa: E402

import dfkd  # noqa: E402
from dfkd.generators import ConditionalGraphGenerator  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--cache", default=os.path.join(HERE, "runs", "holdout_teachers"))
    p.add_argument("--results", default=os.path.join(HERE, "results", "archive", "class_fidelity.md"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    rows = []
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        per_seed = []
        for seed in args.seeds:
            teacher = holdout_teacher(dataset, name, "gin-5-64", seed, args.cache)
            start = time.perf_counter()
            gen = ConditionalGraphGenerator.from_checkpoint(teacher).build(seed)
            build_s = time.perf_counter() - start
            law = gen.size_law()
            spread = torch.exp(-(law * law.log()).sum(-1)) / law.size(1)
            result = dict(seed=seed, warmup_steps=gen._observed, build_s=build_s, classes=[])
            for c in range(gen.num_classes):
                graphs = gen.generate(args.per_class, seed=seed + 100, classes=[c], show_progress=False)
                result["classes"].append(dict(
                    fidelity=float((graphs.teacher_logits.argmax(-1) == c).float().mean()),
                    nodes=float(graphs.num_nodes.float().mean()),
                    degree=float(graphs.num_edges.sum() * 2 / graphs.num_nodes.sum()),
                    spread=float(spread[c])))
            print(json.dumps(dict(dataset=name, **result)), flush=True)
            per_seed.append(result)
        for c in range(len(per_seed[0]["classes"])):
            rows.append([name, c, len(per_seed), mean_std([r["classes"][c]["fidelity"] for r in per_seed]),
                         f"{min(r['classes'][c]['fidelity'] for r in per_seed):.3f}",
                         mean_std([r["classes"][c]["nodes"] for r in per_seed]),
                         mean_std([r["classes"][c]["degree"] for r in per_seed]),
                         mean_std([r["classes"][c]["spread"] for r in per_seed]),
                         f"{sum(r['warmup_steps'] for r in per_seed) / len(per_seed):.0f}",
                         f"{sum(r['build_s'] for r in per_seed) / len(per_seed):.1f}"])
        write(args, rows)
    return 0


def write(args, rows) -> None:
    lines = ["# Class fidelity of the conditional generator (`dfkd generate --generator conditional --class y`)", "",
             f"- command: `{command()}`", f"- machine: {machine()}",
             f"- per dataset and seed: the GIN-5-64 hold-out teacher (70/30, as the distillation benchmark), the "
             f"conditional generator with its defaults (warm-up only), {args.per_class} graphs asked for each class.",
             "- fidelity: share the teacher classifies as the asked class (min: the worst seed); size-law spread: "
             "perplexity of the class's node-count law as a share of the possible counts; degree: mean node degree.",
             "", *table(["dataset", "class", "seeds", "fidelity", "min", "nodes", "degree", "size-law spread",
                         "warm-up steps", "build s"], rows)]
    write_results(args.results, lines)


if __name__ == "__main__":
    sys.exit(main())
