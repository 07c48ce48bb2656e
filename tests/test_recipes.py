"""Recipe files (dfkd.recipes, `dfkd distill --config / --print-config`): round trip, precedence, one-line errors."""
import glob
import os

import pytest
import torch

from dfkd.cli import build_parser, main
from dfkd.recipes import dump_recipe, load_recipe, recipe_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _distill_parser():
    return build_parser().subcommands["distill"]


def test_a_run_written_recipe_reruns_to_the_identical_student(cli_teacher, tmp_path, capsys):
    first = str(tmp_path / "first.pt")
    assert main(["distill", "--teacher", cli_teacher, "--student", "gin-2-8", "--out", first, "--num-graphs", "24",
                 "--epochs", "3", "--seed", "7", "--generator", "gfkd", "--iterations", "4",
                 "--set", "init_noise=0.5", "--quiet"]) == 0
    recipe = recipe_path(first)
    assert recipe == str(tmp_path / "first.recipe.toml") and f"and {recipe}" in capsys.readouterr().out
    text = open(recipe, encoding="utf-8").read()
    assert 'generator = "gfkd"' in text and "seed = 7" in text and 'set = ["init_noise=0.5"]' in text
    saved = torch.load(first, weights_only=True)
    assert saved["provenance"]["recipe"]["iterations"] == 4  # the recipe travels in the checkpoint too
    again = str(tmp_path / "again.pt")
    assert main(["distill", "--config", recipe, "--out", again]) == 0
    a, b = saved["state_dict"], torch.load(again, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert open(recipe_path(again), encoding="utf-8").read().replace("again", "first") == text.replace("again",
                                                                                                     "first")


def test_flags_win_over_the_file_and_print_config_shows_the_result(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('teacher = "t.pt"\nout = "s.pt"\nepochs = 50\nnum-graphs = 64\nresample = false\n',
                      encoding="utf-8")
    assert main(["distill", "--config", str(recipe), "--epochs", "5", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "epochs = 5\n" in printed and "num-graphs = 64\n" in printed and "resample = false\n" in printed
    assert 'teacher = "t.pt"' in printed  # a required option the recipe gives is no longer required on the line
    assert load_recipe(str(recipe), _distill_parser())["num_graphs"] == 64


@pytest.mark.parametrize("body, message", [
    ("teacher = 't.pt'\nnum-grafs = 3\n", "unknown key 'num-grafs'"),
    ("epochs = 'many'\n", "key 'epochs' must be an integer, got 'many'"),
    ("lr = true\n", "key 'lr' must be a number, got True"),
    ("generator = 3\n", "key 'generator' must be a string, got 3"),
    ("precision = 'fp8'\n", "key 'precision' must be one of"),
    ("quiet = 1\n", "key 'quiet' must be true or false"),
    ("set = 'bn_weight=1'\n", "key 'set' must be a list of strings"),
    ("epochs = [\n", "is not valid TOML"),
])
def test_bad_recipes_are_refused_in_one_line_naming_key_and_file(tmp_path, capsys, body, message):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(body, encoding="utf-8")
    assert main(["distill", "--config", str(recipe), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(recipe) in err and len(err.strip().splitlines()) == 1


def test_missing_or_non_toml_recipe(tmp_path, capsys):
    assert main(["distill", "--config", str(tmp_path / "nope.toml"), "--print-config"]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = tmp_path / "r.yaml"
    other.write_text("epochs: 3\n", encoding="utf-8")
    assert main(["distill", "--config", str(other), "--print-config"]) == 2
    assert "recipes are TOML files (.toml)" in capsys.readouterr().err


def test_dump_and_load_round_trip_every_value_type(tmp_path):
    values = {"teacher": 'a "quoted" path\\x.pt', "epochs": 3, "lr": 0.005, "quiet": True, "set": ["a=1", "b=[2]"],
              "structure": "teacher"}
    path = tmp_path / "r.toml"
    path.write_text(dump_recipe(values, ["header line"]), encoding="utf-8")
    assert path.read_text(encoding="utf-8").startswith("# header line\n")
    assert load_recipe(str(path), _distill_parser()) == values


@pytest.mark.parametrize("recipe", sorted(glob.glob(os.path.join(ROOT, "docs", "recipes", "*.toml"))))
def test_shipped_example_recipes_are_valid(recipe, capsys):
    assert main(["distill", "--config", recipe, "--print-config"]) == 0
    assert "teacher = " in capsys.readouterr().out
