"""Tables and rendering of a distillation report: :func:`write_report` writes it as HTML or markdown."""
from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import json
import logging
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dfkd.distill.distiller import DistillReport
from dfkd.inspect import PLOT_HINT, PlotUnavailableError
from dfkd.report.collect import ModelFacts, ModelLike, _history_columns, _is_regression, measure_models
from dfkd.report.draw import Figure, training_figures
from dfkd.version import __version__

logger = logging.getLogger(__name__)

#: Report suffixes and the format each one writes.
REPORT_FORMATS = {".html": "html", ".md": "markdown"}
HISTORY_ROWS = 12  # epochs shown in the per-epoch table


def report_format(path: str) -> str:
    """``"html"`` or ``"markdown"`` from the suffix of ``path``; :class:`ValueError` naming the fix otherwise."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in REPORT_FORMATS:
        raise ValueError(f"report {path}: unknown suffix {suffix or '(none)'}: end the name in .html (one "
                         "self-contained file) or .md (markdown with PNG figures beside it)")
    return REPORT_FORMATS[suffix]


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------
def _num(value: Any, digits: int = 4) -> str:
    """A number for a table: ``-`` for missing or NaN, thousands separators for integers."""
    if value is None or isinstance(value, bool):
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:,.{max(1, digits - 2)}f}"
    return str(value)


def _ratio(student: Optional[float], teacher: Optional[float], smaller: str) -> str:
    """``0.096 (10.4× fewer)``: the student's share of the teacher's value."""
    if student is None or teacher is None or not teacher or not student:
        return "-"
    share = student / teacher
    return f"{share:.3f} ({teacher / student:.1f}× {smaller})" if share < 1 else f"{share:.3f}"


# --------------------------------------------------------------------------------------------
# the document: blocks rendered as HTML or markdown
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Code:
    """Table cell or text shown as code."""

    text: str


Block = Tuple[str, Any]  # ("h1"|"h2"|"p"|"note", text) | ("table", (header, rows)) | ("figure", Figure)


def _run_table(report: DistillReport, teacher: ModelFacts, student: ModelFacts) -> Tuple[list, list]:
    extra, config = report.extra, report.config
    provenance = extra.get("teacher_provenance") or {}
    teacher_text = str(extra.get("teacher") or "(in memory)")
    if provenance.get("dataset"):
        teacher_text += f", trained on {provenance['dataset']}"
    generator = extra.get("generator") or report.source.get("generator") or report.source.get("source", "-")
    rows = [
        ["teacher", f"{teacher.arch or 'model'}: {teacher_text}"],
        ["student", f"{student.arch or 'model'}" + (f": {extra['student']}" if extra.get("student") else "")],
        ["generator", f"{generator}" + (" (real graphs: the KD ceiling, not data-free)"
                                        if generator == "real" else "")],
        ["loss", Code(str(config.get("loss", "-")))],
        ["seed", _num(config.get("seed"))],
        ["epochs", f"{report.epochs_run}" + (f" (resumed from epoch {report.resumed_from_epoch})"
                                               if report.resumed_from_epoch else "")],
        ["time", f"generation {report.generation_seconds:.1f} s, distillation {report.distill_seconds:.1f} s"],
    ]
    if extra.get("collapsed_epochs"):
        rows.append(["collapsed epochs", f"{extra['collapsed_epochs']} (the teacher predicted one class for "
                                         "almost every generated graph)"])
    if extra.get("assistants"):
        chain = " → ".join(str(a.get("assistant")) for a in extra["assistants"] if "assistant" in a)
        rows.append(["teacher assistants", chain])
    written = datetime.datetime.now().isoformat(timespec="seconds")
    rows.append(["dfkd", f"run with {extra['dfkd_version']}, report by {__version__}" if extra.get("dfkd_version")
                 else f"report by {__version__}"])
    rows.append(["date", f"run finished {extra['finished']}, report written {written}" if extra.get("finished")
                 else f"report written {written}"])
    return ["", ""], rows


def _summary_table(report: DistillReport, teacher: ModelFacts, student: ModelFacts,
                   scores: Dict[str, float], num_eval: Optional[int]) -> Tuple[list, list]:
    measured = teacher.size_measured and student.size_measured
    size_label = "weights (KB)" if measured else "weights (KB, ≈ 4 B/parameter)"
    rows = [
        ["architecture", teacher.arch or "-", student.arch or "-", ""],
        ["parameters", _num(teacher.parameters), _num(student.parameters),
         _ratio(student.parameters, teacher.parameters, "fewer")],
        [size_label, f"{teacher.size_kb:,.1f}", f"{student.size_kb:,.1f}", _ratio(student.size_kb, teacher.size_kb,
                                                                               "smaller")],
        ["latency (ms/graph)", _num(teacher.latency_ms, 3), _num(student.latency_ms, 3),
         _ratio(student.latency_ms, teacher.latency_ms, "faster")],
    ]
    on = f" on {num_eval} graphs" if num_eval else " (evaluation graphs)"
    if _is_regression(report) and scores:
        rows += [
            [f"R²{on}", _num(scores.get("teacher_r2")), _num(scores.get("r2")),
             f"{_num(scores.get('relative_r2'), 3)} (relative R²)"],
            [f"MAE{on}", _num(scores.get("teacher_mae")), _num(scores.get("mae")), ""],
            [f"RMSE{on}", _num(scores.get("teacher_rmse")), _num(scores.get("rmse")), ""],
            ["agreement with the teacher (R² / MAE of its outputs)", "",
             f"{_num(scores.get('agreement_r2'))} / {_num(scores.get('agreement_mae'))}", ""],
        ]
    elif scores:
        rows += [
            [f"accuracy{on}", _num(scores.get("teacher_accuracy")), _num(scores.get("accuracy")),
             f"{_num(scores.get('relative_accuracy'), 3)} (relative accuracy)"],
            [f"majority-class accuracy{on}", "", _num(scores.get("majority_accuracy")),
             f"{_num(scores.get('chance_adjusted_accuracy'), 3)} (chance-adjusted accuracy)"],
            ["agreement with the teacher (same class)", "", _num(scores.get("agreement")), ""],
        ]
    return ["", "teacher", "student", "student / teacher"], rows


def _history_table(report: DistillReport, groups: Dict[str, List[str]]) -> Optional[Tuple[list, list]]:
    """Selected epochs: every evaluated one (thinned to :data:`HISTORY_ROWS`), the first and the last."""
    history = report.history
    if not history:
        return None
    scores = [k for k in groups["scores"] if k in ("accuracy", "agreement", "r2", "agreement_r2", "mae")]
    terms = groups["terms"]
    names = {}
    if len([k for k in terms if k != "loss"]) <= 1 and "loss" in terms:  # one term is the whole loss
        names["loss"] = f"loss ({next((k for k in terms if k != 'loss'), 'total')})"
        terms = ["loss"]
    columns = terms + groups["generator"][:2] + scores
    if "class_histogram" in history[-1]:
        columns.append("class_histogram")
        names["class_histogram"] = "teacher's classes on generated graphs"
    picked = [i for i, row in enumerate(history) if any(k in row for k in scores)] if scores else []
    if len(picked) < 3:
        picked = list(range(len(history)))
    if len(picked) > HISTORY_ROWS:
        step = (len(picked) - 1) / (HISTORY_ROWS - 1)
        picked = [picked[round(i * step)] for i in range(HISTORY_ROWS)]
    picked = sorted(set(picked) | {0, len(history) - 1})
    header = ["epoch"] + [names.get(c, c) for c in columns]
    rows = []
    for i in picked:
        row = history[i]
        cells = [str(row.get("epoch", i + 1))]
        for key in columns:
            value = row.get(key)
            cells.append(" / ".join(str(v) for v in value) if isinstance(value, list) else _num(value))
        rows.append(cells)
    return header, rows


def _config_table(values: Dict[str, Any]) -> Tuple[list, list]:
    return ["option", "value"], [[Code(str(k)), Code(v if isinstance(v, str) else json.dumps(v, default=str))]
                                 for k, v in values.items()]


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
def _html_cell(value: Any, tag: str) -> str:
    if isinstance(value, Code):
        return f"<{tag}><code>{html.escape(value.text)}</code></{tag}>"
    return f"<{tag}>{html.escape(str(value))}</{tag}>"


def _render_html(title: str, blocks: List[Block]) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:62rem;margin:2rem auto;"
           "padding:0 1rem;color:#222;line-height:1.45}table{border-collapse:collapse;margin:.4rem 0 1.2rem}"
           "th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}"
           "th{background:#f3f3f3}td:not(:first-child){font-variant-numeric:tabular-nums}"
           "img{max-width:100%}figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}"
           ".note{color:#666;font-size:.9rem}code{font-size:.85rem}</style>", "</head>", "<body>"]
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{html.escape(value)}</p>")
        elif kind == "note":
            out.append(f'<p class="note">{html.escape(value)}</p>')
        elif kind == "table":
            header, rows = value
            out.append("<table>")
            if any(header):
                out.append("<tr>" + "".join(_html_cell(h, "th") for h in header) + "</tr>")
            out += ["<tr>" + "".join(_html_cell(c, "td") for c in row) + "</tr>" for row in rows]
            out.append("</table>")
        elif kind == "figure":
            data = base64.b64encode(value.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(value.caption)}">'
                       f"<figcaption>{html.escape(value.caption)}</figcaption></figure>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _md_text(text: str) -> str:
    """Plain text safe in markdown: HTML escaped, markdown punctuation backslash-escaped."""
    text = html.escape(str(text), quote=False)
    for char in "\\`*_[]|#":
        text = text.replace(char, "\\" + char)
    return text


def _md_cell(value: Any) -> str:
    if isinstance(value, Code):
        return "`" + value.text.replace("`", "'").replace("|", "\\|") + "`"
    return _md_text(value)


def _render_markdown(blocks: List[Block], figure_files: Dict[str, str]) -> str:
    out: List[str] = []
    for kind, value in blocks:
        if kind == "h1":
            out += [f"# {_md_text(value)}", ""]
        elif kind == "h2":
            out += [f"## {_md_text(value)}", ""]
        elif kind == "p":
            out += [_md_text(value), ""]
        elif kind == "note":
            out += [f"_{_md_text(value)}_", ""]
        elif kind == "table":
            header, rows = value
            width = len(header)
            out.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
            out.append("|" + "|".join(["---"] * width) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
        elif kind == "figure":
            out += [f"![{_md_text(value.caption)}]({figure_files[value.name]})", "", _md_text(value.caption), ""]
    return "\n".join(out)


def write_report(report: DistillReport, path: str, *, teacher: ModelLike = None, student: ModelLike = None,
                 eval_graphs: Optional[Sequence] = None, device: str = "cpu", trust: bool = False) -> List[str]:
    """Write a distillation report: one self-contained HTML file (``.html``) or markdown + PNGs (``.md``).

    Args:
        report: the run's :class:`~dfkd.distill.DistillReport` (``DistillResult.report``, or
            :func:`read_report` of its ``.report.json``).
        path: ``report.html`` (figures embedded as base64 PNGs: the one file can be mailed) or
            ``report.md`` (figures written beside it as ``report_losses.png``, ``report_scores.png``,
            ``report_generated.png``).
        teacher: the teacher as a checkpoint path, :class:`~dfkd.checkpoint.Checkpoint` or module; with the
            student, it is timed for the latency row and its weights measured.
        student: the student, likewise (``DistillResult.student``).
        eval_graphs: real graphs to time the models on (without them: random graphs in the models'
            input encoding); they also give the scores when the run recorded none.
        device: where latency is measured.
        trust: allow pickled checkpoints given as paths (unsafe: only for files you trust).

    Returns:
        The files written, the report first.

    Without matplotlib the report has its tables only and a note naming ``pip install 'dfkd[plot]'``
    (logged as a warning). Unloadable model paths are logged, and their latency shown as ``-``.
    """
    kind = report_format(path)
    t_facts, s_facts, latency_note, scores = measure_models(report, teacher, student, eval_graphs, device, trust)
    num_eval = len(eval_graphs) if eval_graphs else None
    title = f"Distillation report: {t_facts.arch or 'teacher'} → {s_facts.arch or 'student'}"
    groups = _history_columns(report)
    blocks: List[Block] = [("h1", title), ("table", _run_table(report, t_facts, s_facts))]

    blocks += [("h2", "Teacher vs student"), ("table", _summary_table(report, t_facts, s_facts, scores, num_eval))]
    notes = []
    if latency_note:
        notes.append(f"Latency: {latency_note}.")
    else:
        notes.append("Latency: not measured (give the teacher and student models, or their checkpoints).")
    if not (t_facts.size_measured and s_facts.size_measured):
        notes.append("Weights: estimated as 4 bytes per parameter (the models were not at hand).")
    else:
        notes.append("Weights: bytes of the parameters and buffers (state dict) of each model; 1 KB = 1024 bytes.")
    if not scores:
        notes.append("No evaluation graphs: accuracy and agreement need --eval-dataset (or eval_graphs=).")
    elif _is_regression(report):
        notes.append("Relative R² = student R² / teacher R²; agreement compares the student with the teacher's "
                     "outputs instead of the labels.")
    else:
        notes.append("Chance-adjusted accuracy = (student − majority) / (teacher − majority): the share of the "
                     "teacher's gain over always predicting the most frequent class that the student keeps (the "
                     "figure to read; relative accuracy = student / teacher accuracy counts chance as kept). "
                     "Agreement = share of graphs on which student and teacher predict the same class.")
    blocks += [("note", n) for n in notes]

    blocks.append(("h2", "Training curves"))
    figures: List[Figure] = []
    if report.history:
        try:
            figures = training_figures(report, num_eval)
        except PlotUnavailableError:
            logger.warning("report %s: matplotlib is not installed, so it has tables only (%s adds the figures)",
                           path, PLOT_HINT)
            blocks.append(("note", f"Figures omitted: matplotlib is not installed ({PLOT_HINT} adds them)."))
        blocks += [("figure", f) for f in figures]
    else:
        blocks.append(("note", "The run recorded no epochs."))
    table = _history_table(report, groups)
    if table:
        blocks += [("h2", "Selected epochs"), ("table", table)]
        if "class_histogram" in (report.history[-1] if report.history else {}):
            blocks.append(("note", "Teacher's classes on generated graphs: how many of the epoch's generated "
                                   "graphs the teacher assigns to class 0 / 1 / ..."))

    blocks += [("h2", "Configuration"), ("table", _config_table(report.config))]
    generator_config = report.extra.get("generator_config") or report.source.get("generator_config")
    if generator_config:
        blocks += [("h2", "Generator configuration"), ("table", _config_table(generator_config))]
    source = {k: v for k, v in report.source.items() if k != "generator_config"}
    if source:
        blocks += [("h2", "Graph source"), ("table", _config_table(source))]
    chain = report.extra.get("assistants")
    if chain:
        blocks += [("h2", "Teacher-assistant chain"),
                   ("table", _config_table({str(i + 1): stage for i, stage in enumerate(chain)}))]

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    written = [path]
    if kind == "html":
        text = _render_html(title, blocks)
    else:
        stem = os.path.splitext(os.path.basename(path))[0]
        files = {f.name: f"{stem}_{f.name}.png" for f in figures}
        for figure in figures:
            target = os.path.join(folder, files[figure.name])
            with open(target, "wb") as handle:
                handle.write(figure.png)
            written.append(target)
        text = _render_markdown(blocks, files)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    logger.info("wrote the distillation report %s (%d figure(s))", path, len(figures))
    return written
