"""Paper presets against dfkd's defaults, with each deviation switched on alone.

``gfkd-paper`` and ``dfad-paper`` run GFKD and DFAD-GNN as published (``--preset paper``, the presets'
docstrings in ``generators/gfkd.py`` and ``generators/adversarial.py``); ``gfkd`` and ``dfad`` are dfkd's
defaults; ``FAMILY-paper+NAME`` is the paper preset with one named deviation (:data:`DEVIATIONS`: the option
values dfkd's default uses) switched on; ``FAMILY-default-NAME`` is the default with that deviation switched off
(its options at the paper preset's values: a leave-one-out ablation, which attributes the default's gain where the
deviations only help together). The runs are the leaderboard's (``distill_benchmark.py``: its
teachers, 70/30 hold-out seeds, 256 synthetic graphs, 400 epochs) and go to the same raw file; this script only
picks the methods:

    python benchmarks/paper_fidelity.py --family gfkd --datasets MUTAG --seeds 0 1 2
    python benchmarks/paper_fidelity.py --family dfad --deviations --datasets MUTAG IMDBBINARY --seeds 0
    python benchmarks/paper_fidelity.py --family gfkd --leave-one-out --datasets MUTAG --seeds 0

(other arguments go to ``distill_benchmark.py``). ``python benchmarks/regenerate.py`` writes
``results/paper_fidelity.md`` (:func:`render`): per family, the paper preset, each deviation alone and the
default, on test graphs (accuracy, chance-adjusted) and on the teacher's validation graphs (chance-adjusted,
agreement), where a deviation is kept or dropped.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from typing import Dict, List, Optional

from dfkd.evaluate import WEAK_TEACHER_GAIN

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import header_lines, table  # noqa: E402
from leaderboard import DATASETS, adjusted, cell, gain, mean, validation_cell  # noqa: E402

# family -> deviation name -> {"generator": options, "distill": DistillConfig fields}: dfkd's default values of
# the options that differ from the paper preset, grouped where they only make sense together.
DEVIATIONS: Dict[str, Dict[str, Dict[str, dict]]] = {
    "gfkd": {
        "schedule": {"generator": dict(iterations=300, structure_lr=0.01, feature_lr=0.001, lr_decay_every=0)},
        "degree-start": {"generator": dict(init_structure="degree", degree_law=True)},
        "type-prior": {"generator": dict(type_prior=True)},
        "hard-features": {"generator": dict(hard_features=True, entropy_weight=0.0)},
        "relative-bn": {"generator": dict(bn_loss="relative", bn_weight=1.0)},
        "arm-ce": {"generator": dict(arm_objective="ce")},
        "sample-features": {"generator": dict(feature_structure="sample")},
        "balanced": {"generator": dict(targets="balanced")},
        "last-graph": {"generator": dict(keep_best=False)},
        "teacher-nodes": {"generator": dict(min_nodes=None, max_nodes=None, structure="auto", candidates="auto")},
        "resample": {"distill": dict(resample=True)},
    },
    "dfad": {
        "prob-game": {"generator": dict(discrepancy="prob_mae"), "distill": dict(loss="kl")},
        "wide-generator": {"generator": dict(noise_dim=64, hidden=[128, 256, 512])},
        "slow-generator": {"generator": dict(lr=1e-4)},
        "one-generator-step": {"generator": dict(generator_steps=1)},
        "type-prior": {"generator": dict(type_prior=True)},
        "student-optimiser": {"distill": dict(lr=0.01, weight_decay=0.0, lr_schedule="linear", batch_size=32)},
    },
}


def methods() -> Dict[str, dict]:
    """``distill_benchmark.METHODS`` entries of the paper presets, each deviation switched on alone in the paper
    preset (``FAMILY-paper+NAME``), and each switched off alone in the default (``FAMILY-default-NAME``: the
    default with those options at the paper preset's values, a leave-one-out ablation)."""
    from dfkd.generators import get_generator_class

    out = {}
    for family, deviations in DEVIATIONS.items():
        paper = get_generator_class(family).presets["paper"]
        out[f"{family}-paper"] = dict(generator=family, options={}, preset="paper")
        for name, change in deviations.items():
            out[f"{family}-paper+{name}"] = dict(generator=family, options=dict(change.get("generator", {})),
                                                 preset="paper", distill=dict(change.get("distill", {})))
            out[f"{family}-default-{name}"] = dict(
                generator=family, options={k: paper.generator[k] for k in change.get("generator", {})},
                distill={k: paper.distill[k] for k in change.get("distill", {})})
    return out


def main(argv=None) -> int:
    import distill_benchmark

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=sorted(DEVIATIONS), required=True)
    p.add_argument("--deviations", action="store_true", help="also each deviation alone (else preset and default)")
    p.add_argument("--leave-one-out", action="store_true",
                   help="also the default with each deviation switched off alone (its options at the paper's values)")
    args, rest = p.parse_known_args(argv)
    chosen = [f"{args.family}-paper", args.family]
    if args.deviations:
        chosen[1:1] = [f"{args.family}-paper+{name}" for name in DEVIATIONS[args.family]]
    if args.leave_one_out:
        chosen += [f"{args.family}-default-{name}" for name in DEVIATIONS[args.family]]
    if args.family == "gfkd" and "--students" not in rest:
        rest += ["--students", "gin-2-32"]
    return distill_benchmark.main(["--methods", *chosen, *rest])


def render(runs: List[Dict]) -> Optional[str]:
    """``results/paper_fidelity.md`` from the hold-out distillation runs (None until a paper preset has run)."""
    runs = [r for r in runs if r.get("benchmark") == "distill" and r.get("protocol") == "holdout"
            and r.get("precision", "fp32") == "fp32" and not r.get("overrides")]
    families = [f for f in DEVIATIONS if any(r["method"] == f"{f}-paper" for r in runs)]
    if not families:
        return None
    used = [r for r in runs if r["method"] in methods() or r["method"] in families]
    lines = ["# Paper presets against dfkd's defaults", "",
             *header_lines(used, ["distill_holdout.jsonl"]),
             "- protocol: the leaderboard's (70/30 hold-out, one teacher per seed, 256 synthetic graphs, 400 "
             "epochs);",
             "  `paper` = `--preset paper`, `+NAME` = the paper preset with one deviation (dfkd's default values of",
             "  those options, `benchmarks/paper_fidelity.py`'s `DEVIATIONS`) switched on, `default` = dfkd's "
             "defaults,",
             "  `default −NAME` = the default with that deviation switched off (its options at the paper's values)",
             "- every variant on the seeds its family's paper preset ran (seed 0 where only it ran), so columns "
             "compare",
             "  like with like; ⚠: teacher less than 0.05 above the majority class on those seeds, left out of the "
             "means",
             "- test cells: accuracy ± std over seeds (chance-adjusted); validation cells: chance-adjusted / "
             "agreement",
             "  with the teacher on its validation graphs / on its fitting graphs (defaults are chosen on these)", ""]
    for family in families:
        variants = ([f"{family}-paper"] + [f"{family}-paper+{n}" for n in DEVIATIONS[family]] + [family]
                    + [f"{family}-default-{n}" for n in DEVIATIONS[family]])
        groups = defaultdict(list)
        for r in runs:
            if r["method"] in variants:
                groups[(r["dataset"], r["teacher"], r["student"], r["method"])].append(r)
        pairs = sorted({k[:3] for k in groups if k[3] == f"{family}-paper"},
                       key=lambda k: (DATASETS.index(k[0]) if k[0] in DATASETS else 99, k[1:]))
        # Every variant on the seeds the paper preset ran (the defaults often have more).
        seeds = {pair: {r["seed"] for r in groups[(*pair, f"{family}-paper")]} for pair in pairs}
        expected = max((len(s) for s in seeds.values()), default=1)
        weak = {pair for pair in pairs if gain(groups[(*pair, f"{family}-paper")]) < WEAK_TEACHER_GAIN}
        header = (["variant"] + [f"{d} {t} → {s}" + (" ⚠" if (d, t, s) in weak else "") for d, t, s in pairs]
                  + ["mean chance-adjusted (test)"])
        test_rows, val_rows = [], []
        for variant in variants:
            if not any(groups.get((*pair, variant)) for pair in pairs):
                continue
            name = ("paper" if variant == f"{family}-paper" else "default" if variant == family
                    else "+" + variant.split("+", 1)[1] if "+" in variant
                    else "default −" + variant[len(f"{family}-default-"):])
            items = [[r for r in groups.get((*pair, variant), []) if r["seed"] in seeds[pair]] for pair in pairs]
            counted = [i for pair, i in zip(pairs, items) if i and pair not in weak]
            test_rows.append([name] + [cell(i, expected) for i in items]
                             + [f"{mean([adjusted(i) for i in counted]):.2f}"])
            val_rows.append([name] + [validation_cell(i) for i in items]
                            + [f"{mean([adjusted(i, 'val') for i in counted]):.2f}"])
        lines += [f"## {family}", "", "Test graphs:", "", *table(header, test_rows), "",
                  "Validation graphs:", "", *table(header[:-1] + ["mean chance-adjusted (validation)"], val_rows), ""]
    return "\n".join(lines).rstrip()


if __name__ == "__main__":
    sys.exit(main())
