"""The committed results tables are generated from the committed raw runs, and the benchmark teachers
use the recipes chosen on validation graphs."""
import importlib
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


@pytest.fixture(scope="module")
def bench():
    """The benchmark scripts, importable by name while this module's tests run: ``bench("regenerate")``."""
    sys.path.insert(0, BENCHMARKS)
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(BENCHMARKS)


def test_results_tables_match_their_raw_runs():
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "regenerate.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_fails_when_a_table_is_edited_by_hand(bench, tmp_path, monkeypatch):
    regenerate = bench("regenerate")
    texts = regenerate.rendered()
    assert texts, "no generated table: the raw runs are missing"
    path = next(p for p in texts if p.endswith(".md") and "results" in p)
    copy = tmp_path / os.path.basename(path)
    copy.write_text(texts[path].replace("|", "¦", 1), encoding="utf-8")
    monkeypatch.setattr(regenerate, "rendered", lambda: {str(copy): texts[path]})
    assert regenerate.main(["--check"]) == 1
    assert regenerate.main([]) == 0 and copy.read_text(encoding="utf-8") == texts[path]


def test_teacher_recipes_are_the_ones_chosen_on_validation_graphs(bench):
    common, teacher_recipes = bench("common"), bench("teacher_recipes")
    runs = common.read_runs([teacher_recipes.RAW])
    winners = teacher_recipes.chosen(runs)
    assert winners, "no teacher-recipe runs committed"
    for dataset, candidate in winners.items():
        spec = teacher_recipes.CANDIDATES[candidate]
        recipe = common.teacher_recipe(dataset)
        assert {k: recipe.get(k, v) for k, v in spec["train"].items()} == spec["train"], dataset
        assert common.teacher_model_options(dataset) == spec["model"], dataset


@pytest.fixture(scope="module")
def renderers(bench):
    return bench("regenerate"), bench("regression_benchmark"), bench("class_fidelity")


PROVENANCE = dict(machine="test machine, 2 CPU cores", command="python benchmarks/x.py --raw /tmp/x.jsonl --seeds 0",
                  dfkd_version="0.1.0", git_commit="abc1234", date="2026-12-01")


def _regression_run(dataset, seed, method, teacher_r2, r2, val_r2, wall):
    scores = lambda t, s: dict(r2=s, mae=0.3, rmse=0.4, teacher_r2=t, teacher_mae=0.2, teacher_rmse=0.3,  # noqa: E731
                               agreement_r2=0.9, agreement_mae=0.1, relative_r2=s / t, num_graphs=300)
    return dict(benchmark="regression", dataset=dataset, seed=seed, teacher="gin-5-64", student="gin-2-32",
                method=method, epochs=200, num_graphs=256, test=scores(teacher_r2, r2), val=scores(0.5, val_r2),
                teacher_train=dict(epochs=150), generation_s=1.0, distill_s=2.0, wall_s=wall, **PROVENANCE)


def test_regression_table_is_a_pure_function_of_its_runs(renderers):
    regenerate, regression_benchmark, _ = renderers
    runs = [_regression_run("SYNTH:TRIANGLES", 0, "prior", 0.8, 0.56, 0.31, 40.0),
            _regression_run("SYNTH:TRIANGLES", 1, "prior", 0.6, 0.42, 0.29, 44.0),
            _regression_run("SYNTH:CLUSTERING", 0, "real", 0.02, 0.01, 0.2, 10.0),
            dict(benchmark="distill", dataset="MUTAG")]  # another benchmark's run: ignored
    text = regression_benchmark.render(runs)
    assert text == regression_benchmark.render(runs[::-1])
    assert regenerate.TABLES["regression.md"] == (["regression.jsonl"], regression_benchmark.render)
    for column in ("teacher R²", "student R²", "relative R²", "agreement R²", "wall s", "epochs × graphs"):
        assert column in text
    assert "benchmarks/runs/regression.jsonl" in text and "test machine, 2 CPU cores" in text
    assert "`python benchmarks/x.py --seeds 0`" in text  # output paths left out
    assert "constant predictor" in text  # the header says R² is already relative to chance
    lines = text.splitlines()
    prior = [line for line in lines if "| SYNTH:TRIANGLES |" in line and "| prior |" in line]
    assert len(prior) == 2  # test and validation rows
    # relative R² from the means (0.49 / 0.70), not the mean of per-seed ratios; wall time the mean
    assert "| 2 | 0.700 ± 0.141 | 0.490 ± 0.099 | 0.70 | 0.900 ± 0.000 |" in prior[0] and prior[0].endswith("| 42 |")
    assert "| 0.500 ± 0.000 | 0.300 ± 0.014 | 0.60 |" in prior[1]  # validation graphs
    weak = next(line for line in lines if "| SYNTH:CLUSTERING |" in line)
    assert "0.020 ± 0.000 ⚠" in weak and "| 0.50 |" in weak
    assert lines.index(weak) < lines.index(prior[0])  # sorted by task


def _fidelity_run(dataset, seed, fidelities):
    classes = [dict(label=c, fidelity=f, nodes=10.0 + c, degree=2.0, spread=0.5) for c, f in enumerate(fidelities)]
    return dict(benchmark="class_fidelity", dataset=dataset, seed=seed, teacher="gin-5-64", generator="conditional",
                per_class=200, sample_seed=seed + 100, classes=classes, warmup_steps=300 + seed, build_s=30.0,
                teacher_val_accuracy=0.9, teacher_test_accuracy=0.85, wall_s=31.0, **PROVENANCE)


def test_class_fidelity_table_is_a_pure_function_of_its_runs(renderers):
    regenerate, _, class_fidelity = renderers
    runs = [_fidelity_run("PTC", 0, [0.99, 0.97]), _fidelity_run("MUTAG", 0, [1.0, 0.95]),
            _fidelity_run("MUTAG", 1, [0.98, 0.85])]
    text = class_fidelity.render(runs)
    assert text == class_fidelity.render(runs[::-1])
    assert regenerate.TABLES["class_fidelity.md"] == (["class_fidelity.jsonl"], class_fidelity.render)
    assert "| dataset | teacher | class | graphs | seeds | fidelity | min | nodes | degree | size-law spread |" in text
    assert "benchmarks/runs/class_fidelity.jsonl" in text and "test machine, 2 CPU cores" in text
    rows = [line for line in text.splitlines() if line.startswith("| MUTAG") or line.startswith("| PTC")]
    assert [row.split(" | ")[0] for row in rows] == ["| MUTAG", "| MUTAG", "| PTC", "| PTC"]  # datasets in order
    assert rows[1].startswith("| MUTAG | gin-5-64 | 1 | 200 | 2 | 0.900 ± 0.071 | 0.850 | 11.000 ± 0.000 |")
    assert rows[1].endswith("| 300 | 30.0 |") and rows[2].split(" | ")[4] == "1"


# ---------------------------------------------------------------------------------------------------------------
# Every renderer registered in regenerate.TABLES: a pure, order-independent function of a small hand-made run
# list, whose header names its raw files, commands (output paths left out), machines, commits and dates.


def _timing(benchmark, load=1.5, **fields):
    return dict(benchmark=benchmark, load_average=load, **fields, **PROVENANCE)


def _hand_made_runs():
    """Hand-made raw runs per results table (two machines where timing tables must keep them apart)."""
    other = dict(machine="second machine, 16 CPU cores")
    teacher_file = "benchmarks/runs/holdout_teachers/MUTAG-gin-5-64-holdout-seed0.pt"
    gen_speed = [_timing("generation_speed", dataset="MUTAG", teacher="gin-5-64", teacher_seed=0, kind=kind,
                         graphs=graphs, iterations=its, seconds=sec)
                 for kind, graphs, its, sec in (("batched", 131, 50, 1.8), ("loop", 16, 50, 3.7),
                                                ("type_prior", 131, None, 4.0), ("full", 131, 2500, 96.4))]
    gen_speed.append(dict(gen_speed[0], seconds=2.0))  # a second run of the batched row: medians
    gen_speed += [dict(gen_speed[0], preset="paper", seconds=2.6), dict(gen_speed[1], preset="paper", seconds=10.4)]
    speed_base = dict(teacher="gin-5-64", teacher_file=teacher_file, student="gin-2-32", graphs_per_epoch=256,
                      batch_size=32, epochs=2, gfkd_iterations=50, sample_batches=10, repeats=2)
    speed = [_timing("speed", kind="generator", generator=g, what=w, steps_timed=16, rate_before=rb, rate_now=rn,
                     steps_before=50.0, steps_now=60.0, build_before=b, build_now=b, **speed_base)
             for g, w, rb, rn, b in (("prior", "sample(32) after build", 3000.0, 3500.0, 0.4),
                                     ("random", "generate(256)", 9000.0, 13000.0, None))]
    speed += [_timing("speed", kind="type_prior", before_s=5.0, after_s=0.5, graphs=64, adam_steps=300,
                      max_difference=0.0, **speed_base),
              _timing("speed", kind="kernel", n=20, density=0.5, graphs=200, features=64, min_seconds=0.2,
                      scatter_ms=28.0, dense_ms=7.0, **speed_base),
              _timing("speed", kind="memory", mode="all", n=1000, graphs=4, iterations=2, per_node=16, error=None,
                      pairs=1998000, during_mb=197.0, **speed_base)]
    kernels = [_timing("kernels", n=n, density=d, graphs=4000 // n, edges=e, features=64, nodes_per_batch=4000,
                       min_seconds=0.3, max_difference=2e-5, torch_scatter=False,
                       ms={"scatter (dfkd native)": s, "scatter (PyG utils)": s * 0.9, "dense bmm + conversion": dense,
                           "dense bmm (A given)": 0.7})
               for n, d, e, s, dense in ((10, 0.1, 3567, 0.8, 6.0), (10, 1.0, 36000, 33.8, 6.7), (20, 0.1, 7570, 1.9, 2.6))]
    kernels.append(dict(kernels[1], **other))
    memory = [_timing("memory", kind="generation", teacher="gin-5-64", teacher_file=teacher_file, mode=mode, n=n,
                      graphs=b, iterations=3, per_node=16, error=None, pairs=p, peak_mb=400.0, base_mb=330.0,
                      during_mb=mb, seconds=1.0, edges=float(n))
              for mode, n, b, p, mb in (("all", 1000, 8, 3996000, 505.0), ("random", 5000, 8, 681904, 602.0))]
    memory += [_timing("memory", kind="generation", teacher="gin-5-64", teacher_file=teacher_file, mode="all", n=2000,
                       graphs=8, iterations=3, per_node=16, error="MemoryError", pairs=None, peak_mb=None,
                       base_mb=None, during_mb=None, seconds=None, edges=None),
               _timing("memory", kind="end_to_end", teacher="gin-5-64", teacher_file=teacher_file, n=5000, graphs=8,
                       iterations=20, epochs=2, error=None, rc=0, seconds=40.2, peak_mb=1141.0,
                       cli="dfkd distill --teacher x.pt --generator gfkd", summary="student gin-2-32 <- teacher")]
    propagation = [_timing("propagation", work=w, graphs=g, order=i, batch_size=32, repeats=7, sparse_s=sp, auto_s=au,
                           prior_adjacency="SparseAdjacency")
                   for i, (w, g, sp, au) in enumerate((("dfad generator step (32 graphs)", "all pairs, relaxed", 0.068, 0.040),
                                                       ("student step on prior graphs (32 graphs)", "discrete, sparse", 0.007, 0.0072)))]
    precision = [_timing("precision", kind="speed", work=p["work"], graphs=p["graphs"], order=p["order"], batch_size=32,
                         repeats=5, seconds={"fp32": 0.03, "bf16": 0.1, "fp16": 0.09}, teacher="gin-5-64",
                         student="gin-2-32", cpu_capability="AVX2") for p in propagation]
    scores = lambda acc: dict(accuracy=acc, teacher_accuracy=0.85, majority_accuracy=0.65, agreement=0.9)  # noqa: E731
    for seed, (fp32, bf16) in enumerate(((0.80, 0.82), (0.78, 0.77))):
        for prec, acc in (("fp32", fp32), ("bf16", bf16)):
            precision.append(dict(benchmark="distill", protocol="holdout", dataset="MUTAG", seed=seed, fold=None,
                                  teacher="gin-5-64", student="gin-2-32", method="prior", precision=prec, epochs=400,
                                  num_graphs=256, overrides={}, test=scores(acc), val=scores(acc), distill_s=60.0,
                                  wall_s=70.0, **PROVENANCE))
    law = [dict(precision[-1], precision="fp32", seed=seed, overrides=dict(mean_degree=m, degree_dispersion=d),
                test=scores(acc), val=scores(acc))
           for seed in (0, 1) for m, d, acc in ((1.5, 0.15, 0.33), (2.2, 0.25, 0.8))]
    dev = [dict(benchmark="dev_teachers", dataset="MUTAG", family="resgcn", seed=seed, epochs=300, val_accuracy=0.9,
                test_accuracy=0.85, majority_accuracy=0.65, train_s=9.0, **PROVENANCE,
                true_stats=dict(min_nodes=10, max_nodes=28, mean_nodes=18.0, mean_degree=2.2, degree_var=0.55))
           for seed in (0, 1)]
    teacher_only = dev + [dict(benchmark="teacher_only", dataset="MUTAG", family="resgcn", seed=seed, student=st,
                               variant=v, method="prior", epochs=400, num_graphs=256, test=scores(acc), val=scores(acc),
                               synthetic=dict(mean_nodes=20.0, mean_edges=22.0), **PROVENANCE)
                          for seed in (0, 1) for st in ("gcn-3-32", "gin-2-32")
                          for v, acc in (("teacher-only", 0.78), ("with-statistics", 0.8))]
    teacher_only += [dict(teacher_only[-1], seed=seed, student="gcn-3-32", variant="type-frequencies",
                          test=scores(acc), val=scores(acc)) for seed, acc in ((0, 0.83), (1, 0.85))]
    teacher_only += [dict(teacher_only[-1], seed=0, student=st, variant="teacher-only", method="real", test=scores(acc),
                          val=scores(acc)) for st, acc in (("gcn-3-32", 0.82), ("gin-2-32", 0.76))]
    distributed = []
    for mode, sample, cpu, step in (("1 process", 0.02, 0.02, 0.038), ("2 processes, replicated (before)", 0.035, 0.017, 0.098),
                                    ("2 processes, sharded (now)", 0.019, 0.010, 0.066)):
        for generator in ("prior", "dfad"):
            distributed.append(_timing("distributed", kind="generation", teacher="gin-5-64", student="gin-2-32",
                                       teacher_file=teacher_file, batches=10, distill_batch_size=32, graphs_per_epoch=512,
                                       epochs=2, generator=generator, batch=32, mode=mode, sample_s=sample,
                                       sample_cpu_s=cpu, step_s=step if generator == "dfad" else None,
                                       step_cpu_s=step if generator == "dfad" else None))
            distributed.append(_timing("distributed", kind="distill", teacher="gin-5-64", student="gin-2-32",
                                       teacher_file=teacher_file, batches=10, distill_batch_size=32, graphs_per_epoch=512,
                                       epochs=2, generator=generator, mode=mode, wall_s=15.0 * sample / 0.02,
                                       loop_s=sample * 50, cpu_s=cpu * 50))
    latency = [_timing("student_latency", batch_size=128, single_graphs=32, repeats=100, warmup=10, seed=0, threads=1,
                       num_types=7, num_classes=2, mean_nodes=18.5, mean_degree=2.07, arch=a, mode=m, parameters=p,
                       batch_ms=b, single_ms=0.12)
               for a, m, p, b in (("mlp_pe-2-32", "encodings only", None, 1.0), ("gin-2-32", "end to end", 3826, 0.5),
                                  ("mlp_pe-2-32", "end to end", 2196, 1.5))]
    reliability = [dict(benchmark="reliability", kind="fuzz", seed=0, omp_num_threads="1", corpus_kind=k, order=i,
                        per_kind=2, seconds=0.1, payloads_ran=0, tried=2, refused=2 - i, accepted=i, lost=0, lost_cases=[],
                        examples=[] if i else ["FILE: not a | checkpoint"], accepted_mutations=["1 flipped bits"][:i],
                        **PROVENANCE) for i, k in enumerate(("truncated", "bit_flips"))]
    trial = dict(benchmark="reliability", seed=0, omp_num_threads="1", epochs=6, steps=18, num_graphs=24, writes=8)
    reliability += [dict(trial, kind="kill", trial=t, trials=2, point=p, killed=True, returncode=-9,
                         files={"synthetic.pt": "ok"}, broken={}, equal=True, seconds=2.4, **PROVENANCE)
                    for t, p in enumerate(("step:13", "after_save:9"))]
    reliability += [dict(trial, kind="disk_full", write=w, error=f"[Errno 28] could not write {w}", one_line=True,
                         broken={}, temporary=[], equal=True, **PROVENANCE) for w in (2, 1)]
    teachers = [dict(benchmark="teachers", dataset=d, arch="gin-5-64", fold=f, train=dict(lr=0.01, epochs=300),
                     model={}, recipe=dict(epochs=300, batch_size=32), test_accuracy=acc, val_accuracy=0.9,
                     majority_accuracy=maj, test_graphs=19, best_epoch=100, wall_s=13.0, **PROVENANCE)
                for d, f, acc, maj in (("PTC", 1, 0.60, 0.58), ("MUTAG", 1, 0.90, 0.67), ("MUTAG", 2, 0.85, 0.65))]
    gap = [_gap_run(seed, m, student) for seed in (0, 1)
           for m, student in (("prior-teacher-only", [1, 1, 1]), ("prior", [0, 1, 1]), ("real", [0, 1, 1]))]
    return {"gap_analysis.md": gap, "generation_speed.md": gen_speed, "speed.md": speed, "kernels.md": kernels, "memory.md": memory,
            "propagation.md": propagation, "precision.md": precision, "distributed.md": distributed,
            "student_latency.md": latency, "reliability.md": reliability, "law_sensitivity.md": law,
            "teacher_only.md": teacher_only, "teachers.md": teachers,
            "regression.md": [_regression_run("SYNTH:TRIANGLES", 0, "prior", 0.8, 0.56, 0.31, 40.0)],
            "class_fidelity.md": [_fidelity_run("MUTAG", 0, [1.0, 0.95])],
            "teacher_recipes.md": [dict(benchmark="teacher_recipes", dataset="PTC", arch="gin-5-64", candidate=c, seed=s,
                                        val_accuracy=0.6 + s / 100, val_loss=0.7, test_accuracy=0.58, wall_s=30.0,
                                        **PROVENANCE) for c in ("lr0.01", "lr0.001") for s in (0, 1)]}


def test_paper_deviations_are_exactly_the_differences_between_each_preset_and_the_default(bench):
    """Every option where a paper preset differs from dfkd's default is switched by exactly one named deviation,
    to the default's value, and the deviations touch nothing else."""
    import dataclasses

    from dfkd.distill import DistillConfig
    from dfkd.distill.inherit import RANDOM_INIT_LR
    from dfkd.generators import get_generator_class

    paper_fidelity = bench("paper_fidelity")
    for family, deviations in paper_fidelity.DEVIATIONS.items():
        cls = get_generator_class(family)
        preset, default = cls.presets["paper"], cls.config_cls()
        for side, values, base in (("generator", preset.generator, default), ("distill", preset.distill, DistillConfig())):
            base = dataclasses.asdict(base)
            if side == "distill":
                base["loss"] = cls.recommended_loss  # what loss="auto" resolves to
                # ... and lr=None for a student the family starts at random (as GFKD and DFAD-GNN do)
                assert cls.recommended_student_init == "random"
                base["lr"] = RANDOM_INIT_LR
            differing = {k for k, v in values.items() if v != base[k]}
            switched = [k for d in deviations.values() for k in d.get(side, {})]
            assert sorted(switched) == sorted(set(switched)), (family, side)  # one deviation per option
            assert set(switched) == differing, (family, side, set(switched) ^ differing)
            for d in deviations.values():
                assert all(v == base[k] for k, v in d.get(side, {}).items()), (family, d)


def _distill_run(dataset, seed, method, acc, teacher=0.8, majority=0.6):
    scores = lambda a: dict(accuracy=a, teacher_accuracy=teacher, majority_accuracy=majority,  # noqa: E731
                            agreement=0.9, num_graphs=50)
    return dict(benchmark="distill", protocol="holdout", dataset=dataset, seed=seed, fold=None, teacher="gin-5-64",
                student="gin-2-32", method=method, precision="fp32", epochs=400, num_graphs=256, overrides={},
                test=scores(acc), val=scores(acc - 0.05), fit=scores(acc), wall_s=60.0, **PROVENANCE)


def test_paper_fidelity_table_puts_preset_deviations_and_default_side_by_side(bench):
    paper_fidelity = bench("paper_fidelity")
    runs = [_distill_run("MUTAG", s, m, a + s / 100) for s in (0, 1)
            for m, a in (("gfkd-paper", 0.62), ("gfkd-paper+schedule", 0.70), ("gfkd", 0.74), ("prior", 0.80),
                         ("gfkd-default-schedule", 0.66))]
    assert paper_fidelity.render(runs[3:4]) is None  # no paper preset yet
    text = paper_fidelity.render(runs)
    assert text == paper_fidelity.render(runs[::-1]) and "## gfkd" in text and "## dfad" not in text
    rows = [line for line in text.splitlines() if line.startswith("| paper") or line.startswith("| +schedule")
            or line.startswith("| default")]
    # test, then validation: the preset, a deviation switched on in it, the default, the deviation switched off in it
    assert [r.split(" | ")[0] for r in rows] == ["| paper", "| +schedule", "| default", "| default −schedule"] * 2
    assert rows[3] == "| default −schedule | 0.665 ± 0.007 (0.33) | 0.33 |"
    assert rows[0] == "| paper | 0.625 ± 0.007 (0.13) | 0.13 |"  # (0.625 − 0.6) / (0.8 − 0.6)
    assert rows[4] == "| paper | -0.13 / 0.900 / 0.900 | -0.13 |"  # validation: 0.575 is below majority
    assert "prior" not in "".join(rows)
    # a default run on a seed the preset has not run is left out; a weak teacher's pair is flagged, not averaged
    extra = [_distill_run("MUTAG", 2, "gfkd", 0.99),
             *(_distill_run("PTC", 0, m, a, teacher=0.62) for m, a in (("gfkd-paper", 0.1), ("gfkd", 0.6)))]
    text = paper_fidelity.render(runs + extra)
    rows = [line for line in text.splitlines() if line.startswith("| paper") or line.startswith("| default |")]
    assert rows[0] == "| paper | 0.625 ± 0.007 (0.13) | 0.100 ± 0.000 (-25.00) [1 of 2] | 0.13 |"
    assert rows[1] == "| default | 0.745 ± 0.007 (0.72) | 0.600 ± 0.000 (0.00) [1 of 2] | 0.72 |"
    assert "PTC gin-5-64 → gin-2-32 ⚠" in text


def _gap_run(seed, method, student):
    """A gap-analysis run on three test graphs the teacher classes 0, 1, 1 (sizes 10, 20, 30)."""
    test = dict(teacher=[0, 1, 1], student=student, label=[0, 1, 0], confidence=[0.6, 0.9, 1.0],
                nodes=[10, 20, 30], degree=[2.0, 2.5, 3.0])
    own = dict(test, student=[0, 0, 1], nodes=[12, 12, 12])
    return dict(benchmark="gap", dataset="MUTAG", seed=seed, teacher="gin-5-64", student="gin-2-32", method=method,
                epochs=400, num_graphs=256, wall_s=50.0 + seed, test_scores={},
                graphs=dict(test=test, val=test, trained_on=own), **PROVENANCE)


def test_gap_analysis_splits_the_deficit_by_slice(bench):
    gap_analysis = bench("gap_analysis")
    assert gap_analysis.thirds([5, 1, 1, 1, 9, 7]) == [1, 0, 0, 1, 2, 2]  # ties by position: equal thirds
    text = gap_analysis.render(_hand_made_runs()["gap_analysis.md"])
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines() if line.startswith("| ")}
    # teacher only agrees on 2 of 3 graphs, real-data KD on all: the whole deficit sits on the teacher's class 0
    assert rows["all"] == ["1.00", "0.667", "1.000", "1.000", "-0.333", "– |"]
    assert rows["teacher class 0"] == ["0.33", "0.000", "1.000", "1.000", "-1.000", "1.00 |"]
    assert rows["teacher class 1"][-2:] == ["+0.000", "0.00 |"]
    assert rows["nodes, lowest third (10–10)"][1] == "0.000" and rows["nodes, highest third (30–30)"][1] == "1.000"
    # own training graphs: 2 of 3 agree, 12 nodes each; wall time is the mean over seeds
    assert rows["teacher only"] == ["0.667", "0.667", "12.0", "2.50", "0.833", "50 |"]
    assert "`teacher class 0` (33% of the graphs, -1.000, 100% of the deficit)" in text
    assert gap_analysis.render([dict(benchmark="distill")]) is None


def test_teacher_only_table_summarises_cells_and_sets_them_against_real_data_kd_on_shared_seeds(bench):
    teacher_only = bench("teacher_only")
    text = teacher_only.render(_hand_made_runs()["teacher_only.md"])
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| MUTAG | resgcn → ")]
    # real-data KD ran seed 0 only: (0.82 - 0.65) / (0.85 - 0.65) = 0.85, beside the two seeds of the prior
    assert rows[0][1:3] == ["resgcn → gcn-3-32", "prior"] and rows[0][10] == "0.820 ± 0.000 (0.85) [1]"
    assert rows[1][10] == "0.760 ± 0.000 (0.55) [1]" and rows[1][-1] == "2 |"
    # type frequencies ran for the GCN student only: (0.84 - 0.65) / (0.85 - 0.65) = 0.95
    assert rows[0][7] == "0.840 ± 0.014 (0.95)" and rows[1][7] == "–" and rows[1][13] == "–"
    assert rows[0][8] == rows[0][14] == "–"  # no top-type-shares runs
    every = [line for line in text.split("Summary over the cells")[1].split("##")[0].splitlines()
             if line.startswith("| prior")]
    assert every == ["| prior | teacher-only | 0, 1 | 2 | 2 | 0.65 | 0.900 |",
                     "| prior | type-frequencies | 0, 1 | 1 | 1 | 0.95 | 0.900 |",
                     "| prior | with-statistics | 0, 1 | 2 | 2 | 0.75 | 0.900 |"]
    summary = {tuple(r[:2]): r[2:] for r in (line[2:].split(" | ") for line in text.split("cell by cell")[1].splitlines()
                                             if line.startswith("| prior"))}
    # on seed 0: teacher only 0.65 in both cells (≥ 0.6), ahead of real-data KD's 0.55, behind its 0.85
    assert summary[("prior", "teacher-only")] == ["2", "2", "1", "0.65", "0.70", "0.900", "0.900 |"]
    assert summary[("prior", "with-statistics")][:4] == ["2", "2", "1", "0.75"]


def test_top_type_shares_are_the_largest_by_hand(bench):
    top_shares = bench("teacher_only").top_shares
    assert top_shares([0.1, 0.5, 0.05, 0.3, 0.05], 3) == {1: 0.5, 3: 0.3, 0: 0.1}
    assert top_shares([0.6, 0.4], 3) == {0: 0.6, 1: 0.4}


def test_every_registered_script_exposes_a_render_and_writes_no_markdown(renderers):
    regenerate = renderers[0]
    for name, (raws, render) in regenerate.TABLES.items():
        assert callable(render) and raws and all(raw.endswith(".jsonl") for raw in raws), name
    scripts = ["generation_speed", "speed", "kernels", "memory", "propagation", "precision", "distributed_speed",
               "student_latency", "reliability", "train_teachers", "regression_benchmark", "class_fidelity",
               "teacher_recipes", "gap_analysis", "distill_benchmark"]
    for script in scripts:
        source = open(os.path.join(BENCHMARKS, f"{script}.py"), encoding="utf-8").read()
        assert '"--results"' not in source and "write_results" not in source, script
        if script != "distill_benchmark":
            assert "def render(" in source, script


def test_every_table_is_a_pure_function_of_its_runs(renderers):
    regenerate = renderers[0]
    runs = _hand_made_runs()
    assert set(runs) <= set(regenerate.TABLES), "hand-made runs for a table regenerate.py does not know"
    for name, (raws, render) in regenerate.TABLES.items():
        if name == "leaderboard.md":
            continue  # a signature of its own (render(runs, sources)); covered by --check on the committed runs
        if name not in runs:  # a table this test has no hand-made runs for: it must at least ignore foreign runs
            foreign = [dict(benchmark="someone_else", dataset="MUTAG")]
            assert render(foreign) == render(list(foreign)), name
            continue
        items = runs[name] + [dict(benchmark="someone_else", dataset="MUTAG")]  # other benchmarks' runs: ignored
        text = render(items)
        assert text is not None and text == render(items[::-1]), name
        assert text == render([dict(r) for r in reversed(runs[name])] + items[-1:]), name
        assert text.startswith("# ") and "\n| " in text and "\n\n\n" not in text, name
        own = [raw for raw in raws if raw != "distill_holdout.jsonl"]
        assert all(f"`benchmarks/runs/{raw}`" in text for raw in own), name
        assert "`python benchmarks/x.py --seeds 0`" in text and "/tmp/x.jsonl" not in text, name
        assert "test machine, 2 CPU cores" in text, name
        assert name == "teacher_recipes.md" or ("abc1234" in text and "2026-12-01" in text), name


def test_timing_tables_keep_machines_apart_and_take_medians(bench):
    generation_speed = bench("generation_speed")
    kernels = bench("kernels")
    runs = _hand_made_runs()
    text = kernels.render(runs["kernels.md"])
    assert "- machine M1: second machine, 16 CPU cores" in text and "- machine M2: test machine, 2 CPU cores" in text
    rows = [line for line in text.splitlines() if line.startswith("| 10 | 1 |")]
    assert len(rows) == 2 and rows[0].endswith("| M1 |") and rows[1].endswith("| M2 |")
    assert "- M1, n = 10: dense (with conversion) is faster from density 1" in text
    assert "- M2, n = 20: scatter is faster at every density timed" in text
    text = generation_speed.render(runs["generation_speed.md"])
    batched = next(line for line in text.splitlines() if "batched (one tensor program)" in line)
    assert "| 131 | 50 | 1.90 |" in batched  # median of 1.8 and 2.0 s
    assert "2 runs per row" in text and "| machine |" not in text
    assert "- MUTAG, default settings: batched speed-up over the per-graph loop **15.9×**" in text  # (3.7/16)/(1.9/131)
    assert "- MUTAG, paper settings: batched speed-up over the per-graph loop **32.8×**" in text  # (10.4/16)/(2.6/131)
    assert "| MUTAG | paper | batched (one tensor program) | 131 | 50 | 2.60 |" in text


def test_precision_table_pairs_distill_runs_and_waits_for_its_own(bench):
    leaderboard = bench("leaderboard")
    precision = bench("precision")
    runs = _hand_made_runs()["precision.md"]
    distill = [r for r in runs if r["benchmark"] == "distill"]
    fp32 = [r for r in distill if r["precision"] == "fp32"]
    assert precision.render(fp32) is None  # only the leaderboard's fp32 runs: no table
    text = precision.render(distill)
    row = next(line for line in text.splitlines() if line.startswith("| MUTAG"))
    assert "| 2 | 0.850 ± 0.000 | 0.650 |" in row and "| +0.005 | 0.020 |" in row
    assert "## Speed" in text and "Not run yet" in text
    assert "| fp32/bf16 | fp32/fp16 |" in precision.render(runs)
    sources = ["benchmarks/runs/distill_holdout.jsonl"]
    with_bf16 = leaderboard.render(distill, sources)
    assert with_bf16.replace("- runs at bf16 (`--precision`) are left out here; they stand beside their fp32 twins in "
                             "`precision.md`.\n", "") == leaderboard.render(fp32, sources)


def test_teacher_table_shows_majority_and_gain(bench):
    train_teachers = bench("train_teachers")
    text = train_teachers.render(_hand_made_runs()["teachers.md"])
    rows = [line for line in text.splitlines() if line.startswith("| MUTAG") or line.startswith("| PTC")]
    assert rows[0].startswith("| MUTAG | gin-5-64 | 2 | 0.875 ± 0.035 | 0.660 | +0.215 |")
    assert rows[1].startswith("| PTC | gin-5-64 | 1 | 0.600 ± 0.000 | 0.580 | +0.020 ⚠ |")
    assert "GIN paper" in text and rows[0].endswith("| 26 |")


def _typed_graph(types, pairs):
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    x = torch.nn.functional.one_hot(torch.tensor(types), 3).float()
    return Data(x=x, edge_index=to_undirected(torch.tensor(pairs).t()), num_nodes=len(types))


def test_oracle_type_shares_by_degree_are_counted_per_degree(bench):
    oracles = bench("oracles")
    # a star 0-1, 0-2, 0-3 (centre type 0, leaves 1, 1, 2) and a path 0-1-2 (types 2, 0, 1)
    graphs = [_typed_graph([0, 1, 1, 2], [(0, 1), (0, 2), (0, 3)]), _typed_graph([2, 0, 1], [(0, 1), (1, 2)])]
    table = oracles.type_given_degree(graphs)
    assert table.shape == (4, 3)
    assert torch.allclose(table[1], torch.tensor([0.0, 3.0, 2.0]) / 5)  # the star's leaves and the path's ends
    assert torch.allclose(table[2], torch.tensor([1.0, 0.0, 0.0]))  # the path's middle
    assert torch.allclose(table[3], torch.tensor([1.0, 0.0, 0.0]))  # the star's centre
    assert torch.allclose(table[0], torch.tensor([2.0, 3.0, 2.0]) / 7)  # no node of degree 0: the overall shares
    with pytest.raises(ValueError, match="needs structures='real'"):
        oracles.OracleConfig(node_types="shuffled")
    with pytest.raises(ValueError, match="node_types must be one of"):
        oracles.OracleConfig(node_types="guess")


@pytest.fixture(scope="module")
def oracle_setup(bench, tiny_teacher, mutag):
    oracles = bench("oracles")
    reference = [mutag[i] for i in range(40)]
    oracles.OraclePriorGenerator.reference = reference
    yield oracles, tiny_teacher, reference
    oracles.OraclePriorGenerator.reference = []


def _batch_graphs(batch):
    from dfkd.config import FeatureSpec
    from dfkd.generators.synthetic import SyntheticGraphSet

    spec = FeatureSpec(dim=batch.x.size(1), encoding="one_hot")
    return SyntheticGraphSet.from_edges(batch.x, batch.edge_index, batch.batch, int(batch.num_graphs),
                                        torch.zeros(int(batch.num_graphs)), spec).to_data_list()


def test_oracle_generator_takes_the_named_factors_from_the_reference_graphs(oracle_setup):
    oracles, teacher, reference = oracle_setup

    def draw(**options):
        generator = oracles.OraclePriorGenerator.from_checkpoint(teacher, **options).build(0)
        return _batch_graphs(generator._draw(24, torch.Generator().manual_seed(1)))

    edge_sets = {(g.num_nodes, frozenset(map(tuple, g.edge_index.t().tolist()))) for g in reference}
    real = draw(structures="real", node_types="real")
    assert all((g.num_nodes, frozenset(map(tuple, g.edge_index.t().tolist()))) in edge_sets for g in real)
    by_structure = {(g.num_nodes, frozenset(map(tuple, g.edge_index.t().tolist()))): g.x for g in reference}
    assert all(torch.equal(by_structure[(g.num_nodes, frozenset(map(tuple, g.edge_index.t().tolist())))], g.x)
               for g in real)
    shuffled = draw(structures="real", node_types="shuffled")  # each graph keeps its own composition
    for g in shuffled:
        own = by_structure[(g.num_nodes, frozenset(map(tuple, g.edge_index.t().tolist())))]
        assert torch.equal(own.sum(0), g.x.sum(0))
    assert any(not torch.equal(by_structure[(g.num_nodes, frozenset(map(tuple, g.edge_index.t().tolist())))], g.x)
               for g in shuffled)
    # true shares by degree: a degree at which the reference graphs have no node of some type never draws it
    table = oracles.type_given_degree(reference)
    for g in draw(structures="drawn", node_types="degree"):
        deg = torch.bincount(g.edge_index[0], minlength=g.num_nodes).clamp(max=table.size(0) - 1)
        assert bool((table[deg, g.x.argmax(1)] > 0).all())
    assert all(g.num_nodes <= 30 for g in draw(structures="drawn", node_types="shares"))  # the default's counts
    oracles.OraclePriorGenerator.reference = []
    with pytest.raises(ValueError, match="reference is empty: set it to the teacher's training graphs"):
        oracles.OraclePriorGenerator.from_checkpoint(teacher).build(0)
    oracles.OraclePriorGenerator.reference = reference


def test_gap_analysis_oracle_table_reports_the_share_of_the_gap_each_factor_closes(bench):
    gap_analysis = bench("gap_analysis")
    fits = dict(zip([m for m, _, _ in gap_analysis.ORACLE_COLUMNS], [0.80, 0.84, 0.86, 0.80, 0.85, 0.88, 0.90, 0.90]))

    def run(method, fit, seed=0):
        parts = dict(test=dict(agreement=fit + 0.01), val=dict(agreement=fit))
        if method != "real":
            parts["fit"] = dict(agreement=fit)
        return dict(benchmark="distill", protocol="holdout", dataset="MUTAG", seed=seed, fold=None,
                    teacher="gin-5-64", student="gin-2-32", method=method, precision="fp32", epochs=400,
                    num_graphs=256, overrides={}, wall_s=1.0, **parts, **PROVENANCE)

    runs = [run(m, f) for m, f in fits.items()] + [run("real", 0.95)]
    lines, used = gap_analysis.oracle_section(runs + [run(gap_analysis.DEFAULT, 0.7, seed=1)])  # seed 1: no oracles
    assert len(used) == len(runs)
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    assert rows["MUTAG"][2:4] == ["0.800 / 0.810", "0.840 / 0.850"] and rows["MUTAG"][-1] == "– / 0.960 |"
    # (0.86 - 0.80) / (0.90 - 0.80) of the gap by the true shares by degree; the real graphs close all of it
    closed = rows["**share of the gap closed** (fitting graphs)"]
    assert closed[2:10] == ["0.00", "0.40", "0.60", "0.00", "0.50", "0.80", "1.00", "1.00"]
    assert gap_analysis.oracle_section(runs[:-1]) == ([], [])  # without real-data KD: no table


def test_gap_analysis_sets_each_option_against_the_default_it_ran_on(bench):
    """Options run before a default changed are compared with that earlier default, and only what they change
    against it is shown; each default is compared with the one before it."""
    gap_analysis, methods = bench("gap_analysis"), bench("distill_benchmark").METHODS
    random_init = gap_analysis.TEACHER_ONLY_RANDOM_INIT
    joint, before = gap_analysis.TEACHER_ONLY_ALL_LAYERS, gap_analysis.TEACHER_ONLY_BEFORE
    assert gap_analysis.baseline(gap_analysis.DEFAULT) == random_init
    assert gap_analysis.baseline(random_init) == joint and gap_analysis.baseline(joint) == before
    assert gap_analysis.baseline("prior-teacher-only+wd") == joint
    assert gap_analysis.baseline("prior-teacher-only+long") == before
    assert gap_analysis.baseline("prior-teacher-only+inherit-lr1e-2") == gap_analysis.DEFAULT
    assert gap_analysis.describe_option("prior-teacher-only+wd") == "weight_decay=0.0005"
    assert gap_analysis.describe_option("prior-teacher-only+first-layer-mean") == "law_mean_from=first-layer"
    assert gap_analysis.describe_option("prior-teacher-only+long") == "epochs=800"
    assert gap_analysis.describe_option("prior-teacher-only+inherit-lr1e-2") == "student_init=teacher, lr=0.01"
    assert methods["prior-teacher-only+wd"]["options"]["law_mean_from"] == "all-layers"
    assert methods["prior-teacher-only+wd"]["distill"]["student_init"] == "random"
    assert "law_mean_from" not in methods[gap_analysis.DEFAULT]["options"]
    assert "distill" not in methods[gap_analysis.DEFAULT]

    def run(method, fit):
        return dict(benchmark="distill", protocol="holdout", dataset="MUTAG", seed=0, fold=None, teacher="gin-5-64",
                    student="gin-2-32", method=method, precision="fp32", epochs=400, num_graphs=256, overrides={},
                    wall_s=1.0, fit=dict(agreement=fit), val=dict(agreement=fit), test=dict(agreement=fit),
                    **PROVENANCE)

    runs = [run(gap_analysis.DEFAULT, 0.92), run(random_init, 0.90), run(joint, 0.85), run(before, 0.80),
            run("prior-teacher-only+wd", 0.86)]
    lines, used = gap_analysis.option_sections(runs)
    assert len(used) == 8  # four comparisons, each option run and its baseline's
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[4] for line in lines if line.startswith("| ")}
    assert rows["**default** (against `random-init`)"] == "+0.020"
    assert rows["`random-init` (the default before) (against `all-layers`)"] == "+0.050"
    assert rows["`all-layers` (an earlier default) (against `no-disagreement`)"] == "+0.050"
    assert rows["`wd` (against `all-layers`)"] == "+0.010"
