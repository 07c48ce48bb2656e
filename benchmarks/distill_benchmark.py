"""Data-free distillation benchmark: every method, scored on real test graphs the teacher never saw.

Protocols (``--protocol``): ``holdout`` is GFKD's (per seed, the teacher is trained on a stratified 70%
and every student is scored on the other 30%); ``folds`` is DFAD-GNN's (the standard 10 folds, a teacher
per fold trained on the other nine, scores per fold). In both the teacher keeps 10% of its training part
to choose its best epoch; every run is also scored on those validation graphs, which no student trains
on: defaults are chosen on them, never on the test graphs (``results/README.md``, protocol).

For every dataset and split: train (or reuse) the teacher, then distil the student with
each method and score it: ``prior`` (teacher-prior graphs, dfkd's default, with
ablations ``prior-no-balance``, ``prior-er``, ``prior-uniform-types``), ``gfkd`` (ARM structure; ``gfkd-er``
its Erdős–Rényi start),
``gfkd-concrete`` (binary-concrete structure), ``gfkd-no-prior`` (ablation: no node-type prior,
feature learning rate 0.01), ``dfad`` (DFAD-GNN's adversarial generator; ``dfad-bn`` and
``dfad-bn-balance`` add its optional BatchNorm and class-balance terms, ``dfad-replay`` a memory
of past generated batches), ``conditional`` (label-conditioned generator, CGDD student recipe),
``prior-teacher-only``, ``gfkd-teacher-only``, ``dfad-teacher-only`` (the same on the teacher's weights
alone: its checkpoint's training statistics dropped), ``random`` (Erdős–Rényi graphs, the floor) and
``real`` (KD on the graphs the teacher was fitted on, the ceiling). Every run is appended as one JSON line
to ``--raw`` (committed; runs already there are skipped, so an interrupted benchmark resumes);
``python benchmarks/regenerate.py`` writes the tables from them.

    python benchmarks/distill_benchmark.py --datasets MUTAG PTC --seeds 0 1 2 --methods prior gfkd real
    python benchmarks/distill_benchmark.py --protocol folds --datasets MUTAG --methods prior real
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Optional

import torch

import dfkd
from dfkd.data.datasets import one_hot_frequencies
from dfkd.distill import DistillConfig, distill_student, preset_config
from dfkd.evaluate import classification_metrics, labels_of, predict
from dfkd.train import recorded_splits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_DATA_ROOT, RUNS, append_run, fold_teacher, holdout_teacher, provenance, read_runs  # noqa: E402
import oracles  # noqa: E402  (registers the oracle-prior generator)
import paper_fidelity  # noqa: E402

# The prior generator's default before disagreement mining (2026-12-06): its ablation rows below were run on
# it, so they name disagreement=0.0, and ``against`` names the row they are compared with.
BEFORE_MINING = {"disagreement": 0.0}
TEACHER_ONLY_BEFORE = "prior-teacher-only-no-disagreement"
# ... and before it read an inferred law's mean degree off the first BatchNorm layer (2026-12-07): every prior entry
# of METHODS run before then names law_mean_from="all-layers" (set below; it only matters where the law is inferred
# from BatchNorm layers over one-hot node types), and the teacher-only options run on it are set ``against`` it.
BEFORE_FIRST_LAYER = {"law_mean_from": "all-layers"}
TEACHER_ONLY_ALL_LAYERS = "prior-teacher-only-all-layers"
# ... and before its students of the teacher's family started from the teacher's weights (2026-12-07,
# dfkd.distill.inherit): every prior entry run before names student_init="random" (a student-recipe field).
BEFORE_INHERITANCE = {"student_init": "random"}
TEACHER_ONLY_RANDOM_INIT = "prior-teacher-only-random-init"

METHODS = {
    # dfkd's default: teacher-prior graphs, fresh every step, each class's quota mined where the student
    # disagrees with the teacher most (generators/prior.py).
    "prior": dict(generator="prior", options={}),
    # The same on the teacher's weights alone: the checkpoint's training statistics are dropped, so node counts
    # fall back to 10-30 and the degree law is inferred from the teacher (dfkd.generators.inference).
    "prior-teacher-only": dict(generator="prior", options={}, teacher_only=True),
    "gfkd-teacher-only": dict(generator="gfkd", options={}, teacher_only=True),
    "dfad-teacher-only": dict(generator="dfad", options={}, teacher_only=True),
    # The default before disagreement mining: within each class's quota, candidates at random.
    "prior-no-disagreement": dict(generator="prior", options=BEFORE_MINING),
    TEACHER_ONLY_BEFORE: dict(generator="prior", options=BEFORE_MINING, teacher_only=True),
    # Ablations of the prior generator (before mining): no class balancing; Erdős–Rényi degrees (dispersion 1);
    # uniformly random node types (no BatchNorm inversion).
    "prior-no-balance": dict(generator="prior", options={**BEFORE_MINING, "balance": 1}),
    "prior-er": dict(generator="prior", options={**BEFORE_MINING, "degree_dispersion": 1.0}),
    "prior-uniform-types": dict(generator="prior", options={**BEFORE_MINING, "type_prior": False}),
    # Each graph draws its own node-type composition around the prior (logistic-normal, σ = 3).
    "prior+type_spread": dict(generator="prior", options={**BEFORE_MINING, "type_spread": 3.0}),
    # The same on top of the default (mining): for teachers without BatchNorm, whose type prior is a guess.
    "prior+type_spread+disagreement": dict(generator="prior", options={"type_spread": 3.0}),
    "prior-teacher-only+type_spread": dict(generator="prior", options={**BEFORE_MINING, "type_spread": 3.0},
                                           teacher_only=True, against=TEACHER_ONLY_BEFORE),
    # Each class's quota favours candidates near the teacher's decision boundary (smallest top-2 margin).
    "prior-teacher-only+boundary": dict(generator="prior", options={**BEFORE_MINING, "boundary": 0.5},
                                        teacher_only=True, against=TEACHER_ONLY_BEFORE),
    # Each class's quota taken only from the candidates the student disagrees with the teacher on most.
    "prior-teacher-only+disagreement-full": dict(generator="prior", options={"disagreement": 1.0}, teacher_only=True),
    # Both: within each class's quota, candidates near the teacher's decision boundary and those the student gets
    # most wrong (the IMDB-B teachers are surer of prior graphs than of real ones: 0.91-0.96 against 0.76-0.81).
    "prior-teacher-only+boundary-mined": dict(generator="prior", options={"boundary": 0.5}, teacher_only=True),
    # A pool twice as large for the mining to choose from (8 candidates per graph).
    "prior-teacher-only+pool8": dict(generator="prior", options={"balance": 8}, teacher_only=True),
    # Twice the student steps on the same graphs (batches of 16): more steps without more generation.
    "prior-teacher-only+batch16": dict(generator="prior", options={}, teacher_only=True, distill={"batch_size": 16}),
    # Not an option but a hint: the teacher-only default handed the share of each node type among the teacher's
    # training nodes (--set type_frequencies=[...]) instead of reading them off its first BatchNorm layer; one-hot
    # datasets only. How much of the gap is the type inversion's?
    "prior-teacher-only+type-shares": dict(generator="prior", options={}, teacher_only=True, type_shares=True),
    # Node types that follow their neighbours': a pairwise model fitted to the mean and variance of the teacher's
    # first BatchNorm layer (generators/type_pairs.py); one-hot node types and BatchNorm teachers only.
    "prior-teacher-only+type-pairs": dict(generator="prior", options={"type_pairs": True}, teacher_only=True),
    "prior+type_pairs": dict(generator="prior", options={"type_pairs": True}),
    # Per-graph compositions around the inverted type prior (a molecule is mostly carbon or not), with mining.
    "prior-teacher-only+spread1": dict(generator="prior", options={"type_spread": 1.0}, teacher_only=True),
    # Half the mining pool, half again the student steps: about the default's wall time, more student updates.
    "prior-teacher-only+pool2-600": dict(generator="prior", options={"balance": 2}, teacher_only=True,
                                         distill={"epochs": 600}),
    # Boundary-seeking samples on top of the prior: half the chosen graphs get 5% of their node types switched
    # towards the student's disagreement with the teacher (HotFlip), then relabelled; one-hot node types only.
    "prior-teacher-only+perturb": dict(generator="prior", options={"perturb": 0.5}, teacher_only=True,
                                       one_hot_only=True),
    # Diversity over the stream: the choice also favours candidates isolated in the student's embedding space.
    "prior-teacher-only+diversity": dict(generator="prior", options={"diversity": 0.5}, teacher_only=True),
    # A curriculum over graph complexity: of every batch the smallest (sparsest) half first, all graphs after
    # half the epochs (dfkd.distill.curriculum).
    "prior-teacher-only+curriculum-size": dict(generator="prior", options={}, teacher_only=True, curriculum="size"),
    "prior-teacher-only+curriculum-density": dict(generator="prior", options={}, teacher_only=True,
                                                  curriculum="density"),
    # A smoother student: Adam weight decay 5e-4 (the GNN benchmarks' usual setting), against extrapolating wildly
    # from synthetic graphs to real ones.
    "prior-teacher-only+wd": dict(generator="prior", options={}, teacher_only=True, distill={"weight_decay": 5e-4}),
    "prior-teacher-only+wd2e-3": dict(generator="prior", options={}, teacher_only=True,
                                      distill={"weight_decay": 2e-3}),
    # Oracles, not methods (benchmarks/oracles.py): the teacher-only default with one factor of its graphs taken from
    # the teacher's training graphs, to split the gap to real-data KD into the parts a generator must get right.
    **{f"oracle:{name}": dict(generator="oracle-prior", options=dict(structures=structures, node_types=types),
                              teacher_only=True, oracle=True)
       for name, structures, types in (("structures", "real", "prior"), ("degree-types", "drawn", "degree"),
                                       ("structures+shares", "real", "shares"),
                                       ("structures+degree-types", "real", "degree"),
                                       ("shuffled-types", "real", "shuffled"), ("real-graphs", "real", "real"))},
    # Node counts over 10-60 instead of the 10-30 fallback: real test graphs reach past 30 (IMDB-B, NCI1).
    "prior-teacher-only+nodes60": dict(generator="prior", options={"max_nodes": 60}, teacher_only=True),
    # Half the graphs drawn as random unions of cliques (many triangles, as co-membership networks have):
    # before mining, and with it.
    "prior-teacher-only+cliques": dict(generator="prior", options={**BEFORE_MINING, "clique_share": 0.5},
                                       teacher_only=True, against=TEACHER_ONLY_BEFORE),
    "prior-teacher-only+cliques+disagreement": dict(generator="prior", options={"clique_share": 0.5}, teacher_only=True),
    # Ego-networks: a hub joined to every other node in half or all of the graphs, on top of the default (every
    # IMDB-B graph is an actor's ego-network; the degree law draws no such node).
    "prior-teacher-only+hub0.5": dict(generator="prior", options={"hub_share": 0.5}, teacher_only=True),
    "prior-teacher-only+hub": dict(generator="prior", options={"hub_share": 1.0}, teacher_only=True),
    # The inferred law's mean degree read off the teacher's first BatchNorm layer alone (its dispersion still from
    # all layers): half the error of the mean degree on these teachers (generators/inference.py, choose_law). The
    # default since; its runs, made as an option against the default before, stay here.
    "prior-teacher-only+first-layer-mean": dict(generator="prior", options={"law_mean_from": "first-layer"},
                                                teacher_only=True, against=TEACHER_ONLY_ALL_LAYERS),
    # Twice the student steps (800 epochs of 256 fresh graphs): is the student still under-trained?
    "prior-teacher-only+long": dict(generator="prior", options=BEFORE_MINING, teacher_only=True,
                                    distill={"epochs": 800}, against=TEACHER_ONLY_BEFORE),
    # The same on top of the default's mining (each epoch's graphs chosen against the current student).
    "prior-teacher-only+long-mined": dict(generator="prior", options={}, teacher_only=True, distill={"epochs": 800}),
    # Lower and higher student learning rates (Adam 3e-3 and 2e-2 instead of GFKD's 1e-2, decaying linearly to 0).
    "prior-teacher-only+lr3e-3": dict(generator="prior", options={}, teacher_only=True, distill={"lr": 3e-3}),
    "prior-teacher-only+lr2e-2": dict(generator="prior", options={}, teacher_only=True, distill={"lr": 2e-2}),
    # Calibration of the targets: a softer KL (T = 4) and matching the teacher's logits themselves (MSE).
    "prior-teacher-only+t4": dict(generator="prior", options=BEFORE_MINING, teacher_only=True,
                                  distill={"temperature": 4.0}, against=TEACHER_ONLY_BEFORE),
    "prior-teacher-only+logit-mse": dict(generator="prior", options=BEFORE_MINING, teacher_only=True, loss="mse",
                                         against=TEACHER_ONLY_BEFORE),
    # The prior generator with representation losses from the GNN-KD literature, a learnt adversarial
    # temperature, and a teacher-assistant chain (teacher → gin-3-48 → student), before mining.
    "prior+lsp": dict(generator="prior", options=BEFORE_MINING, loss="kl,lsp=1"),
    "prior+gsp": dict(generator="prior", options=BEFORE_MINING, loss="kl,gsp=1"),
    "prior+gcrd": dict(generator="prior", options=BEFORE_MINING, loss="kl,gcrd=0.1"),
    "prior+relation": dict(generator="prior", options=BEFORE_MINING, loss="kl,relation=1"),
    "prior+dynamic_kl": dict(generator="prior", options=BEFORE_MINING, loss="dynamic_kl"),
    "prior+assistant": dict(generator="prior", options=BEFORE_MINING, assistants=["gin-3-48"]),
    # Easy-to-hard curriculum inside every batch (teacher confidence), widening over the first half.
    "prior+curriculum": dict(generator="prior", options=BEFORE_MINING, curriculum="confidence"),
    # The student predicts through a projection and the teacher's own (frozen) classifier.
    "prior+teacher_head": dict(generator="prior", options=BEFORE_MINING, teacher_head="frozen"),
    "gfkd": dict(generator="gfkd", options={}),
    # GFKD's Erdős–Rényi start (the default before the degree-law start).
    "gfkd-er": dict(generator="gfkd", options={"degree_law": False}),
    "gfkd-concrete": dict(generator="gfkd", options={"estimator": "concrete"}),
    # Ablation: the reference recipe's uniformly random initial node types and feature learning rate.
    "gfkd-no-prior": dict(generator="gfkd", options={"type_prior": False, "feature_lr": 0.01}),
    "dfad": dict(generator="dfad", options={}),
    # DFAD-GNN's optional priors (off by default): the teacher's BatchNorm statistics, class balance.
    "dfad-bn": dict(generator="dfad", options={"bn_weight": 1.0}),
    "dfad-bn-balance": dict(generator="dfad", options={"bn_weight": 1.0, "balance_weight": 1.0}),
    # The generator learning rate of image-domain DFAD (1e-3): the generator drifts from its prior
    # initialisation too fast and the student collapses on MUTAG (the default is 1e-4).
    "dfad-lr1e-3": dict(generator="dfad", options={"lr": 1e-3}),
    "dfad-bn-lr1e-3": dict(generator="dfad", options={"lr": 1e-3, "bn_weight": 1.0}),
    # A memory of past generated batches replayed to the student (not in the paper).
    "dfad-replay": dict(generator="dfad", options={"replay": 16}),
    "conditional": dict(generator="conditional", options={}),
    "random": dict(generator="random", options={}),
    "real": dict(generator=None, options={}),
    # Real-data KD whose student starts from the teacher's weights, as the prior default's same-family students do
    # (dfkd.distill.inherit); real-data KD itself starts at random.
    "real+inherit": dict(generator=None, options={}, distill={"student_init": "teacher"}),
    # GFKD and DFAD-GNN as published (--preset paper) and with one of dfkd's deviations each (paper_fidelity.py).
    **paper_fidelity.methods(),
}


def _ran_before(field: str, earlier: dict, current: tuple, against: Optional[str] = None) -> None:
    """Every prior entry of :data:`METHODS` so far but ``current`` ran before a default changed: it names the
    ``earlier`` values in its ``field`` (``options`` or ``distill``; its own values win), and its teacher-only
    options are set ``against`` the default they ran on where they name none."""
    for name, spec in METHODS.items():
        if spec["generator"] in ("prior", "oracle-prior") and name not in current:
            spec[field] = {**earlier, **spec.get(field, {})}
            if against and name.startswith("prior-teacher-only+"):
                spec.setdefault("against", against)


_ran_before("options", BEFORE_FIRST_LAYER, ("prior", "prior-teacher-only", "prior-teacher-only+first-layer-mean"),
            against=TEACHER_ONLY_ALL_LAYERS)
METHODS.update({
    # The two defaults before the first-layer mean, with statistics (dev teachers' variants) and teacher-only.
    "prior-all-layers": dict(generator="prior", options=BEFORE_FIRST_LAYER),
    TEACHER_ONLY_ALL_LAYERS: dict(generator="prior", options=BEFORE_FIRST_LAYER, teacher_only=True,
                                  against=TEACHER_ONLY_BEFORE),
    # The two defaults before students started from the teacher's weights (their runs relabelled; a student of
    # another family, or a teacher from other code, still starts at random, so those runs kept their names).
    "prior-random-init": dict(generator="prior", options={}),
    TEACHER_ONLY_RANDOM_INIT: dict(generator="prior", options={}, teacher_only=True, against=TEACHER_ONLY_ALL_LAYERS),
    # The default's inheritance (dfkd.distill.inherit) at the random-init learning rate, 1e-2 instead of 3e-3.
    "prior-teacher-only+inherit-lr1e-2": dict(generator="prior", options={}, teacher_only=True,
                                              distill={"student_init": "teacher", "lr": 1e-2}),
})
_ran_before("distill", BEFORE_INHERITANCE, ("prior", "prior-teacher-only"))  # ... and before the inheritance
METHODS.update({
    # The inherited layers kept closer to the teacher's (the head trains at the full rate): at a tenth of it, frozen
    # throughout, or frozen for the first quarter of the epochs (linear probing, then fine-tuning all).
    "prior-teacher-only+inherited-lr0.1": dict(generator="prior", options={}, teacher_only=True,
                                               distill={"inherited_lr_scale": 0.1}),
    "prior-teacher-only+inherited-frozen": dict(generator="prior", options={}, teacher_only=True,
                                                distill={"inherited_lr_scale": 0.0}),
    "prior-teacher-only+probe0.25": dict(generator="prior", options={}, teacher_only=True,
                                         distill={"probe_fraction": 0.25}),
    # Weight-space ensembles (dfkd.distill.averaging): the mean of the last half's epoch-end weights (SWA; with the
    # learning rate held constant throughout, as SWA's recipe keeps it high while averaging), and a quarter or half
    # of the inherited start blended back into the trained weights (WiSE-FT).
    "prior-teacher-only+swa0.5": dict(generator="prior", options={}, teacher_only=True,
                                      distill={"average_fraction": 0.5}),
    "prior-teacher-only+swa0.5-constant": dict(generator="prior", options={}, teacher_only=True,
                                               distill={"average_fraction": 0.5, "lr_schedule": "constant"}),
    "prior-teacher-only+wise0.25": dict(generator="prior", options={}, teacher_only=True,
                                        distill={"start_share": 0.25}),
    "prior-teacher-only+wise0.5": dict(generator="prior", options={}, teacher_only=True,
                                       distill={"start_share": 0.5}),
})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=["holdout", "folds"], default="holdout",
                   help="holdout: GFKD's 70/30 per seed; folds: DFAD-GNN's 10-fold cross-validation")
    p.add_argument("--datasets", nargs="+", default=["MUTAG", "PTC", "PROTEINS", "IMDBBINARY", "NCI1"])
    p.add_argument("--data-root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="holdout protocol: one split per seed")
    p.add_argument("--folds", type=int, nargs="+", default=list(range(1, 11)), help="folds protocol: folds to run")
    p.add_argument("--methods", nargs="+", default=["prior", "gfkd", "dfad", "conditional", "random", "real"],
                   choices=list(METHODS))
    p.add_argument("--teacher", default="gin-5-64")
    p.add_argument("--students", nargs="+", default=["gin-2-32"])
    p.add_argument("--num-graphs", type=int, default=256)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="generator option for every generator method (use with methods of one family); "
                        "recorded in the run")
    p.add_argument("--cache", default=os.path.join(RUNS, "holdout_teachers"), help="teacher checkpoints (not in git)")
    p.add_argument("--raw", default=None,
                   help="JSON lines file the runs are appended to (default: runs/distill_PROTOCOL.jsonl)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=list(dfkd.nn.PRECISIONS), default="fp32",
                   help="forward passes of generation and distillation (DistillConfig.precision)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    raw = args.raw or os.path.join(RUNS, f"distill_{args.protocol}.jsonl")
    overrides = {k: json.loads(v) for k, _, v in (s.partition("=") for s in args.set)}
    done = {run_key(r) for r in read_runs([raw])}
    splits = args.seeds if args.protocol == "holdout" else args.folds
    for name in args.datasets:
        dataset = dfkd.load_dataset(name, root=args.data_root)
        for split in splits:
            if args.protocol == "holdout":
                teacher = holdout_teacher(dataset, name, args.teacher, split, args.cache)
            else:
                teacher = fold_teacher(dataset, name, args.teacher, split, args.cache)
            fit_idx, val_idx, test_idx = recorded_splits(dataset, teacher.provenance)
            parts = {part: [dataset[i] for i in idx] for part, idx in
                     (("fit", fit_idx), ("val", val_idx), ("test", test_idx))}
            seed = split if args.protocol == "holdout" else 0
            for student in args.students:
                for method in args.methods:
                    spec = METHODS[method]
                    options = dict(spec["options"], **(overrides if spec["generator"] not in (None, "random") else {}))
                    one_hot_only = spec.get("type_shares") or spec.get("oracle") or spec.get("one_hot_only")
                    if one_hot_only and dataset.feature_spec.encoding != "one_hot":
                        continue  # node-type shares, type switches and the oracles are for one-hot node types
                    if spec.get("type_shares"):
                        options["type_frequencies"] = one_hot_frequencies(parts["fit"] + parts["val"])
                    oracles.OraclePriorGenerator.reference = parts["fit"] + parts["val"] if spec.get("oracle") else []
                    run = dict(benchmark="distill", protocol=args.protocol, dataset=name, seed=seed,
                               fold=None if args.protocol == "holdout" else split, teacher=args.teacher,
                               student=student, method=method, precision=args.precision, epochs=args.epochs,
                               num_graphs=args.num_graphs, overrides=overrides)
                    if run_key(run) in done:
                        continue
                    run.update(distill_run(teacher, student, spec, options, parts, seed, args))
                    run.update(provenance())
                    append_run(raw, run)
                    print(json.dumps({k: run[k] for k in ("dataset", "seed", "fold", "student", "method")}),
                          json.dumps({k: round(v, 4) for k, v in run["test"].items()}), f"{run['wall_s']:.0f} s",
                          flush=True)
    print(f"runs in {raw}; tables: python benchmarks/regenerate.py")
    return 0


def run_key(run) -> tuple:
    """What identifies a run: a raw file holds at most one run per key."""
    return (run["protocol"], run["dataset"], run["seed"], run["fold"], run["teacher"], run["student"], run["method"],
            run["precision"], run["epochs"], run["num_graphs"], json.dumps(run["overrides"], sort_keys=True))


def distill_run(teacher, student: str, spec: dict, options: dict, parts: dict, seed: int, args) -> dict:
    """Distil one student and score it on the test graphs and on the teacher's validation graphs (and, for
    data-free methods, on the teacher's fitting graphs, which such a student never saw either)."""
    result, model, wall = distil(teacher, student, spec, options, parts, seed, args)
    rep = result.report
    scores = {part: score(result.student, model, graphs) for part, graphs in parts.items()
              if part != "fit" or spec["generator"] is not None}
    return dict(scores, generation_s=rep.generation_seconds, distill_s=rep.distill_seconds, wall_s=wall,
                synthetic=result.graphs.summary() if result.graphs is not None else None)


def distil(teacher, student: str, spec: dict, options: dict, parts: dict, seed: int, args):
    """Distil one student with a :data:`METHODS` entry (``args``: ``epochs``, ``num_graphs``, ``precision``):
    ``(DistillResult, the teacher's model, wall seconds)``. ``real`` trains on ``parts["fit"]``."""
    start = time.perf_counter()
    if spec.get("teacher_only"):
        teacher = dataclasses.replace(teacher, size_stats=None)
    if spec.get("preset"):  # the preset's student recipe, with the deviation's changes
        config = preset_config(spec["generator"], spec["preset"], epochs=args.epochs, seed=seed,
                               precision=args.precision, **spec.get("distill", {}))
    else:
        fields = dict(epochs=args.epochs, seed=seed, loss=spec.get("loss", "auto"), curriculum=spec.get("curriculum"),
                      teacher_head=spec.get("teacher_head", "off"), precision=args.precision)
        config = DistillConfig(**{**fields, **spec.get("distill", {})})  # a leave-one-out's student options win
    result = distill_student(
        teacher, student, generator=spec["generator"] or "random", num_graphs=args.num_graphs,
        generator_options=options, config=config, preset=spec.get("preset"),
        assistants=spec.get("assistants", ()),  # no eval_graphs: the test graphs are scored once, after training
        real_graphs=parts["fit"] if spec["generator"] is None else None, show_progress=False)
    return result, teacher.build_model(), time.perf_counter() - start


def score(student, teacher, graphs) -> dict:
    """:func:`dfkd.evaluate.classification_metrics` of ``student`` against ``teacher`` on ``graphs``."""
    metrics = classification_metrics(predict(student, graphs), predict(teacher, graphs), labels_of(graphs))
    return dict(metrics, num_graphs=len(graphs))


if __name__ == "__main__":
    sys.exit(main())
