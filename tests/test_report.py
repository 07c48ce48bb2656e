"""Distillation reports (dfkd.report, `dfkd distill --report`, `dfkd report`): HTML and markdown, figures,
numbers, the no-matplotlib fallback and the CLI's errors."""
import base64
import html
import io
import json
import os
import re
import sys

import pytest
import torch

import dfkd
from dfkd.cli import main
from dfkd.distill import DistillConfig, DistillReport, distill_student
from dfkd.inspect import PLOT_HINT
from dfkd.report import find_run_models, read_report, report_format, training_figures, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def eval_graphs(mutag):
    return [mutag[i] for i in range(0, 188, 5)]  # 38 graphs


@pytest.fixture(scope="module")
def run(tiny_teacher, eval_graphs, tmp_path_factory):
    """Three epochs of the (online) prior generator, evaluated every epoch; the student saved to disk."""
    out = str(tmp_path_factory.mktemp("run") / "student.pt")
    return distill_student(tiny_teacher, "gin-2-8", num_graphs=32, config=DistillConfig(epochs=3, eval_every=1),
                           eval_graphs=eval_graphs, out=out, show_progress=False)


def _png_images(text):
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def _open_png(data):
    from PIL import Image

    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    image.load()
    return image


def _non_trivial(image):
    """More than a blank canvas: many distinct colours."""
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return colours is not None and len(colours) > 20


def test_html_is_self_contained_with_the_runs_numbers(run, tiny_teacher, eval_graphs, tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "sub" / "report.html")
    written = write_report(run.report, path, teacher=tiny_teacher, student=run.student, eval_graphs=eval_graphs)
    assert written == [path] and os.listdir(tmp_path / "sub") == ["report.html"]  # one file, nothing beside it
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    images = _png_images(text)
    assert len(images) == 3  # losses, scores, generated graphs' classes
    for data in images:
        assert data.startswith(PNG_MAGIC) and _non_trivial(_open_png(data))
    rep = run.report
    assert f"<td>{rep.teacher_parameters:,}</td><td>{rep.student_parameters:,}</td>" in text
    final = rep.final
    assert f"<td>{final['teacher_accuracy']:.4f}</td><td>{final['accuracy']:.4f}</td>" in text
    assert f"<td>{final['agreement']:.4f}</td>" in text
    assert f"{final['relative_accuracy']:.3f} (relative accuracy)" in text
    latency = re.search(r"<td>latency \(ms/graph\)</td><td>([0-9.]+)</td><td>([0-9.]+)</td>", text)
    assert latency and float(latency.group(1)) > 0 and float(latency.group(2)) > 0
    assert f"over the {len(eval_graphs)} evaluation graphs" in text
    assert "gin-3-16 → gin-2-8" in text and "prior" in text and dfkd.__version__ in text


def test_html_escapes_what_it_shows(run, tmp_path):
    pytest.importorskip("matplotlib")
    report = DistillReport(**{**run.report.to_dict(), "extra": {**run.report.extra, "teacher": "<b>t&1</b>.pt"}})
    path = str(tmp_path / "r.html")
    write_report(report, path)
    text = open(path, encoding="utf-8").read()
    assert "<b>t&1</b>" not in text and "&lt;b&gt;t&amp;1&lt;/b&gt;.pt" in text


def test_markdown_writes_pngs_beside_it(run, tiny_teacher, tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "out.md")
    written = write_report(run.report, path, teacher=tiny_teacher, student=run.student)  # no eval graphs
    names = sorted(os.path.basename(p) for p in written[1:])
    assert written[0] == path and names == ["out_generated.png", "out_losses.png", "out_scores.png"]
    text = open(path, encoding="utf-8").read()
    for name in names:
        assert f"]({name})" in text
        assert os.path.getsize(tmp_path / name) > 10_000
        image = _open_png(str(tmp_path / name))
        assert image.size[0] >= 800 and image.size[1] >= 250 and _non_trivial(image)
    import matplotlib.image

    assert matplotlib.image.imread(str(tmp_path / "out_losses.png")).ndim == 3
    rep = run.report
    assert f"| parameters | {rep.teacher_parameters:,} | {rep.student_parameters:,} |" in text
    assert "random graphs in the models' input encoding" in text  # latency without eval graphs


def test_without_matplotlib_tables_only(run, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    for name in ("r.html", "r.md"):
        path = str(tmp_path / name)
        with caplog.at_level("WARNING", logger="dfkd.report"):
            assert write_report(run.report, path) == [path]  # no models: no latency to measure
        text = open(path, encoding="utf-8").read()
        assert "data:image/png" not in text and ".png" not in text
        assert PLOT_HINT in html.unescape(text).replace("\\", "") and f"{run.report.student_parameters:,}" in text
        assert "Selected epochs" in text and "Configuration" in text
    assert sorted(os.listdir(tmp_path)) == ["r.html", "r.md"]
    assert any(PLOT_HINT in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_figures_choose_log_scale_and_mark_collapse():
    pytest.importorskip("matplotlib")
    history = [{"epoch": e, "kl": 100.0 / e ** 2, "label_ce": 0.5 / e, "loss": 100.0 / e ** 2 + 0.5 / e,
                "class_histogram": [60, 4] if e == 3 else [30, 34], "collapsed": e == 3,
                "generator_loss": -0.1 * e, "generator_adversarial": -0.1 * e}
               for e in range(1, 21)]
    report = DistillReport(config={"loss": "kl,label_ce=0.5", "eval_every": 10}, source={}, teacher_parameters=10,
                           student_parameters=5, epochs_run=20, history=history)
    figures = {f.name: f for f in training_figures(report)}
    assert sorted(figures) == ["generated", "losses"]  # no evaluation data: no scores figure
    assert all(f.png.startswith(PNG_MAGIC) for f in figures.values())
    from dfkd.report.collect import _history_columns

    groups = _history_columns(report)
    assert groups["terms"] == ["kl", "label_ce", "loss"] and groups["generator"] == ["generator_loss",
                                                                                     "generator_adversarial"]


def test_regression_report_shows_r2(tmp_path):
    pytest.importorskip("matplotlib")
    from dfkd.data import make_regression_dataset, split_from_record
    from dfkd.train import TrainConfig

    data = make_regression_dataset("TRIANGLES", num_graphs=40, seed=0)
    teacher = dfkd.train_teacher(data, "gin-2-16", holdout=0.3, config=TrainConfig(epochs=2, seed=0),
                                 show_progress=False).checkpoint
    _, test = split_from_record(data, teacher.provenance["split"])
    graphs = [data[i] for i in test]
    result = distill_student(teacher, "gin-1-8", num_graphs=32, config=DistillConfig(epochs=2, eval_every=1),
                             eval_graphs=graphs, show_progress=False)
    path = str(tmp_path / "reg.md")
    written = write_report(result.report, path, teacher=teacher, student=result.student, eval_graphs=graphs)
    text = open(path, encoding="utf-8").read()
    final = result.report.final
    for name, key in (("R²", "r2"), ("MAE", "mae")):
        row = re.search(rf"\| {name} on {len(graphs)} graphs \| (\S+) \| (\S+) \|", text)
        assert row, name
        shown = [float(v.replace(",", "")) for v in row.groups()]
        assert shown == pytest.approx([final[f"teacher_{key}"], final[key]], rel=1e-3, abs=1e-4)
    assert "accuracy" not in text.split("## Training curves")[0]
    assert sorted(os.path.basename(p) for p in written[1:]) == ["reg_generated.png", "reg_losses.png", "reg_scores.png"]


def test_report_format_and_read_report(run, tmp_path):
    assert report_format("a/b.HTML") == "html" and report_format("r.md") == "markdown"
    with pytest.raises(ValueError, match=r"unknown suffix \.pdf: end the name in \.html .* or \.md"):
        report_format("r.pdf")
    json_path = str(tmp_path / "student.report.json")
    run.report.save(json_path)
    again = read_report(json_path)
    assert again.to_dict() == json.loads(json.dumps(run.report.to_dict(), default=str))
    bad = tmp_path / "bad.json"
    bad.write_text("{\"hello\": 1}")
    with pytest.raises(ValueError, match="not a dfkd distillation report"):
        read_report(str(bad))
    with pytest.raises(ValueError, match="run report not found"):
        read_report(str(tmp_path / "missing.json"))
    # The student is found beside its JSON; a recorded teacher path that is gone is None (latency not measured).
    torch.save({}, tmp_path / "student.pt")
    report = DistillReport(config={}, source={}, teacher_parameters=1, student_parameters=1,
                           extra={"teacher": str(tmp_path / "gone.pt")})
    assert find_run_models(report, json_path) == (None, os.path.join(str(tmp_path), "student.pt"))


def test_cli_distill_report_and_rebuild(tiny_teacher, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "s.pt")
    html_path = str(tmp_path / "report.html")
    assert main(["distill", "--teacher", tiny_teacher.path, "--student", "gin-1-8", "--out", out, "--epochs", "2",
                 "--num-graphs", "16", "--eval-dataset", "MUTAG", "--report", html_path, "--quiet"]) == 0
    assert f"report -> {html_path}" in capsys.readouterr().out
    saved = read_report(str(tmp_path / "s.report.json"))
    text = open(html_path, encoding="utf-8").read()
    assert len(_png_images(text)) == 3 and f"<td>{saved.student_parameters:,}</td>" in text
    assert saved.extra["student"] == out and saved.extra["student_arch"] == "gin-1-8"
    # Rebuilt from the JSON alone: the checkpoints are found from what the run recorded.
    md_path = str(tmp_path / "again" / "report.md")
    assert main(["report", str(tmp_path / "s.report.json"), "--out", md_path, "--quiet"]) == 0
    assert "(+ 3 PNG figure(s) beside it)" in capsys.readouterr().out
    md = open(md_path, encoding="utf-8").read()
    latency = re.search(r"\| latency \(ms/graph\) \| ([0-9.]+) \| ([0-9.]+) \|", md)
    assert latency and f"{saved.final['accuracy']:.4f}" in md


@pytest.mark.parametrize("argv, option", [
    (["distill", "--teacher", "{teacher}", "--out", "{tmp}/s.pt", "--report", "{tmp}/report.pdf"], "--report"),
    (["report", "{tmp}/run.report.json", "--out", "{tmp}/report.txt"], "--out"),
])
def test_cli_bad_report_suffix(argv, option, tiny_teacher, tmp_path, capsys):
    argv = [a.format(teacher=tiny_teacher.path, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: {option}: report" in err and ".html" in err and ".md" in err
    assert os.listdir(tmp_path) == []  # refused before any work


def test_cli_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.report.json"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run report not found" in err
    path = tmp_path / "x.report.json"
    path.write_text("not json")
    assert main(["report", str(path), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a readable JSON file" in err
