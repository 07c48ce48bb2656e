"""The documentation site builds with `mkdocs build --strict`, and its generated pages are complete."""
import glob
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBCOMMANDS = ("train-teacher", "evaluate", "info", "distill", "generate", "inspect", "export", "report")


def _hooks():
    spec = importlib.util.spec_from_file_location("dfkd_docs_hooks", os.path.join(ROOT, "docs", "hooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_covers_every_subcommand():
    text = _hooks().cli_reference()
    for name in SUBCOMMANDS:
        assert f"## dfkd {name}" in text and f"usage: dfkd {name}" in text
    assert "--per-class" in text and "--tolerance" in text  # options of the new commands
    assert "(default: 4)" in text


def test_readme_pieces_used_by_the_docs_exist():
    hooks = _hooks()
    commands = hooks.readme_commands()
    assert len(commands) >= 2 and "dfkd train-teacher" in commands[0] and "pytest" in commands[1]
    assert hooks.readme_status().splitlines()[-1].startswith("|")


def test_strict_build(tmp_path):
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -e '.[docs]' to build the documentation")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           os.path.join(ROOT, "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def page(name):
        return (site / name / "index.html").read_text(encoding="utf-8")

    cli = page("cli")
    for name in SUBCOMMANDS:
        assert f"dfkd {name}" in cli
    assert "dfkd:cli" not in cli
    api = page("api")
    for name in ("distill_student", "from_module", "graph_statistics", "export_model", "SyntheticGraphSet",
                 "PriorConfig"):
        assert name in api, name
    assert ":class:" not in api and ":meth:" not in api
    index = page(".")
    assert "train-teacher" in index and "pytest" in index and "dfkd:readme" not in index
    for path in glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.md")):
        name = os.path.splitext(os.path.basename(path))[0]
        assert (site / "benchmarks" / ("results" if name == "README" else name) / "index.html").is_file(), name
    for name in ("byo_teacher", "concepts", "inspect_export", "faq", "design", "benchmarks"):
        assert (site / name / "index.html").is_file(), name
