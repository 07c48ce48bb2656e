"""The committed results tables are generated from the committed raw runs, and the benchmark teachers
use the recipes chosen on validation graphs."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, BENCHMARKS)
    try:
        import common
        import regenerate
        import teacher_recipes

        yield common, regenerate, teacher_recipes
    finally:
        sys.path.remove(BENCHMARKS)


def test_results_tables_match_their_raw_runs():
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "regenerate.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_fails_when_a_table_is_edited_by_hand(bench, tmp_path, monkeypatch):
    _, regenerate, _ = bench
    texts = regenerate.rendered()
    assert texts, "no generated table: the raw runs are missing"
    path = next(p for p in texts if p.endswith(".md") and "results" in p)
    copy = tmp_path / os.path.basename(path)
    copy.write_text(texts[path].replace("|", "¦", 1), encoding="utf-8")
    monkeypatch.setattr(regenerate, "rendered", lambda: {str(copy): texts[path]})
    assert regenerate.main(["--check"]) == 1
    assert regenerate.main([]) == 0 and copy.read_text(encoding="utf-8") == texts[path]


def test_teacher_recipes_are_the_ones_chosen_on_validation_graphs(bench):
    common, _, teacher_recipes = bench
    runs = common.read_runs([teacher_recipes.RAW])
    winners = teacher_recipes.chosen(runs)
    assert winners, "no teacher-recipe runs committed"
    for dataset, candidate in winners.items():
        spec = teacher_recipes.CANDIDATES[candidate]
        recipe = common.teacher_recipe(dataset)
        assert {k: recipe.get(k, v) for k, v in spec["train"].items()} == spec["train"], dataset
        assert common.teacher_model_options(dataset) == spec["model"], dataset


@pytest.fixture(scope="module")
def renderers():
    sys.path.insert(0, BENCHMARKS)
    try:
        import class_fidelity
        import regenerate
        import regression_benchmark

        yield regenerate, regression_benchmark, class_fidelity
    finally:
        sys.path.remove(BENCHMARKS)


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
