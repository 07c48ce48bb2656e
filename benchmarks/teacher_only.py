"""Teacher-only distillation of development teachers nobody tuned dfkd for (``dev_teachers.py``).

Each teacher is a bare ``state_dict`` of a plain PyTorch Geometric model, loaded through the foreign path
(:func:`dfkd.checkpoint.load_code_teacher`, as ``--teacher-module benchmarks.dev_teachers:build``; the GraphSAGE
and GIN-without-normalisation teachers are recognised as the zoo models they compute, ``METHOD@module`` keeps them
modules as every run before did) with no statistics of its training graphs: the **teacher-only** variant is dfkd's default recipe on exactly that.
The **with-statistics** variant hands the same teacher the size and degree statistics of its training
graphs (what a dfkd checkpoint carried before it recorded node-type shares); **type-frequencies** hands it only
the share of each one-hot node type among its training nodes (``--set type_frequencies=[...]``), which a
teacher without BatchNorm gives nothing to infer from; **top-type-shares** only those of its three commonest
types (``--set type_frequencies={column: share, ...}``: what a chemist knows of the atoms, say, without the
data), the rest spread as the teacher-only recipe spreads types; **all-statistics** hands it both (what a dfkd
checkpoint carries now). Students: one of the teacher's family (or the nearest zoo
model) and one of another family. Scores as in ``distill_benchmark.py``: test graphs (the teacher's 30%),
the teacher's validation graphs, and agreement on its fitting graphs. ``--methods real`` distils the same
students on the teacher's fitting graphs (real-data KD), the figure every data-free cell is set against.

    python benchmarks/teacher_only.py --datasets MUTAG --families resgcn --seeds 0
    python benchmarks/teacher_only.py --variants teacher-only --methods prior real
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from collections import defaultdict
from typing import Dict, List, Optional

import torch

import dfkd
from dfkd.checkpoint import load_code_teacher
from dfkd.data import size_stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dev_teachers  # noqa: E402
from common import DEFAULT_DATA_ROOT, RUNS, append_run, header_lines, mean_std, provenance, read_runs, table  # noqa: E402
from distill_benchmark import METHODS, distill_run  # noqa: E402
from leaderboard import adjusted, gain, mean  # noqa: E402

from dfkd.evaluate import WEAK_TEACHER_GAIN  # noqa: E402

RAW = os.path.join(RUNS, "teacher_only.jsonl")
# teacher family -> (a student of its family or the nearest zoo model, a student of another family)
STUDENTS = {"resgcn": ("gcn-3-32", "gin-2-32"), "sage": ("sage-3-32", "gin-2-32"),
            "gin_nobn": ("gin-2-32", "gcn-3-32"), "gat": ("gcn-3-32", "gin-2-32"), "gcn": ("gcn-3-32", "gin-2-32")}
VARIANTS = ("teacher-only", "with-statistics", "type-frequencies", "top-type-shares", "all-statistics")
TITLES = {"teacher-only": "teacher-only", "with-statistics": "with statistics",
          "type-frequencies": "with type frequencies", "top-type-shares": "with the top types' shares",
          "all-statistics": "with statistics and type frequencies"}
TYPE_VARIANTS = ("type-frequencies", "top-type-shares", "all-statistics")  # only for one-hot node types
TOP_TYPES = 3  # top-type-shares: the shares of this many commonest types
REAL = "real"  # KD on the teacher's own fitting graphs: the ceiling every data-free cell is set against
# A method's runs with the teacher kept as a module from other code (--keep-teacher-module): every run before
# dfkd recognised the zoo model a teacher computes (dfkd.nn.convert), which changed the GraphSAGE and
# GIN-without-normalisation teachers' students of their own family (the teacher's readout, its weights to start).
AS_MODULE = "@module"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"])
    p.add_argument("--families", nargs="+", default=list(dev_teachers.FAMILIES), choices=dev_teachers.FAMILIES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--methods", nargs="+", default=["prior"], choices=[*METHODS, *(m + AS_MODULE for m in METHODS)])
    p.add_argument("--students", nargs="+", default=None,
                   help="only these of each family's two students (default: both)")
    p.add_argument("--num-graphs", type=int, default=256)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--raw", default=RAW)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    args.precision = "fp32"
    torch.set_num_threads(args.threads)
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        for family in args.families:
            for seed in args.seeds:
                weights = dev_teachers.ensure(dataset, name, family, seed)
                fit, val, test = dev_teachers.splits(dataset, seed)
                parts = {"fit": [dataset[i] for i in fit], "val": [dataset[i] for i in val],
                         "test": [dataset[i] for i in test]}
                teachers = {recognise: load_code_teacher(
                    "dev_teachers:build", weights, dataset.num_features, dataset.num_classes, trust=True,
                    features=dataset.feature_spec.encoding, recognise=recognise,
                    kwargs=dict(name=family, in_channels=dataset.num_features, num_classes=dataset.num_classes))
                    for recognise in (True, False)}
                stats = size_stats(parts["fit"] + parts["val"])
                # What each variant hands over (with-statistics: size and degree only, as its runs before type
                # shares were recorded; type-frequencies passes the shares as an option instead).
                given = {"with-statistics": dataclasses.replace(stats, type_frequencies=None), "all-statistics": stats}
                for student in [s for s in STUDENTS[family] if args.students is None or s in args.students]:
                    for variant in args.variants:
                        for method in args.methods:
                            spec = METHODS[method.removesuffix(AS_MODULE)]
                            teacher = teachers[not method.endswith(AS_MODULE)]
                            options = dict(spec["options"])
                            if variant in TYPE_VARIANTS and (spec["generator"] != "prior"
                                                             or dataset.feature_spec.encoding != "one_hot"):
                                continue  # the prior generator's node types, for one-hot features
                            if variant == "type-frequencies":
                                options["type_frequencies"] = stats.type_frequencies
                            if variant == "top-type-shares":
                                options["type_frequencies"] = top_shares(stats.type_frequencies, TOP_TYPES)
                            run = dict(benchmark="teacher_only", dataset=name, family=family, seed=seed,
                                       student=student, variant=variant, method=method, epochs=args.epochs,
                                       num_graphs=args.num_graphs)
                            # Re-read: processes working through the datasets in different orders share the file.
                            if run_key(run) in {run_key(r) for r in read_runs([args.raw])}:
                                continue
                            run.update(distill_run(dataclasses.replace(teacher, size_stats=given.get(variant)), student,
                                                   spec, options, parts, seed, args))
                            append_run(args.raw, {**run, **provenance()})
                            print(json.dumps({k: run[k] for k in ("dataset", "family", "seed", "student", "variant",
                                                                  "method")}),
                                  json.dumps({k: round(v, 4) for k, v in run["test"].items()}), flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


def top_shares(shares: List[float], count: int) -> Dict[int, float]:
    """``{column: share}`` of the ``count`` largest ``shares``."""
    order = sorted(range(len(shares)), key=lambda c: -shares[c])[:count]
    return {c: shares[c] for c in order}


def run_key(run: Dict) -> tuple:
    return tuple(run[k] for k in ("dataset", "family", "seed", "student", "variant", "method", "epochs",
                                  "num_graphs"))


def render(all_runs: List[Dict]) -> Optional[str]:
    unique: Dict[tuple, Dict] = {}  # the first run of each key (two processes may have raced to the same one)
    for r in all_runs:
        if r.get("benchmark") == "teacher_only":
            unique.setdefault(run_key(r), r)
    runs = list(unique.values())
    if not runs:
        return None  # the teachers' own runs alone make no table
    groups, real = defaultdict(list), defaultdict(list)
    for r in runs:
        if r["method"].removesuffix(AS_MODULE) == REAL:  # the graphs are real: the variant does not apply
            real[(r["dataset"], r["family"], r["student"], r["method"].endswith(AS_MODULE))].append(r)
        else:
            groups[(r["dataset"], r["family"], r["student"], r["method"], r["variant"])].append(r)
    keys = sorted({k[:4] for k in groups})
    rows = []
    for key in keys:
        cells = []
        for variant in VARIANTS:
            items = groups.get(key + (variant,), [])
            cells.append(f"{mean_std([r['test']['accuracy'] for r in items])} ({adjusted(items):.2f})" if items else "–")
        any_items = next(groups[key + (v,)] for v in VARIANTS if groups.get(key + (v,)))
        weak = " ⚠" if gain(any_items) < WEAK_TEACHER_GAIN else ""
        agree = [f"{mean_std([r['test']['agreement'] for r in groups[key + (v,)]])}" if groups.get(key + (v,)) else "–"
                 for v in VARIANTS]
        rows.append([key[0], f"{key[1]} → {key[2]}", key[3],
                     mean_std([r["test"]["teacher_accuracy"] for r in any_items]) + weak,
                     f"{sum(r['test']['majority_accuracy'] for r in any_items) / len(any_items):.3f}",
                     *cells, _real_cell(real.get(key[:3] + (key[3].endswith(AS_MODULE),), [])), *agree,
                     len(any_items)])
    return "\n".join([
        "# Teacher-only distillation of development teachers", "",
        *header_lines(runs, ["teacher_only.jsonl", "dev_teachers.jsonl"]),
        "- teachers: `dev_teachers.py` (plain PyG models trained outside dfkd), loaded as bare state_dicts through "
        "`--teacher-module`; **teacher-only**: no statistics of the training graphs (dfkd's default recipe infers "
        "what it needs from the teacher); **with-statistics**: the same teacher given its training graphs' size "
        "and degree statistics; **with type frequencies**: teacher-only but for the share of each node type among "
        "its training nodes (`--set type_frequencies=[...]`); **with the top types' shares**: teacher-only but for "
        f"the shares of its {TOP_TYPES} commonest node types (`--set type_frequencies={{column: share, ...}}`, the "
        "rest spread uniformly over the other trained types); **with statistics and type frequencies**: both, as a "
        "dfkd checkpoint now carries them.",
        f"- `{AS_MODULE}`: the method with the teacher kept as the module it is (`--keep-teacher-module`), as every run "
        "before dfkd recognised the zoo model a teacher computes (`dfkd.nn.convert`, 2026-12-07): the GraphSAGE and "
        "GIN-without-normalisation teachers are now zoo models, so their students of the same family take their "
        "readout and normalisation and start from their weights (their other students are unchanged: a rerun of "
        "MUTAG GIN-without-normalisation → GCN, seed 0, matches its committed run); the GAT and residual-GCN "
        "teachers are not recognised. The plain PyG GCN teachers (`gcn`, added 2026-12-08) are recognised since "
        "PyG's bias after propagation has a zoo equivalent (`bias_after_propagation`).",
        "- cell: student test accuracy, mean ± std over seeds (chance-adjusted accuracy from the means); "
        f"⚠: teacher less than {WEAK_TEACHER_GAIN} above the majority class; **real-data KD**: the same student "
        "distilled on the teacher's own fitting graphs (`--methods real`; its seeds in brackets).", "",
        *table(["dataset", "teacher → student", "method", "teacher acc", "majority", *(TITLES[v] for v in VARIANTS),
                "real-data KD", *(f"agreement ({TITLES[v]})" for v in VARIANTS), "seeds"], rows), "",
        *summary_tables(groups, real),
        *structure_table(runs, [r for r in all_runs if r.get("benchmark") == "dev_teachers"])])


def _real_cell(items: List[Dict]) -> str:
    if not items:
        return "–"
    return f"{mean_std([r['test']['accuracy'] for r in items])} ({adjusted(items):.2f}) [{len(items)}]"


def summary_tables(groups: Dict[tuple, List[Dict]], real: Dict[tuple, List[Dict]]) -> List[str]:
    """Each method and variant over its cells (dataset × teacher × student whose teacher is meaningfully above
    the majority class): how many keep >= 0.6 of the teacher's gain, the median chance-adjusted accuracy (a
    teacher a few test graphs above the majority class swings a mean by whole units) and the mean agreement,
    first over every seed the method ran, then cell by cell against real-data KD on the seeds both ran."""
    every, against = [], []
    for method, variant in sorted({k[3:] for k in groups}):
        cells = {k[:3]: items for k, items in groups.items() if k[3:] == (method, variant)}
        own = [(adjusted(items), _agreement(items)) for items in cells.values() if gain(items) >= WEAK_TEACHER_GAIN]
        if own:
            adj, agree = zip(*own)
            seeds = sorted({r["seed"] for items in cells.values() for r in items})
            every.append([method, variant, ", ".join(map(str, seeds)), len(own), sum(a >= 0.6 for a in adj),
                          f"{statistics.median(adj):.2f}", f"{mean(agree):.3f}"])
        pairs = []  # (chance-adjusted, real-data KD's, agreement, real-data KD's) per cell, on shared seeds
        for cell, items in cells.items():
            reference = real.get(cell + (method.endswith(AS_MODULE),), [])
            shared = {r["seed"] for r in items} & {r["seed"] for r in reference}
            mine = [r for r in items if r["seed"] in shared]
            ref = [r for r in reference if r["seed"] in shared]
            if shared and gain(ref) >= WEAK_TEACHER_GAIN:
                pairs.append((adjusted(mine), adjusted(ref), _agreement(mine), _agreement(ref)))
        if pairs:
            adj, ref_adj, agree, ref_agree = zip(*pairs)
            against.append([method, variant, len(pairs), sum(a >= 0.6 for a in adj),
                            sum(a >= b - 1e-9 for a, b in zip(adj, ref_adj)), f"{statistics.median(adj):.2f}",
                            f"{statistics.median(ref_adj):.2f}", f"{mean(agree):.3f}", f"{mean(ref_agree):.3f}"])
    lines = []
    if every:
        lines += ["## Summary over the cells", "",
                  f"- cells: dataset × teacher × student whose teacher is at least {WEAK_TEACHER_GAIN} above the "
                  "majority class over the method's seeds; chance-adjusted accuracy from the means over seeds.", "",
                  *table(["method", "variant", "seeds", "cells", "≥ 0.6 of the gain", "median chance-adjusted",
                          "mean agreement"], every), ""]
    if against:
        lines += ["## Against real-data KD, cell by cell", "",
                  "- the same on the seeds both the method and real-data KD ran, each cell set against real-data "
                  "KD's own figure there.", "",
                  *table(["method", "variant", "cells", "≥ 0.6 of the gain", "≥ real-data KD",
                          "median chance-adjusted", "real-data KD's", "mean agreement", "real-data KD's"], against), ""]
    return lines


def _agreement(items: List[Dict]) -> float:
    return mean([r["test"]["agreement"] for r in items])


def structure_table(runs: List[Dict], teachers: List[Dict]) -> List[str]:
    """Mean degree and node count of the teacher-only synthetic graphs against the teachers' true training
    statistics (recorded by ``dev_teachers.py``, never shown to the teacher-only path)."""
    truth = {(r["dataset"], r["family"], r["seed"]): r["true_stats"] for r in teachers}
    groups = defaultdict(dict)  # one run per seed: the students of a teacher share its synthetic law
    for r in sorted(runs, key=lambda r: r["student"]):
        if r["variant"] == "teacher-only" and r.get("synthetic") and (r["dataset"], r["family"], r["seed"]) in truth:
            groups[(r["dataset"], r["family"], r["method"])].setdefault(r["seed"], r)
    rows = []
    for (name, family, method), by_seed in sorted(groups.items()):
        items = list(by_seed.values())
        true = [truth[(name, family, r["seed"])] for r in items]
        degree = [2 * r["synthetic"]["mean_edges"] / r["synthetic"]["mean_nodes"] for r in items]
        true_degree = [t["mean_degree"] for t in true]
        error = sum(d / t - 1 for d, t in zip(degree, true_degree)) / len(items)
        rows.append([name, family, method, f"{sum(true_degree) / len(true):.2f}", f"{sum(degree) / len(items):.2f}",
                     f"{error:+.0%}", f"{sum(t['mean_nodes'] for t in true) / len(true):.1f}",
                     f"{sum(r['synthetic']['mean_nodes'] for r in items) / len(items):.1f}", len(items)])
    if not rows:
        return []
    return ["## Structure: teacher-only synthetic graphs against the true training statistics", "",
            "- mean degree = 2 · edges / nodes of the synthetic graphs the student was trained on (last epoch's "
            "sample), averaged over seeds; true: the teacher's training graphs.", "",
            *table(["dataset", "teacher", "method", "true mean degree", "synthetic mean degree", "error",
                    "true mean nodes", "synthetic mean nodes", "seeds"], rows), ""]


if __name__ == "__main__":
    sys.exit(main())
