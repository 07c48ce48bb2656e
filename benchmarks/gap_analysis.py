"""Where data-free students lose to real-data KD: agreement with the teacher, slice by slice.

For the leaderboard's teacher/student pairs (``distill_benchmark.py``'s 70/30 hold-out teachers, 256 synthetic
graphs, 400 epochs) this distils students with dfkd's default on the teacher's weights alone
(``prior-teacher-only``), the default with the checkpoint's training statistics (``prior``) and KD on the real
fitting graphs (``real``, the ceiling), and keeps, for every graph, what a breakdown needs: the label, the
teacher's and the student's classes, the teacher's confidence, the node count and the mean degree. Parts: the
test graphs, the teacher's validation graphs, and the graphs the student was trained on (the synthetic stream's
final sample; the fitting graphs for ``real``).

Every run is appended as one JSON line to ``--raw`` (default ``runs/gap_analysis.jsonl``, committed; runs already
there are skipped); ``python benchmarks/regenerate.py`` writes ``results/gap_analysis.md`` (:func:`render`): per
pair, the students' agreement with the teacher on slices of the test graphs (the teacher's class, thirds by node count,
mean degree and teacher confidence), each slice's share of the teacher-only student's deficit against
real-data KD, and agreement on the student's own training graphs beside the real ones.

    python benchmarks/gap_analysis.py --datasets MUTAG PTC --pairs gin-5-64:gin-2-32 --seeds 0
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import torch

import dfkd
from dfkd.evaluate import labels_of, predict
from dfkd.train import recorded_splits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_DATA_ROOT, RUNS, append_run, header_lines, holdout_teacher, provenance,  # noqa: E402
                    read_runs, table)
from distill_benchmark import (METHODS, TEACHER_ONLY_ALL_LAYERS, TEACHER_ONLY_BEFORE,  # noqa: E402
                               TEACHER_ONLY_RANDOM_INIT, distil, score)
from leaderboard import DATASETS, mean  # noqa: E402

RAW = os.path.join(RUNS, "gap_analysis.jsonl")
MAIN_METHODS = ["prior-teacher-only", "prior", "real"]
TITLES = {"prior-teacher-only": "teacher only", "prior": "with statistics", "real": "real-data KD",
          TEACHER_ONLY_ALL_LAYERS: "teacher only, joint law (an earlier default)",
          TEACHER_ONLY_RANDOM_INIT: "teacher only, student at random (the default before)"}
BANDS = ("nodes", "degree", "confidence")


def graph_records(student, teacher, graphs: Sequence, labelled: bool = True) -> Dict[str, list]:
    """Per graph (columns of equal length): ``label`` (with ``labelled``: real graphs), ``teacher`` and ``student``
    classes, ``confidence`` (the teacher's top softmax probability), ``nodes`` and ``degree`` (mean degree)."""
    t_logits = predict(teacher, graphs)
    probs = torch.softmax(t_logits.float(), -1)
    nodes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.float)
    edges = torch.tensor([g.edge_index.size(1) for g in graphs], dtype=torch.float)  # both directions
    out = {"teacher": probs.argmax(-1).tolist(), "student": predict(student, graphs).argmax(-1).tolist(),
           "confidence": [round(v, 3) for v in probs.max(-1).values.tolist()], "nodes": nodes.int().tolist(),
           "degree": [round(v, 2) for v in (edges / nodes.clamp(min=1)).tolist()]}
    if labelled:
        out["label"] = labels_of(graphs).tolist()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=DATASETS)
    p.add_argument("--pairs", nargs="+", default=["gin-5-64:gin-2-32", "gcn-5-64:gcn-3-32"],
                   help="TEACHER:STUDENT zoo specs (the leaderboard's GIN and GCN pairs)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=MAIN_METHODS, choices=list(METHODS))
    p.add_argument("--num-graphs", type=int, default=256)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default=os.path.join(RUNS, "holdout_teachers"), help="teacher checkpoints (not in git)")
    p.add_argument("--raw", default=RAW)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    args.precision = "fp32"
    torch.set_num_threads(args.threads)
    pairs = [tuple(s.split(":", 1)) for s in args.pairs]
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        for teacher_arch, student in pairs:
            for seed in args.seeds:
                teacher = holdout_teacher(dataset, name, teacher_arch, seed, args.cache)
                fit_idx, val_idx, test_idx = recorded_splits(dataset, teacher.provenance)
                parts = {part: [dataset[i] for i in idx] for part, idx in
                         (("fit", fit_idx), ("val", val_idx), ("test", test_idx))}
                for method in args.methods:
                    run = dict(benchmark="gap", dataset=name, seed=seed, teacher=teacher_arch, student=student,
                               method=method, epochs=args.epochs, num_graphs=args.num_graphs)
                    if run_key(run) in {run_key(r) for r in read_runs([args.raw])}:
                        continue
                    spec = METHODS[method]
                    result, model, wall = distil(teacher, student, spec, dict(spec["options"]), parts, seed, args)
                    trained_on = parts["fit"] if spec["generator"] is None else result.graphs.to_data_list()
                    run.update(wall_s=wall, test_scores=score(result.student, model, parts["test"]),
                               graphs={"test": graph_records(result.student, model, parts["test"]),
                                       "val": graph_records(result.student, model, parts["val"]),
                                       "trained_on": graph_records(result.student, model, trained_on,
                                                           labelled=spec["generator"] is None)})
                    run.update(provenance())
                    append_run(args.raw, run)
                    print(name, teacher_arch, student, seed, method,
                          f"test agreement {run['test_scores']['agreement']:.3f}", f"{wall:.0f} s", flush=True)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


def run_key(run) -> tuple:
    return (run["dataset"], run["seed"], run["teacher"], run["student"], run["method"], run["epochs"],
            run["num_graphs"])


THIRDS = ("lowest third", "middle third", "highest third")


def thirds(values: List[float]) -> List[int]:
    """Band of each value (0, 1, 2): the lowest, middle and highest third by rank (ties broken by position, so
    the bands stay equal in size where values saturate, as teacher confidence does)."""
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    band = [0] * len(values)
    for rank, i in enumerate(order):
        band[i] = 3 * rank // len(values)
    return band


def slices(graphs: Dict[str, list], classes: int) -> Dict[str, List[int]]:
    """Slice name → indices of the graphs in it: all, the teacher's class, and the thirds of each of
    :data:`BANDS` (:func:`thirds`)."""
    out = {"all": list(range(len(graphs["teacher"])))}
    for c in range(classes):
        out[f"teacher class {c}"] = [i for i, t in enumerate(graphs["teacher"]) if t == c]
    for name in BANDS:
        band = thirds(graphs[name])
        for k, third in enumerate(THIRDS):
            out[f"{name}, {third}"] = [i for i, b in enumerate(band) if b == k]
    return out


def overall_agreement(graphs: Dict[str, list]) -> float:
    """Share of the graphs on which student and teacher predict the same class."""
    return sum(t == s for t, s in zip(graphs["teacher"], graphs["student"])) / len(graphs["teacher"])


def _range(values: List[float]) -> str:
    return f" ({min(values):g}–{max(values):g})" if values else ""


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None or value != value else f"{value:.3f}"


def slice_table(by_method: Dict[str, List[Dict]], shown: List[str], classes: int):
    """Rows of the slice table (agreement per method, and with both ends the teacher-only − real gap and each
    slice's share of the deficit), its header, the overall gap, and ``(share of deficit, slice, gap, share of
    graphs)`` per slice with a share."""
    pooled = [r["graphs"]["test"] for r in by_method[shown[0]]]
    # slice -> method -> (agreeing, total), pooled over the seeds' test graphs
    counts: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for method in shown:
        for r in by_method[method]:
            g = r["graphs"]["test"]
            for name, idx in slices(g, classes).items():
                cell = counts[name][method]
                cell[0] += sum(g["teacher"][i] == g["student"][i] for i in idx)
                cell[1] += len(idx)
    ranges = {f"{b}, {t}": _range([g[b][i] for g in pooled for i, k in enumerate(thirds(g[b])) if k == n])
              for b in BANDS for n, t in enumerate(THIRDS)}
    has_gap = "prior-teacher-only" in by_method and "real" in by_method
    header = ["slice of the test graphs", "share"] + [TITLES.get(m, m) for m in shown]
    header += ["teacher only − real", "share of the deficit"] if has_gap else []
    total = counts["all"][shown[0]][1]
    overall, rows, contributions = None, [], []
    for name, per_method in counts.items():
        values = {m: per_method[m][0] / per_method[m][1] if per_method[m][1] else None for m in shown}
        share = per_method[shown[0]][1] / total if total else 0.0
        row = [name + ranges.get(name, ""), f"{share:.2f}"] + [_fmt(values[m]) for m in shown]
        if has_gap:
            a, b = values["prior-teacher-only"], values["real"]
            diff = None if a is None or b is None else a - b
            if name == "all":
                overall = diff
            # + 0.0: no "-0.00" for a slice without a gap
            part = (share * diff / overall + 0.0) if diff is not None and overall and overall < 0 else None
            row += ["–" if diff is None else f"{diff:+.3f}",
                    "–" if part is None or name == "all" else f"{part:.2f}"]
            if part is not None and name != "all":
                contributions.append((part, name, diff, share))
        rows.append(row)
    return header, rows, overall, contributions


def own_graph_rows(by_method: Dict[str, List[Dict]], shown: List[str]) -> List[List[str]]:
    """Per method: agreement on its own training graphs and on the test graphs, the training graphs' mean node
    count, degree and teacher confidence, and the wall time (means over seeds)."""
    def over_seeds(method: str, part: str, fn) -> float:
        return mean([fn(r["graphs"][part]) for r in by_method[method]])

    return [[TITLES.get(m, m), _fmt(over_seeds(m, "trained_on", overall_agreement)),
             _fmt(over_seeds(m, "test", overall_agreement)),
             f"{over_seeds(m, 'trained_on', lambda g: mean(g['nodes'])):.1f}",
             f"{over_seeds(m, 'trained_on', lambda g: mean(g['degree'])):.2f}",
             f"{over_seeds(m, 'trained_on', lambda g: mean(g['confidence'])):.3f}",
             f"{mean([r['wall_s'] for r in by_method[m]]):.0f}"] for m in shown]


def pair_section(key: Tuple[str, str, str], by_method: Dict[str, List[Dict]], methods: List[str]) -> List[str]:
    """Tables and findings of one (dataset, teacher, student) pair; runs pooled over seeds."""
    dataset, teacher, student = key
    shown = [m for m in methods if m in by_method]
    by_method = {m: sorted(by_method[m], key=lambda r: r["seed"]) for m in shown}
    first = by_method[shown[0]]  # every method of a seed scores the same test graphs
    classes = 1 + max(max(r["graphs"]["test"]["teacher"] + r["graphs"]["test"]["label"]) for r in first)
    pooled = [r["graphs"]["test"] for r in first]
    seeds = sorted({r["seed"] for rs in by_method.values() for r in rs})
    header, rows, overall, contributions = slice_table(by_method, shown, classes)
    lines = [f"### {dataset}: {teacher} → {student} (seeds {', '.join(map(str, seeds))})", "",
             "Agreement with the teacher on the test graphs, by slice (thirds by rank within each seed's test "
             "graphs; value ranges pooled):", "",
             *table(header, rows), "",
             "The student's own training graphs against the real test graphs (agreement with the teacher; the "
             "training graphs' mean node count, mean degree and teacher confidence):", "",
             *table(["student", "agreement, own training graphs", "agreement, test graphs", "nodes", "degree",
                     "teacher confidence", "wall s"], own_graph_rows(by_method, shown)),
             f"(test graphs: nodes {mean([v for g in pooled for v in g['nodes']]):.1f}, degree "
             f"{mean([v for g in pooled for v in g['degree']]):.2f}, teacher confidence "
             f"{mean([v for g in pooled for v in g['confidence']]):.3f})", ""]
    if contributions:
        part, name, diff, share = max(contributions)
        lines += [f"Largest share of the teacher-only deficit ({overall:+.3f} overall): `{name}` "
                  f"({share:.0%} of the graphs, {diff:+.3f}, {part:.0%} of the deficit).", ""]
    elif overall is not None:
        lines += [f"No deficit: teacher only − real-data KD = {overall:+.3f} overall.", ""]
    return lines


DEFAULT = "prior-teacher-only"
OPTION_PREFIX = DEFAULT + "+"  # distill_benchmark.py's teacher-only variants of the default
# The teacher-only defaults before, latest first.
EARLIER_DEFAULTS = (TEACHER_ONLY_RANDOM_INIT, TEACHER_ONLY_ALL_LAYERS, TEACHER_ONLY_BEFORE)
PAIRS = (("gin-5-64", "gin-2-32"), ("gcn-5-64", "gcn-3-32"))


def leaderboard_pair_runs(runs: List[Dict]) -> List[Dict]:
    """The leaderboard's hold-out runs of its GIN and GCN pairs under the default protocol (fp32, 400 epochs, 256
    graphs, no ``--set``): the runs the options and oracle tables compare."""
    return [r for r in runs
            if r.get("benchmark") == "distill" and r["protocol"] == "holdout" and not r.get("overrides")
            and r.get("precision", "fp32") == "fp32" and r["epochs"] == 400 and r["num_graphs"] == 256
            and (r["teacher"], r["student"]) in PAIRS]


def describe_option(method: str) -> str:
    """What a :data:`METHODS` variant changes against its baseline: its generator options and student-recipe
    fields (``–`` for the defaults, whose changes the text names)."""
    spec = METHODS.get(method, {})
    if method == DEFAULT or method in EARLIER_DEFAULTS:
        return "–"
    base = METHODS.get(baseline(method) or "", {})
    base_fields = {**base.get("options", {}), **base.get("distill", {})}
    changes = {k: v for k, v in {**spec.get("options", {}), **spec.get("distill", {})}.items()
               if base_fields.get(k) != v}
    for key in ("loss", "curriculum"):
        if spec.get(key):
            changes[key] = spec[key]
    if spec.get("type_shares"):
        changes["type_frequencies"] = "the training nodes' shares (a hint)"
    return ", ".join(f"{k}={v}" for k, v in changes.items()) or "–"


def baseline(method: str) -> Optional[str]:
    """The row a teacher-only option is compared with: its ``against`` (the default before a later default
    change it was run on), else the default; each default against the one before it (``None``: no row)."""
    if method == DEFAULT:
        return EARLIER_DEFAULTS[0]
    if method in EARLIER_DEFAULTS:
        return METHODS[method].get("against")
    return METHODS.get(method, {}).get("against", DEFAULT) if method.startswith(OPTION_PREFIX) else None


def option_label(method: str) -> str:
    if method == DEFAULT or method in EARLIER_DEFAULTS:
        when = "the default before" if method == EARLIER_DEFAULTS[0] else "an earlier default"
        name = "**default**" if method == DEFAULT else f"`{method[len(DEFAULT) + 1:]}` ({when})"
        return f"{name} (against `{baseline(method)[len(DEFAULT) + 1:]}`)"
    suffix = "" if baseline(method) == DEFAULT else f" (against `{baseline(method)[len(DEFAULT) + 1:]}`)"
    return f"`{method[len(OPTION_PREFIX):]}`{suffix}"


def option_sections(runs: List[Dict]) -> Tuple[List[str], List[Dict]]:
    """``(lines, the runs they use)``: every teacher-only option of the leaderboard runs (``distill_holdout.jsonl``)
    against its baseline (:func:`baseline`), run for run (same dataset, pair and seed): the change of agreement
    with the teacher on its fitting graphs (which a data-free student never sees; the selection criterion) and on
    its validation graphs."""
    by_method: Dict[str, Dict[tuple, Dict]] = defaultdict(dict)
    for r in leaderboard_pair_runs(runs):
        by_method[r["method"]][(r["dataset"], r["teacher"], r["student"], r["seed"])] = r
    pairs = {}  # option -> the keys both it and its baseline ran
    for name in by_method:
        against = baseline(name)
        keys = sorted(k for k in by_method[name] if k in by_method.get(against or "", {}))
        if keys:
            pairs[name] = keys
    if not pairs:
        return [], []
    order = (DEFAULT,) + EARLIER_DEFAULTS
    names = sorted(pairs, key=lambda m: (order.index(m) if m in order else len(order), m))
    used = [by_method[m][k] for m in names for k in pairs[m]] + [by_method[baseline(m)][k] for m in names
                                                                  for k in pairs[m]]

    def delta(name: str, keys, part: str) -> List[float]:
        base = by_method[baseline(name)]
        return [by_method[name][k][part]["agreement"] - base[k][part]["agreement"] for k in keys]

    summary = []
    for name in names:
        keys = pairs[name]
        fit = delta(name, keys, "fit")
        wall = mean([by_method[name][k]["wall_s"] for k in keys]) / mean([by_method[baseline(name)][k]["wall_s"]
                                                                         for k in keys])
        summary.append([option_label(name), describe_option(name), str(len(keys)),
                        ", ".join(map(str, sorted({k[3] for k in keys}))), f"{mean(fit):+.3f}",
                        f"{sum(d > 0.01 for d in fit)} / {sum(d < -0.01 for d in fit)}",
                        f"{mean(delta(name, keys, 'val')):+.3f}", f"{wall:.2f}"])
    cells = sorted({k[:3] for m in names for k in pairs[m]},
                   key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else 99, k[1:]))
    grid = []
    for cell in cells:
        row = [cell[0], f"{cell[1]} → {cell[2]}"]
        for method in (DEFAULT,) + EARLIER_DEFAULTS:
            runs_here = [r for k, r in by_method.get(method, {}).items() if k[:3] == cell]
            row.append(f"{mean([r['fit']['agreement'] for r in runs_here]):.3f}" if runs_here else "–")
        for name in names:
            keys = [k for k in pairs[name] if k[:3] == cell]
            row.append(f"{mean(delta(name, keys, 'fit')):+.3f} ({len(keys)})" if keys else "–")
        grid.append(row)
    return ["## Options tried against the gap, on the teacher's weights alone", "",
            "Each option of `benchmarks/distill_benchmark.py` (`prior-teacher-only+NAME`) against its baseline on "
            "the same teacher, student and seed (GIN and GCN pairs of the leaderboard): the teacher-only default, or "
            "for options run before the default changed, the default they were run on (`"
            + "`, `".join(EARLIER_DEFAULTS) + "`). "
            "Selection criterion: agreement with the teacher on its fitting graphs (the 70%, less the validation "
            "graphs; a data-free student never sees them); the test graphs play no part. Δ = option − baseline; "
            "better / worse: runs moved by more than 0.01; wall = the option's wall time over the baseline's (runs "
            "share the machine unevenly: a rough ratio).", "",
            *table(["option", "changes", "runs", "seeds", "Δ agreement, fitting graphs", "better / worse",
                    "Δ agreement, validation graphs", "wall ×"], summary), "",
            "Δ agreement on the fitting graphs by dataset and pair (runs); the first four columns are the "
            "agreement there of the default, of the default before its students started from the teacher's "
            "weights (random init), of the one before it read the mean degree off the first layer (joint law) and "
            "of the one before disagreement mining (means over their seeds):", "",
            *table(["dataset", "teacher → student", "default", "random init", "joint law", "before mining",
                    *[option_label(n) for n in names]],
                   grid), ""], used


ORACLE_BASE = TEACHER_ONLY_ALL_LAYERS  # the default the oracles were run on
ORACLE_COLUMNS = (  # (method, structures, node types): benchmarks/oracles.py
    (ORACLE_BASE, "drawn", "teacher's prior"), (OPTION_PREFIX + "type-shares", "drawn", "true shares"),
    ("oracle:degree-types", "drawn", "true shares by degree"), ("oracle:structures", "real", "teacher's prior"),
    ("oracle:structures+shares", "real", "true shares"),
    ("oracle:structures+degree-types", "real", "true shares by degree"),
    ("oracle:shuffled-types", "real", "own, shuffled in the graph"),
    ("oracle:real-graphs", "real", "own (the real graph)"))


def oracle_section(runs: List[Dict]) -> Tuple[List[str], List[Dict]]:
    """``(lines, the runs they use)``: the oracles of ``benchmarks/oracles.py`` beside the teacher-only default and
    real-data KD, on the seeds where every oracle ran: agreement with the teacher on its fitting graphs and on the
    test graphs, per pair and on average."""
    by_key: Dict[tuple, Dict[str, Dict]] = defaultdict(dict)
    for r in leaderboard_pair_runs(runs):
        by_key[(r["dataset"], r["teacher"], r["student"], r["seed"])][r["method"]] = r
    wanted = [m for m, _, _ in ORACLE_COLUMNS] + ["real"]
    keys = sorted((k for k, got in by_key.items() if all(m in got for m in wanted)),
                  key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else 99, k[1:]))
    if not keys:
        return [], []
    used = [by_key[k][m] for k in keys for m in wanted]

    def cell(run: Dict) -> str:
        fit = f"{run['fit']['agreement']:.3f}" if run["method"] != "real" else "–"
        return f"{fit} / {run['test']['agreement']:.3f}"

    rows = [[k[0], f"{k[1]} → {k[2]}", str(k[3]), *[cell(by_key[k][m]) for m in wanted]] for k in keys]
    fits = {m: mean([by_key[k][m]["fit"]["agreement"] for k in keys]) for m, _, _ in ORACLE_COLUMNS}
    tests = {m: mean([by_key[k][m]["test"]["agreement"] for k in keys]) for m in wanted}
    rows.append(["**mean**", "", str(len(keys)), *[f"{fits[m]:.3f} / {tests[m]:.3f}" for m, _, _ in ORACLE_COLUMNS],
                 f"– / {tests['real']:.3f}"])
    span = fits["oracle:real-graphs"] - fits[ORACLE_BASE]
    closed = [f"{(fits[m] - fits[ORACLE_BASE]) / span:.2f}" if span > 0 else "–" for m, _, _ in ORACLE_COLUMNS]
    rows.append(["**share of the gap closed** (fitting graphs)", "", "", *closed, ""])
    header = ["dataset", "teacher → student", "seed",
              *[f"structures {s}, types {t}" + (" (joint-law default)" if m == ORACLE_BASE else "")
                for m, s, t in ORACLE_COLUMNS],
              "real-data KD"]
    return ["## Which part of the real graphs closes the gap (oracles)", "",
            "Not methods: the teacher-only default as it was when they ran (the joint law, "
            f"`{ORACLE_BASE}`) with one factor of its graphs taken from the teacher's training "
            "graphs (`benchmarks/oracles.py`, `distill_benchmark.py --methods oracle:...`): the structures (a random "
            "training graph's edges and node count per synthetic graph) and the node types (i.i.d. from the true "
            "shares; from the true shares among nodes of the same degree; the real graph's own types shuffled within "
            "it; or as they are). Everything else is the default's (degree law and type prior read off the teacher, "
            "disagreement mining, student schedule). Cell: agreement with the teacher on its fitting graphs / on the "
            "test graphs; share of the gap closed = (column − default) / (real graphs − default) on the fitting "
            "graphs.", "", *table(header, rows), ""], used


READING = [
    "## What remains, and why", "",
    "- **The generator's graphs are the whole gap, and what they lack is which type sits where** (oracle table "
    "below: seeds 0-2, the eight GIN and GCN pairs with one-hot node types, agreement with the teacher on its "
    "fitting graphs). Through the default's mining and student schedule, the real training graphs themselves "
    "give students that agree with the teacher on the test graphs as well as real-data KD does (0.947 against "
    "0.941): loss, schedule and mining are not what holds the data-free students back. Handing the teacher-only "
    "default as it then was (joint law, students started at random) one factor of the real graphs at a time "
    "closes little of the gap between its 0.898 and the real graphs' 0.968: real structures with the teacher's "
    "type prior 0.901, the true type shares 0.898, the true "
    "shares among the nodes of each degree on drawn structures 0.876 (worse: PTC −0.03 to −0.14, where drawn "
    "structures join low-degree atoms to each other as molecules never do). Together, real structures with the "
    "types by degree close 39% of it (0.925), each real graph's own types shuffled within it 10% (0.905). So "
    "neither the structure nor the type mix alone is what the students miss, but the arrangement of types on "
    "structures, a joint law that the first BatchNorm layer does not pin down: on the NCI1 GIN teacher a model "
    "of types given degree fitted to that layer's mean and variance matched them better than the true "
    "per-degree shares do while moving its shares away from the truth (one-off diagnostic, not a committed run). "
    "The drawn molecule structures are visibly unlike real ones (MUTAG, NCI1, PTC; GIN teachers, seed 0, 200 "
    "graphs each, one-off): 1.8-2.1 connected pieces per graph against 1.0-1.15, 2-3% isolated nodes against "
    "none, 0.3-0.4 six-cycles in a cycle basis against 1.2-2.4, and a few triangles against none; yet real "
    "structures alone, under the teacher's type prior, close only 5% of the gap, so a more molecule-like "
    "structure sampler would not by itself close it either.",
    "- **Students that start from the teacher: the default since 2026-12-07** (`dfkd.distill.inherit`). The "
    "student extrapolates from the synthetic graphs to real ones; the teacher's own weights already compute its "
    "function on the real graphs. A student of the teacher's family now takes the teacher's first layers, "
    "narrowed to the channels that carry most (the expected activation after BatchNorm and ReLU times how much "
    "the head and the next layer read the channel), keeps the teacher's BatchNorm statistics while it trains "
    "(they describe the real graphs; the synthetic batches do not) and trains at Adam 3e-3. Untrained, such a "
    "student already agrees with the teacher on its fitting graphs 0.61-0.97 (seed 0: MUTAG GIN 0.61, NCI1 GCN "
    "0.83, IMDB-B GCN 0.95, PROTEINS GCN 0.97; one-off). Against the default before (`random-init`, 30 runs, "
    "seeds 0-2) agreement on the fitting graphs moves by +0.014 (15 up, 6 down) and on the validation graphs by "
    "+0.025 (15 up, 3 down), for the same wall time: IMDB-B GCN +0.074, GIN +0.027, NCI1 +0.033 and +0.028, "
    "PROTEINS +0.005 and +0.014, but MUTAG −0.014 and −0.014, PTC −0.009 and −0.005 (the two smallest sets; "
    "their validation graphs +0.000 and +0.083, +0.000 and −0.028); with the checkpoint's statistics "
    "(`prior` against `prior-random-init`, leaderboard) +0.024 and +0.030. Where the synthetic graphs are least "
    "like real ones (IMDB-B's structures, NCI1's type arrangements) the teacher's weights carry most. Both "
    "halves matter: at learning rate 1e-2 (`inherit-lr1e-2`, seed 0) the inherited start is trained away "
    "(−0.089 over ten runs, none up and 7 down; a MUTAG GCN student ends on one class), and with the student's "
    "BatchNorm statistics following the synthetic batches at 1e-2 the gain went (−0.004, 5 up and 5 down; seed 0, "
    "ten one-off runs, not committed). A student of another family (GCN teacher, GIN student) or of a teacher from "
    "other code (the development teachers) starts at random as before, its runs unchanged (rerun identical: "
    "MUTAG GCN → GIN, seed 0). Real-data KD from the same start (`real+inherit`, a reference on the leaderboard; "
    "real-data KD itself still starts at random) barely moves (26 runs: validation agreement +0.000, test "
    "+0.006): on the real graphs the student is shown the teacher's function where it matters; the inherited "
    "start stands in for graphs the data-free student is not shown. Under DFAD-GNN's ten folds (GIN pairs, with "
    "statistics) the default moved test agreement MUTAG 0.917 → 0.883, PTC 0.888 → 0.882, PROTEINS 0.943 → "
    "0.969, IMDB-B 0.858 → 0.862 (validation 0.894 → 0.894, 0.861 → 0.858, 0.946 → 0.968, 0.880 → 0.891).",
    "- **The inherited layers must move.** Keeping them nearer the teacher's, the head trained at the full rate "
    "(seed 0, agreement on the fitting graphs against the default, one process beside another so wall times are "
    "not comparable): at a tenth of the rate (`inherited-lr0.1`, ten runs) −0.013, 4 up and 6 down (MUTAG GCN "
    "−0.136); frozen (`inherited-frozen`, the two MUTAG runs) −0.38 and −0.15, a head on the teacher's first two "
    "layers cannot read the teacher's decision off them; the head alone for the first quarter of the epochs, "
    "then all (`probe0.25`, linear probing then fine-tuning, which in image models keeps pretrained features for "
    "inputs unlike the fine-tuning data) +0.004, 5 up and 4 down, validation +0.005: within the seed-to-seed "
    "spread, so not a default. The teacher's weights are a starting point the student has to repair, not "
    "features to keep.",
    "- **Nor weight-space ensembles of the student** (`dfkd.distill.averaging`, 2026-12-08; seed 0, ten runs "
    "each, agreement on the fitting graphs against the default). The mean of the last half's epoch-end weights "
    "(`swa0.5`, stochastic weight averaging, whose flatter minima carry over to shifted domains in image "
    "models): −0.000, 4 up and 5 down, validation +0.007; with the learning rate held constant throughout, as "
    "SWA's recipe keeps it while averaging (`swa0.5-constant`): −0.013, 3 up and 7 down. Blending the inherited "
    "start back into the trained weights (WiSE-FT, which keeps a fine-tuned image model robust to shifts its "
    "fine-tuning data lacked): a quarter (`wise0.25`) −0.021, 3 up and 7 down (NCI1 GIN −0.081, IMDB-B GIN "
    "−0.071), half (`wise0.5`) −0.045, 3 up and 7 down (PTC GIN −0.148). With the linear decay the last epochs "
    "barely move the weights, so there is little to average; and the narrowed start, which the student must "
    "repair (above), is no model to return to. Both stay options (`average_fraction`, `start_share`), off.",
    "- **Mostly not under-training.** The teacher-only students agree with the teacher on their own synthetic "
    "training graphs far better than on the real test graphs (the \"own training graphs\" tables below), and "
    "twice the student steps (`long` in the options table) gains little: the student learns the teacher's "
    "function where it is shown it and extrapolates wrongly to real graphs unlike those. On top of the mining, "
    "twice the epochs of fresh mined graphs (`long-mined`, seeds 0-2) move agreement on the fitting graphs by "
    "+0.007 (14 runs up, 3 down) and on the validation graphs by −0.001, for twice the generation (1.6 times "
    "the wall time in the options table): NCI1 gains on "
    "every seed and pair (+0.010 to +0.025; the GIN students' test agreement 0.879 → 0.897), the IMDB-B GIN "
    "seed-1 student loses 0.143. With validation flat and the budget (a MUTAG teacher in about a minute) "
    "doubled, the default keeps 400 epochs.",
    "- **Where it extrapolates wrongly.** Most of the deficit sits on the real graphs the teacher is least sure "
    "of, and on its rarer class (slice tables). Choosing the candidates the *teacher* is least sure of "
    "(`boundary`) did not carry over; choosing those the *student* gets most wrong (the default's "
    "`disagreement`) did, on average, with the largest gains where the teacher's classes hinge on structure "
    "(IMDB-B GCN, NCI1 GCN) and none on MUTAG. Nor do the two together (`boundary-mined`: −0.008, 2 up and 5 "
    "down, IMDB-B GIN −0.070), although the IMDB-B teachers are far surer of the prior's graphs than of their "
    "real ones (mean top probability 0.91-0.96 against 0.76-0.81, seeds 0-2; elsewhere, seed 0, within 0.05 "
    "of each other but for the PROTEINS GCN's, 0.59 against 0.72; one-off diagnostic): the graphs near the "
    "boundary the prior can draw are not where the real ones lie.",
    "- **Structure the degree law does not describe.** On an IMDB-B GCN teacher the class turns on which graphs "
    "of the same mean degree are unions of cliques (ego-networks) and which are not; degree-law graphs of that "
    "degree get the other class from the teacher, so the student learns a rule that real graphs break. "
    "Drawing half the graphs as clique unions (`cliques`) helps on IMDB-B without the default's mining, not on "
    "top of it (`cliques+disagreement`), and hurts on molecules (MUTAG, PROTEINS); the teacher's BatchNorm "
    "statistics, all layers together, cannot tell the two families apart (a batch of its own training "
    "graphs matches them no better than degree-law graphs do), so it is an option for teachers of "
    "co-membership networks, off by default. Every IMDB-B graph is an actor's ego-network, one node joined to "
    "all the others (21% of the nodes on average are); clique unions around such an ego, half the graphs, with "
    "the mining (one-off runs, agreement on the fitting graphs against the default's) beat plain clique unions "
    "(seed 1: GCN 0.756 against 0.632, GIN 0.860 against 0.727) but not the default: GCN +0.046, +0.018, "
    "−0.008, GIN −0.045, −0.018, −0.046 over seeds 0-2. The IMDB-B misses are one-sided: of the 165 fitting "
    "graphs on which the seed-1 GCN teacher's student disagrees with it, the teacher puts 164 in one class, "
    "which it gives 57% of the fitting graphs and the student 31%: sparse ego-networks with unequal degrees "
    "and many triangles (mean transitivity 0.73, against a median of 0.24-0.44 over drawn graphs; one-off "
    "diagnostic). A hub, one node joined to all the others, in every drawn graph (`hub`, `hub_share=1`, seeds "
    "0-2) lifts the GCN teachers' GCN students on every seed (+0.056, +0.105, +0.019; test agreement 0.816 → "
    "0.889) and their GIN students on two (−0.127, +0.022, +0.079), and sinks the GIN teachers' students on "
    "every seed (−0.143, −0.083, −0.100), which then miss the same one-sided way; in half the graphs "
    "(`hub0.5`) it does the same by less. Which teachers gain is not read off their weights yet, so it is an "
    "option (`hub_share`), off by default. The first BatchNorm layer of these degree-encoded teachers alone does tell "
    "real graphs from drawn ones: mismatch 0.04-0.16 for a batch of the teacher's fitting graphs, against "
    "0.33-1.0 for every family tried (the degree law, clique unions, ego-centred film casts, triangle closure, "
    "each with and without hubs, 10-30 or the real node counts), and 0.46-1.04 for the real graphs' own degree "
    "sequences wired at random (one-off diagnostics, four teachers): the layer records which degrees neighbour "
    "which, a law none of these samplers reproduces.",
    "- **Tuned targets do not help.** A softer KL (`t4`) and logit matching (`logit-mse`) lose agreement; "
    "the latter collapses on IMDB-B and PTC. Nor does matching the teacher's pooled graph embedding through a "
    "learnt linear map beside the KL (FitNets-style, an MSE standardised per dimension, weight 1; seed 0, ten "
    "runs, one-off): −0.094, none up and 7 down (NCI1 GCN −0.25): the student spends its capacity on the "
    "teacher's representation rather than its decision.",
    "- **Nor does more of the same.** A pool twice as large for the mining to choose from (`pool8`: +0.002, "
    "twice the teacher's and the student's forward passes over candidates), twice the student steps on the "
    "same graphs (`batch16`: −0.011) and node counts up to 60 where real test graphs reach past the 30-node "
    "fallback (`nodes60`: −0.018; IMDB-B GIN −0.064 although its deficit sat partly on the largest graphs) "
    "leave the default as it is (seed 0, ten runs each).",
    "- **Nor do per-graph type mixes or more, cheaper student steps.** Each graph drawing its types around the "
    "inverted prior (`spread1`, a logistic-normal spread σ = 1, with mining: −0.011, 1 run up and 5 down; "
    "nothing changes on IMDB-B, whose features are degrees) and half the mining pool for half again the student "
    "steps (`pool2-600`, about the default's wall time: −0.017, none up and 6 down; IMDB-B −0.05 and −0.04) leave "
    "the default as it is (seed 0, ten runs each): which graphs the student is shown matters more than how many "
    "updates it makes.",
    "- **Nor boundary-seeking perturbations, diversity or a complexity curriculum** (seed 0, ten runs each but "
    "`perturb`'s eight one-hot ones, agreement on the fitting graphs). Switching 5% of the node types of half "
    "the chosen graphs towards the student's disagreement (`perturb`, HotFlip's first-order rule, the teacher "
    "labelling them afresh): −0.033, 1 up and 4 down, NCI1 −0.05 and −0.09; like DFAD-GNN's generator, it "
    "shows the student parts of the teacher's function that real graphs do not reach. Favouring candidates "
    "isolated in the student's graph-embedding space (`diversity`, a coverage term): −0.008, 2 up and 3 down. "
    "The smallest or sparsest half of every batch first, all graphs after half the epochs (`curriculum-size`: "
    "−0.004, 2 up and 5 down; `curriculum-density`: −0.003, 2 up and 3 down). Choosing the candidates whose "
    "activations at every BatchNorm layer of the teacher sit closest to its running statistics (the sum over "
    "layers of |log| of each graph's mean squared z-score; one-off runs, not committed) did no better: in the "
    "mining's place −0.038 (none up, 8 down), beside it +0.001 (2 up, 2 down; ten runs each); that score does "
    "not even tell a teacher's real fitting graphs from the prior's on NCI1 (AUC 0.53 GIN, 0.36 GCN), though it does on "
    "MUTAG (0.71, 0.95), where the prior's graphs run hot in the deeper layers.",
    "- **Nor a smoother student.** Adam weight decay 5e-4 (`wd`, seeds 0-2, 30 runs): +0.002, 9 up and 5 down, "
    "the IMDB-B GCN student up on every seed (+0.044, +0.044, +0.024) but PTC's down (−0.056, −0.046); 2e-3 "
    "(`wd2e-3`, seed 0): −0.005, 2 up and 3 down. The student does not overfit its synthetic graphs in a way "
    "that a penalty on its weights undoes. Nor another learning rate: Adam 3e-3 (`lr3e-3`: −0.024, none up and "
    "7 down) or 2e-2 (`lr2e-2`: −0.006, 1 up and 3 down) instead of GFKD's 1e-2, each decaying linearly to 0 "
    "(seed 0, ten runs each).",
    "- **Teachers from other code that compute a zoo model: recognised since 2026-12-07** (`dfkd.nn.convert`; "
    "`teacher_only.md`, `prior` against `prior@module`). A development teacher that is a plain PyG GIN or "
    "mean-aggregating GraphSAGE stack now becomes the zoo model it computes (its logits checked on probe graphs), "
    "so its student of the same family takes its readout and normalisation and starts from its weights, as the "
    "leaderboard's students do. Over those 30 runs (GraphSAGE → GraphSAGE and GIN without normalisation → GIN, "
    "five datasets, seeds 0-2) agreement on the fitting graphs moves by +0.049 (23 up, 7 down) and on the "
    "validation graphs by +0.057: PROTEINS GraphSAGE +0.12, +0.18, +0.03 (test chance-adjusted 0.17 → 0.86), "
    "NCI1 GraphSAGE +0.04 on each seed (0.76 → 0.85), IMDB-B GraphSAGE +0.05 to +0.06, MUTAG GIN without "
    "normalisation +0.22 and +0.40 on seeds 0 and 2, but the seed-0 GIN-without-normalisation students of PTC and "
    "IMDB-B −0.19 and −0.14. What stays below 0.6 of the gain is what the weights cannot say: the node-type mix "
    "of a teacher without BatchNorm (MUTAG and NCI1 GIN without normalisation, −0.11 and 0.02) and PTC's "
    "GraphSAGE (0.35, a teacher 0.054 above the majority class). Real-data KD of the same students, now built "
    "like the teacher, moves as well (MUTAG GIN without normalisation 1.29 → 0.65 of the gain, a student without "
    "BatchNorm; PROTEINS GraphSAGE 0.60 → 1.01). Students of another family, and the GAT and residual-GCN "
    "teachers, which no zoo model computes, are unchanged (a rerun of MUTAG GIN without normalisation → GCN, "
    "seed 0, matches its committed run). Handed the node-type statistics, though, the recognised "
    "GIN-without-normalisation teachers' students do worse than the module's, a student with BatchNorm started "
    "at random (fitting graphs, all statistics −0.050, 1 up and 8 down; the three commonest types' shares "
    "−0.109, none of 6 up), while the GraphSAGE ones gain (+0.090, 5 of 6 up): a student without BatchNorm "
    "trains worse, and where the synthetic graphs are right that outweighs starting from the teacher. Which "
    "student a teacher without normalisation should get is open.",
    "- **Plain PyG GCN teachers: recognised since 2026-12-08** (`bias_after_propagation`; `teacher_only.md`, "
    "family `gcn`, added that day and used to choose nothing). PyG's `GCNConv` adds its bias after propagating, "
    "dfkd's GCN before; with the zoo GCN able to do either, a PyG stack of `GCNConv`, BatchNorm and ReLU (three "
    "layers, mean pooling) becomes the zoo GCN it computes, and its GCN student starts from its weights. Over "
    "those 15 runs (five datasets, seeds 0-2) agreement on the fitting graphs moves by +0.029 (13 up, 1 down) and "
    "on the validation graphs by +0.010 (MUTAG −0.08 and −0.15 on seeds 1 and 2, sets of 13 graphs); test "
    "chance-adjusted, scored once: NCI1 0.67 → 0.83, PROTEINS 0.83 → 0.92, PTC 0.94 → 0.94, IMDB-B 0.98 → "
    "0.96, MUTAG 1.22 → 0.74. Teacher only, nine of the family's ten cells keep at least 0.6 of the gain; the "
    "PROTEINS teacher's GIN student, which cannot inherit, keeps 0.39.",
    "- **On teachers without BatchNorm, the node-type mix** (`teacher_only.md`, not these pairs). A GAT or a GIN "
    "without normalisation keeps no statistics of its inputs, so its students see types drawn uniformly among "
    "the trained ones, nothing like a molecule's mix; handed only the training shares of the node types "
    "(`type-frequencies`), its NCI1 students go from 0.07-0.13 of the teacher's gain to 0.87-0.98, and the "
    "shares of the three commonest types alone, the rest spread uniformly over the other trained ones, do as "
    "much (`top-type-shares`: 0.90-0.96; the commonest type alone at 50%, 0.21 and 0.50 on the seed-0 GAT and "
    "GIN, one-off runs). Which types were trained on at all is read off the first layer's weights: a column "
    "no training node switched on still looks like its initial uniform draw; testing for that draw, rather "
    "than for an entry beyond the larger of the Kaiming and Glorot bounds, stopped a MUTAG GAT's carbon "
    "column (71% of its nodes, moved to 0.294 against bounds 0.151 and 0.378) from counting as untrained, and "
    "its students from never seeing carbon (seed 0: GCN student 0.333 → 0.737, agreement 0.333 → 0.947). "
    "Reading the shares off such a teacher remains open: its first layer's column norms do not order the types "
    "by frequency (rank correlation with the true shares −1.00 to +0.53 over six teachers), and the class "
    "balance of its predictions less its confidence, higher at the true shares than at nearly every one of 42 "
    "random ones, is higher still at shares a search finds far from them (NCI1 and MUTAG GAT). Restricted to "
    "one dominant type, the share of hidden units neither always on nor always off picks carbon on five of "
    "the six NCI1 and MUTAG GATs but on one of the six GINs without normalisation, and given the right "
    "dominant type it does not find the next two (their ranks 2-34 of 36 on NCI1; one-off diagnostics, not "
    "committed runs). The size of the teacher's logits points the same way and no further: drawn at the true "
    "shares, the graphs get the smallest median logit norm of four mixes (true, uniform over the trained types, "
    "true permuted, true flattened) from all six NCI1 teachers and five of six MUTAG ones (NCI1 GIN without "
    "normalisation: 0.4-0.9 against up to 2,200 for wrong mixes), but minimising it over the shares ends on "
    "rare or untrained types (total variation from the true shares 0.15-0.98; one-off). On these pairs' "
    "BatchNorm teachers, by contrast, the mix inverted from the first BatchNorm layer does as well as the true one (`type-shares`, the true shares handed over: +0.000 agreement "
    "on the fitting graphs over 24 runs, NCI1 GIN +0.022): their gap is not the type mix.",
    "- **The inferred degree law's mean, read off the first layer: the default since 2026-12-07.** Teacher "
    "only, the degree law is the grid point whose probe graphs best match all of the teacher's BatchNorm layers "
    "together; a deeper layer's sums over several hops also depend on graph sizes and type arrangements the "
    "probe graphs do not share, and pull that point off the mean degree (PROTEINS teachers 4.0-5.0 against a "
    "true 3.7, a PTC GCN teacher 10.0 against 2.03). Reading the mean degree off the first layer alone, the "
    "dispersion still off all layers (`law_mean_from=\"first-layer\"`), halves the GCN teachers' median error "
    "(18% → 9%, the largest 393% → 48%; GIN teachers 4% → 7%, the largest 34% → 18%: "
    "`structure_inference.md`, version 3) and moves less between probe draws (three probe seeds per teacher, "
    "one-off: PROTEINS GIN seed 0 5.0, 3.5, 4.0 from all layers, 3.5, 4.0, 3.5 from the first). As an option "
    "against the joint law (`first-layer-mean`, 30 runs) it changed the law of 15 teachers: agreement on the "
    "fitting graphs +0.005 (6 up, 2 down), on the validation graphs −0.014, all of it PTC's (24-graph sets, "
    "teachers within 0.06 of the majority class; the other datasets +0.003), and the leaderboard's worst "
    "teacher-only cell, PROTEINS GIN seed 2, from 0.840 to 0.944 (its true law gives 0.949). Chosen on the "
    "fitting graphs, the selection criterion; the default's runs redone on it reproduce the option's run for "
    "run. On the development teachers with BatchNorm, which played no part in the choice (`teacher_only.md`, "
    "`prior` against `prior-all-layers`, 20 cells of GraphSAGE and residual-GCN teachers on one-hot data): "
    "+0.030 on the fitting graphs (6 up, 3 down), +0.026 on the validation graphs; MUTAG GraphSAGE → GIN "
    "from 0.58 to 0.90 (chance-adjusted −1.27 → 1.07; with the type shares given, −1.29 → 0.60). Hedging the "
    "law instead, each graph's mean degree 0.67-1.5 times the inferred one (seed 0, the eight one-hot pairs, "
    "one-off), loses: −0.012, 1 up and 3 down.",
    "- **Nor, on those teachers, a narrower fallback degree law or a student without BatchNorm** (seed 0, "
    "teacher only, agreement on the fitting graphs; one-off runs, not committed). Without BatchNorm statistics "
    "a one-hot teacher's graphs fall back to mean degree 2 and Erdős–Rényi dispersion 1, which leaves 13% of "
    "the nodes isolated where training graphs are connected; dispersion 0.25 (the narrowest law the inference "
    "allows) moved 12 GAT and GIN-without-normalisation cells of MUTAG, NCI1 and PROTEINS by +0.016 on average "
    "(7 up, 4 down; NCI1 GAT +0.08 and +0.03, still near chance without the type mix), too little to redo "
    "their runs for; with the three commonest types' shares given, it lifted the MUTAG GIN-without-"
    "normalisation teacher's GCN student on each seed (+0.10, +0.17, +0.02; its GIN student stays at 0.975) "
    "but lowered the four NCI1 cells without normalisation (−0.01 to −0.04, seed 0): no default either way. "
    "Students without BatchNorm, whose running statistics would otherwise be those of the "
    "synthetic graphs, moved five weak cells by +0.006 (1 up: MUTAG GraphSAGE → GIN +0.14; 3 down, −0.03 to "
    "−0.05); the MUTAG GIN-without-normalisation teacher's GCN student still predicts one class on every real graph. Nor is it "
    "the students' running statistics themselves: recomputed on the teacher's fitting graphs after distillation "
    "(an oracle), they move six leaderboard students' test agreement by −0.12 to +0.11 (IMDB-B +0.03 and +0.04, "
    "PROTEINS GIN seed 2 +0.11, MUTAG GIN −0.12, NCI1 −0.05 and −0.03; one-off): the weights have adapted to "
    "the synthetic statistics.",
    "- **Types that follow their neighbours: read off the teacher, not a default.** Real node types pair "
    "across edges (PROTEINS: 66% of edges join one type against 46% for independent types; MUTAG: 88% of "
    "oxygen's neighbours are nitrogen), which independent draws lack, and the first BatchNorm layer's running "
    "variance depends on it. Fitted to that layer's mean and variance from the weights alone (`type-pairs`, "
    "`generators/type_pairs.py`), a pairwise model gets the pairing back (PROTEINS GraphSAGE teacher: 69% "
    "same-type edges against the data's 66%; MUTAG GIN: 74-79% against 72%), yet on these pairs it moves "
    "agreement on the fitting graphs by -0.011 (24 runs, 6 up and 9 down) at twice the wall time. On the "
    "development GraphSAGE teachers (`teacher_only.md`, `prior+type_pairs`) it helps their GIN students "
    "(MUTAG seeds 0 and 2: 0.53 and 0.31 agreement on the fitting graphs to 0.72 and 0.80) and hurts on PTC, "
    "whose GraphSAGE teacher's inferred degree law is far off (4.9 against 2.0): +0.021 over 24 runs, 12 up "
    "and 8 down. Given the true size and degree statistics, it lifts the PROTEINS and PTC GraphSAGE teachers' "
    "students by +0.055 (12 runs, 9 up and 2 down): the PROTEINS one, which no statistic rescued, keeps 0.45 "
    "and 0.51 of its gain on the test graphs instead of −0.05 and 0.04. Handed the true pair statistics "
    "instead (one-off diagnostics, not committed runs), the MUTAG GIN seed-0 student gains +0.034 and the "
    "PROTEINS GraphSAGE ones +0.046, +0.095 and -0.032: the pairing matters on some teachers (mean "
    "aggregation above all), but with a mean-aggregation teacher it is confounded with the degree law in the "
    "first layer's variance, and no default carries it yet.", ""]


def render(runs: List[Dict]) -> Optional[str]:
    """``results/gap_analysis.md`` from the gap-analysis runs and the leaderboard's teacher-only option runs
    (None without gap-analysis runs)."""
    leaderboard_runs = runs
    runs = [r for r in runs if r.get("benchmark") == "gap"]
    if not runs:
        return None
    groups: Dict[Tuple[str, str, str], Dict[str, List[Dict]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r["dataset"], r["teacher"], r["student"])][r["method"]].append(r)
    methods = MAIN_METHODS + sorted({r["method"] for r in runs} - set(MAIN_METHODS))
    option_lines, option_runs = option_sections(leaderboard_runs)
    oracle_lines, oracle_runs = oracle_section(leaderboard_runs)
    option_runs += [r for r in oracle_runs if r not in option_runs]
    lines = ["# Where data-free students lose to real-data KD", "",
             *header_lines(runs + option_runs, ["gap_analysis.jsonl"] + ["distill_holdout.jsonl"] * bool(option_runs)),
             "- protocol: the leaderboard's (70/30 hold-out teacher per seed, 256 synthetic graphs, 400 epochs);",
             "  `teacher only` = dfkd's default on the teacher's weights alone, `with statistics` = the default with",
             "  the checkpoint's training statistics, `real-data KD` = KD on the teacher's fitting graphs",
             "- agreement = share of graphs on which student and teacher predict the same class; a slice's share of",
             "  the deficit = its share of the graphs × its agreement gap / the overall gap", ""]
    lines += READING + oracle_lines + option_lines
    order = sorted(groups, key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else 99, k[1:]))
    lines += ["## Slice by slice", ""]
    for key in order:
        lines += pair_section(key, groups[key], methods)
    return "\n".join(lines).rstrip()


if __name__ == "__main__":
    sys.exit(main())
