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
