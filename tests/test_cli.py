import json
import subprocess
import sys

import pytest

from dfkd.cli import build_parser, main


def test_help_lists_commands_and_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train-teacher", "evaluate", "info"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["train-teacher", "--help"])
    out = capsys.readouterr().out
    assert "(default: gin-5-64)" in out and "examples:" in out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "scatter backend: native" in out and "gin" in out


def test_train_then_evaluate(tmp_path, capsys):
    teacher = str(tmp_path / "t.pt")
    assert main(["train-teacher", "--dataset", "MUTAG", "--arch", "gin-2-16", "--epochs", "3",
                 "--out", teacher, "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    report = str(tmp_path / "r.json")
    assert main(["evaluate", "--model", teacher, "--teacher", teacher, "--dataset", "MUTAG",
                 "--json", report, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "agreement 1.0000" in out and "relative accuracy 1.0000" in out
    data = json.load(open(report))
    assert data["num_graphs"] == 18 and data["agreement"] == 1.0  # fold 1 test split, as recorded


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--model", "missing.pt", "--dataset", "MUTAG"], "checkpoint not found"),
        (["train-teacher", "--dataset", "NOPE", "--out", "x.pt"], "unknown dataset"),
        (["train-teacher", "--dataset", "MUTAG", "--arch", "gin-two", "--out", "x.pt", "--epochs", "1"],
         "cannot parse architecture"),
    ],
)
def test_user_errors_are_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_feature_mismatch_is_explained(tmp_path, capsys):
    teacher = str(tmp_path / "t.pt")
    main(["train-teacher", "--dataset", "MUTAG", "--arch", "gin-1-8", "--epochs", "1", "--out", teacher, "--quiet"])
    capsys.readouterr()
    assert main(["evaluate", "--model", teacher, "--dataset", "PTC"]) == 2
    assert "expects 7 node features but the dataset has 19" in capsys.readouterr().err


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["evaluate", "--model", "a.pt", "--dataset", "MUTAG", "--fold", "1",
                                   "--holdout", "0.3"])
    assert info.value.code == 2


def test_console_script_and_module_entry_points():
    out = subprocess.run([sys.executable, "-m", "dfkd", "info"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("dfkd ")
