"""Degree law inferred from the teacher alone against the true statistics of its training graphs.

For every cached hold-out teacher of ``distill_benchmark.py`` (trained by dfkd, so its checkpoint stores
the true mean degree and degree variance of its training graphs), infer the law from the teacher's
BatchNorm statistics alone (:func:`dfkd.generators.inference.infer_degree_law`, ignoring the stored
statistics) and record both. Teachers missing from the cache are trained first (same recipes and seeds).

    python benchmarks/structure_inference.py --datasets MUTAG PTC IMDBBINARY --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Dict, List

import torch

import dfkd
from dfkd.generators.inference import infer_degree_law

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_DATA_ROOT, RUNS, append_run, header_lines, holdout_teacher, provenance,  # noqa: E402
                    read_runs, table)

RAW = os.path.join(RUNS, "structure_inference.jsonl")
# Versions of the inference: runs of earlier versions stay in the raw file and are summarised beside the current one.
VERSIONS = {
    1: "one probe batch, dispersion 0.15-9, mean degree 0.75-16",
    2: "two probe batches averaged, dispersion 0.25-9, mean degree >= 1.8 (connected graphs of >= 10 nodes)",
    3: "version 2, its mean degree read off the first BatchNorm layer alone (the prior generator's default)",
}
VERSION = max(VERSIONS)
MEAN_FROM = "first-layer"  # where version 3 reads the mean degree (infer_degree_law's mean_from); 1 and 2: all layers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--teacher", default="gin-5-64")
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=os.path.join(RUNS, "holdout_teachers"))
    p.add_argument("--raw", default=RAW)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    done = {(r["dataset"], r["teacher"], r["seed"]) for r in read_runs([args.raw]) if version(r) == VERSION}
    for name in args.datasets:
        dataset = None
        for seed in args.seeds:
            if (name, args.teacher, seed) in done:
                continue
            dataset = dataset or dfkd.load_dataset(name, root=args.data_root)
            ckpt = holdout_teacher(dataset, name, args.teacher, seed, args.cache)
            stats = ckpt.size_stats
            start = time.perf_counter()
            law = infer_degree_law(ckpt.build_model().eval(), ckpt.feature_spec, (10, 30), seed=seed,
                                   mean_from=MEAN_FROM)
            run = dict(benchmark="structure_inference", version=VERSION, dataset=name, teacher=args.teacher, seed=seed,
                       encoding=ckpt.feature_spec.encoding, true_mean_degree=stats.mean_degree,
                       true_dispersion=stats.degree_dispersion, mean_degree=law.mean_degree,
                       dispersion=law.dispersion, score=law.score, layers=law.layers, method=law.method,
                       seconds=time.perf_counter() - start, **provenance())
            append_run(args.raw, run)
            print(name, seed, f"true {stats.mean_degree:.2f}/{stats.degree_dispersion:.2f}",
                  f"inferred {law.mean_degree:.2f}/{law.dispersion:.2f}", flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


def version(run: Dict) -> int:
    return run.get("version", 1)


def render(all_runs: List[Dict]) -> str:
    all_runs = [r for r in all_runs if r.get("benchmark") == "structure_inference"]
    runs = [r for r in all_runs if version(r) == VERSION]
    groups = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["teacher"])].append(r)
    rows = []
    for (name, teacher), items in sorted(groups.items()):
        for r in sorted(items, key=lambda r: r["seed"]):
            rows.append([name, teacher, r["seed"], r["encoding"], f"{r['true_mean_degree']:.2f}", f"{r['mean_degree']:.2f}",
                         f"{r['mean_degree'] / r['true_mean_degree'] - 1:+.0%}", f"{r['true_dispersion']:.2f}",
                         f"{r['dispersion']:.2f}", r["layers"], f"{r['seconds']:.0f}"])
    by_teacher = defaultdict(list)
    for r in all_runs:
        by_teacher[(version(r), r["teacher"])].append(abs(r["mean_degree"] / r["true_mean_degree"] - 1))
    summary = [f"- version {v} ({VERSIONS[v]}), {teacher}: median absolute error of the mean degree over "
               f"{len(errors)} teachers {statistics.median(errors):.0%} (largest {max(errors):.0%})"
               for (v, teacher), errors in sorted(by_teacher.items(), key=lambda kv: (-kv[0][0], kv[0][1]))]
    return "\n".join([
        "# Degree law inferred from the teacher alone, against its training graphs' statistics", "",
        *header_lines(runs, ["structure_inference.jsonl"]),
        "- teachers: `distill_benchmark.py`'s 70/30 hold-out teachers; their checkpoints store the true statistics, "
        f"which the inference does not read. Table: the current inference (version {VERSION}: {VERSIONS[VERSION]}; "
        "probe graphs of 10-30 nodes, `dfkd.generators.inference`).", "",
        *table(["dataset", "teacher", "seed", "features", "true mean degree", "inferred", "error",
                "true dispersion", "inferred", "BN layers", "s"], rows), "", *summary, ""])


if __name__ == "__main__":
    sys.exit(main())
