"""Distillation reports: what a run did and measured, in one file to read or mail.

:func:`write_report` turns the :class:`~dfkd.distill.DistillReport` of a run into a self-contained HTML
page (figures embedded as PNG data URIs) when the path ends in ``.html``, or into a markdown file with
its PNG figures beside it when the path ends in ``.md``. It holds:

* the run: teacher → student, generator, seed, epochs, dfkd version, date;
* teacher vs student: parameters, weight size, latency per graph (measured on the evaluation graphs, or
  on random graphs in the models' input encoding without them) and, when the run had evaluation
  graphs, accuracy, agreement and relative accuracy (R², MAE and RMSE for regression teachers);
* training curves: the loss terms per epoch, the evaluation scores per epoch, and, for online
  generators, the teacher's predicted classes (or output range) on each epoch's generated graphs;
* selected epochs as a table, and the configuration.

The figures need matplotlib (``pip install 'dfkd[plot]'``); without it the report keeps the tables and
says how to get the figures::

    import dfkd
    from dfkd.report import write_report

    result = dfkd.distill_student("teacher.pt", "gin-2-32", out="student.pt", eval_graphs=test_graphs)
    write_report(result.report, "report.html", teacher="teacher.pt", student=result.student,
                 eval_graphs=test_graphs)

The command line does the same with ``dfkd distill ... --report report.html``, and rebuilds the report
of a finished run from its JSON with ``dfkd report student.report.json --out report.html``.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import io
import json
import logging
import math
import os
import textwrap
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from dfkd.distill.distiller import DistillReport
from dfkd.evaluate import CLASSIFICATION_SCORES, REGRESSION_SCORES
from dfkd.inspect import PLOT_HINT, PlotUnavailableError, require_matplotlib, save_figure
from dfkd.version import __version__

logger = logging.getLogger(__name__)

#: Report suffixes and the format each one writes.
REPORT_FORMATS = {".html": "html", ".md": "markdown"}
OUTPUT_KEYS = ("teacher_output_mean", "teacher_output_std", "teacher_output_min", "teacher_output_max")
LATENCY_GRAPHS = 32  # random graphs to time the models on when no evaluation graphs are given
HISTORY_ROWS = 12  # epochs shown in the per-epoch table
DPI = 100
LOG_SPAN = 30.0
# Titles of generator diagnostics that are not loss terms (generators' ``generator_step`` results).
GENERATOR_TITLES = {"teacher_logit_max": "generator: largest |teacher output| on its graphs"}
LEGEND_WIDTH = 30  # characters per legend line
# Every figure is 9 inches wide with its axes between these fractions (legends right of them): the
# epoch axes of a report's figures line up one above the other.
AXES_LEFT, AXES_RIGHT = 0.09, 0.74  # a positive curve spanning more than this factor gets a log axis

ModelLike = Union[None, str, nn.Module, Any]  # a path, a module or a dfkd Checkpoint


def report_format(path: str) -> str:
    """``"html"`` or ``"markdown"`` from the suffix of ``path``; :class:`ValueError` naming the fix otherwise."""
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in REPORT_FORMATS:
        raise ValueError(f"report {path}: unknown suffix {suffix or '(none)'}: end the name in .html (one "
                         "self-contained file) or .md (markdown with PNG figures beside it)")
    return REPORT_FORMATS[suffix]


def read_report(path: str) -> DistillReport:
    """Load the :class:`~dfkd.distill.DistillReport` JSON a run wrote (``student.report.json``)."""
    if not os.path.isfile(path):
        raise ValueError(f"run report not found: {path} ('dfkd distill --out S.pt' writes S.report.json)")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc}): give the .report.json that "
                         "'dfkd distill' wrote") from None
    required = ("config", "source", "teacher_parameters", "student_parameters")
    if not isinstance(data, dict) or any(key not in data for key in required):
        raise ValueError(f"{path}: not a dfkd distillation report (it lacks {', '.join(required)}): give the "
                         ".report.json that 'dfkd distill' wrote")
    names = {f.name for f in dataclasses.fields(DistillReport)}
    return DistillReport(**{k: v for k, v in data.items() if k in names})


def find_run_models(report: DistillReport, report_json: str, teacher: Optional[str] = None,
                    student: Optional[str] = None) -> Tuple[Optional[str], Optional[str]]:
    """Checkpoint paths of a finished run's teacher and student, to time them for a rebuilt report.

    Given paths must exist. Otherwise the teacher is the path the run recorded and the student the
    recorded one or ``S.pt`` beside ``S.report.json``; a recorded relative path is also tried next to the
    JSON. One not found is ``None`` (logged: the report then shows no latency for it).
    """
    base = os.path.dirname(os.path.abspath(report_json))

    def locate(given: Optional[str], recorded: Sequence[Optional[str]], role: str) -> Optional[str]:
        if given:
            if not os.path.isfile(given):
                raise ValueError(f"{role} checkpoint not found: {given}")
            return given
        tried: List[str] = []
        for path in recorded:
            if not path:
                continue
            for candidate in (path, os.path.join(base, path), os.path.join(base, os.path.basename(path))):
                if os.path.isfile(candidate):
                    return candidate
                tried.append(candidate)
        logger.warning("report: the run's %s checkpoint was not found (tried %s): its latency and weights are not "
                       "measured; give it with --%s (%s= in Python)", role, ", ".join(dict.fromkeys(tried)) or "nothing recorded", role, role)
        return None

    name = os.path.basename(report_json)
    sibling = name[: -len(".report.json")] + ".pt" if name.endswith(".report.json") else None
    return (locate(teacher, [report.extra.get("teacher")], "teacher"),
            locate(student, [report.extra.get("student"), sibling], "student"))


# --------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ModelFacts:
    """Size and speed of one model, as the report shows them."""

    arch: Optional[str]
    parameters: int
    size_kb: float
    size_measured: bool  # False: estimated as 4 bytes per parameter (no model at hand)
    latency_ms: Optional[float] = None


def _resolve_model(model: ModelLike, role: str, trust: bool) -> Tuple[Optional[nn.Module], Any]:
    """``(module or None, checkpoint or None)`` from a path, a :class:`~dfkd.checkpoint.Checkpoint` or a module."""
    from dfkd.checkpoint import Checkpoint, CheckpointError, load_checkpoint

    if model is None:
        return None, None
    if isinstance(model, nn.Module):
        return model, None
    try:
        ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(str(model), trust=trust)
        return ckpt.build_model(), ckpt
    except (CheckpointError, OSError) as exc:
        logger.warning("report: cannot load the %s (%s): its latency is not measured", role, exc)
        return None, None


def _weights_kb(model: nn.Module) -> float:
    """Bytes of the model's parameters and buffers (its state dict), in KiB."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values() if torch.is_tensor(t)) / 1024


def _latency_graphs(eval_graphs: Optional[Sequence], checkpoints: Sequence[Any],
                    modules: Sequence[Optional[nn.Module]]) -> Tuple[Optional[list], str]:
    """Graphs to time the models on, and how to describe them."""
    if eval_graphs:
        return list(eval_graphs), f"the {len(eval_graphs)} evaluation graphs"
    from dfkd.export import example_graphs

    for ckpt in checkpoints:
        if ckpt is not None and (ckpt.feature_spec is not None or ckpt.model_config is not None):
            graphs = example_graphs(ckpt.feature_spec, LATENCY_GRAPHS, seed=0, size_stats=ckpt.size_stats,
                                    in_channels=ckpt.model_config.in_channels if ckpt.model_config else None)
            return graphs, f"{LATENCY_GRAPHS} random graphs in the models' input encoding (no evaluation graphs)"
    for module in modules:
        width = getattr(getattr(module, "config", None), "in_channels", None)
        if width is not None:
            graphs = example_graphs(None, LATENCY_GRAPHS, seed=0, in_channels=width)
            return graphs, f"{LATENCY_GRAPHS} random graphs with {width} Gaussian node features (no evaluation graphs)"
    return None, ""


def measure_models(report: DistillReport, teacher: ModelLike = None, student: ModelLike = None,
                   eval_graphs: Optional[Sequence] = None, device: str = "cpu",
                   trust: bool = False) -> Tuple[ModelFacts, ModelFacts, str, Dict[str, float]]:
    """Teacher and student facts, a description of the latency graphs, and evaluation scores.

    The scores are the run's final ones (``report.final``); when it has none but ``eval_graphs`` and
    both models are given, they are computed here.
    """
    from dfkd.evaluate import evaluate, latency_ms

    t_model, t_ckpt = _resolve_model(teacher, "teacher", trust)
    s_model, s_ckpt = _resolve_model(student, "student", trust)
    graphs, where = _latency_graphs(eval_graphs, [t_ckpt, s_ckpt], [t_model, s_model])
    facts = []
    for model, params, key in ((t_model, report.teacher_parameters, "teacher_arch"),
                               (s_model, report.student_parameters, "student_arch")):
        arch = getattr(getattr(model, "config", None), "short_name", None) or report.extra.get(key)
        fact = ModelFacts(arch=arch, parameters=int(params), size_kb=params * 4 / 1024, size_measured=False)
        if model is not None:
            fact.size_kb, fact.size_measured = _weights_kb(model), True
            if graphs:
                fact.latency_ms = latency_ms(model.to(device), graphs, device=device)
        facts.append(fact)
    scores = dict(report.final or {})
    if not scores and eval_graphs and t_model is not None and s_model is not None:
        scores = evaluate(s_model, list(eval_graphs), teacher=t_model, device=device, measure_latency=False).metrics()
    if graphs and any(f.latency_ms is not None for f in facts):
        where = f"median of single-graph forward passes on {device} ({_threads()}), over {where}"
    else:
        where = ""
    return facts[0], facts[1], where, scores


def _threads() -> str:
    n = torch.get_num_threads()
    return f"{n} thread" + ("s" if n != 1 else "")


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


@dataclasses.dataclass
class Figure:
    """A PNG figure of the report."""

    name: str
    caption: str
    png: bytes


Block = Tuple[str, Any]  # ("h1"|"h2"|"p"|"note", text) | ("table", (header, rows)) | ("figure", Figure)


def _history_columns(report: DistillReport) -> Dict[str, List[str]]:
    """History keys by kind: ``terms`` (student loss), ``scores``, ``generator``, ``outputs``, ``other``."""
    from dfkd.losses import parse_recipe

    try:
        recipe = [name for name, _ in parse_recipe(str(report.config.get("loss", "")))]
    except (ValueError, KeyError):
        recipe = []
    keys: List[str] = []
    for row in report.history:
        keys.extend(k for k, v in row.items() if k not in keys and isinstance(v, (int, float))
                    and not isinstance(v, bool))
    groups: Dict[str, List[str]] = {"terms": [], "scores": [], "generator": [], "outputs": [], "other": []}
    for key in keys:
        if key == "epoch":
            continue
        if key == "loss" or key in recipe:
            groups["terms"].append(key)
        elif key in CLASSIFICATION_SCORES or key in REGRESSION_SCORES:
            groups["scores"].append(key)
        elif key.startswith("generator_"):
            groups["generator"].append(key)
        elif key in OUTPUT_KEYS:
            groups["outputs"].append(key)
        else:
            groups["other"].append(key)
    return groups


def _recipe_weights(report: DistillReport) -> Dict[str, float]:
    from dfkd.losses import parse_recipe

    try:
        return dict(parse_recipe(str(report.config.get("loss", ""))))
    except (ValueError, KeyError):
        return {}


def _is_regression(report: DistillReport) -> bool:
    if report.extra.get("task"):
        return report.extra["task"] == "regression"
    keys = set(report.final) | {k for row in report.history for k in row}
    return "r2" in keys or "teacher_output_mean" in keys


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
# figures
# --------------------------------------------------------------------------------------------
def _series(history: List[Dict[str, Any]], key: str) -> Tuple[List[int], List[float]]:
    xs, ys = [], []
    for i, row in enumerate(history):
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            xs.append(int(row.get("epoch", i + 1)))
            ys.append(float(value))
    return xs, ys


def _style_axes(ax, title: str, ylabel: str, epochs: int, legend: bool = True, bins: Any = "auto",
                title_size: float = 10) -> None:
    """Title, labels, grid, the legend outside on the right (never over the curves) and the x axis over
    all epochs, so every figure of a report lines up."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=title_size, loc="left")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=bins, integer=True, steps=[1, 2, 5, 10]))
    if epochs > 1:
        ax.set_xlim(1 - 0.01 * epochs, epochs * 1.01)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if legend and handles:
        labels = ["\n".join(textwrap.fill(line, LEGEND_WIDTH, subsequent_indent="  ") for line in label.split("\n"))
                  for label in labels]
        legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                           borderaxespad=0)
        legend.set_in_layout(False)  # it lives in the margin right of AXES_RIGHT, whatever its width


def _layout(fig, bottom: float = 0.0) -> None:
    """Vertical spacing from matplotlib's tight layout, then the same left and right margins for every figure."""
    fig.tight_layout(rect=(0, bottom, AXES_RIGHT, 1))
    fig.subplots_adjust(left=AXES_LEFT, right=AXES_RIGHT)


def _maybe_log(ax, values: Sequence[float]) -> None:
    """A log axis when every value is positive and they span more than :data:`LOG_SPAN`."""
    positive = [v for v in values if v > 0]
    if values and len(positive) == len(values) and max(positive) / min(positive) > LOG_SPAN:
        ax.set_yscale("log")


def _marker(n: int) -> Dict[str, Any]:
    return {"marker": "o", "markersize": 3} if n <= 30 else {}


def _epochs(report: DistillReport) -> int:
    last = report.history[-1].get("epoch", len(report.history)) if report.history else 0
    return max(int(report.epochs_run or 0), int(last or 0))


def _loss_figure(plt, report: DistillReport, groups: Dict[str, List[str]]):
    """The student's loss (total and weighted terms) on top, then one small panel per generator term and per
    other per-epoch value (their scales differ by orders of magnitude: one axis each)."""
    history = report.history
    generator = list(groups["generator"])
    total = _series(history, "generator_loss")
    same = [k for k in generator if k != "generator_loss" and total[1] and _series(history, k) == total]
    if same:  # a term equal to the generator's total: one panel for both
        generator.remove("generator_loss")
    small = [("generator", k) for k in generator] + [("other", k) for k in groups["other"]]
    if not groups["terms"] and not small:
        return None
    weights, epochs = _recipe_weights(report), _epochs(report)
    top = 1 if groups["terms"] else 0
    rows = top + (len(small) + 1) // 2
    fig = plt.figure(figsize=(9, (2.9 if top else 0) + 2.4 * (rows - top) + 0.3))
    grid = fig.add_gridspec(rows, 2, height_ratios=[1.25] * top + [1.0] * (rows - top))
    if top:
        ax = fig.add_subplot(grid[0, :])
        values: List[float] = []
        terms = [k for k in groups["terms"] if k != "loss"]
        if len(terms) <= 1:  # one term is the whole loss: one curve
            xs, ys = _series(history, "loss" if "loss" in groups["terms"] else terms[0])
            what = f"{terms[0]} loss" if terms else "loss"
            ax.plot(xs, ys, color="black", linewidth=1.5, label=f"{what} (the whole recipe)", **_marker(len(xs)))
            values += ys
        else:
            what = "weighted loss term"
            xs, ys = _series(history, "loss")
            if ys:
                ax.plot(xs, ys, color="black", linewidth=1.8, label="total", **_marker(len(xs)))
                values += ys
            for k, key in enumerate(terms):
                xs, ys = _series(history, key)
                weight = weights.get(key, 1.0)
                ax.plot(xs, ys, color=plt.get_cmap("tab10")(k % 10), linewidth=1.2,
                        label=key if weight == 1 else f"{key} (× {weight:g})", **_marker(len(xs)))
                values += ys
        _maybe_log(ax, values)
        _style_axes(ax, "Student loss per epoch (mean over the epoch's graphs)",
                    what + (", log scale" if ax.get_yscale() == "log" else ""), epochs)
    for k, (kind, key) in enumerate(small):
        ax = fig.add_subplot(grid[top + k // 2, k % 2])
        xs, ys = _series(history, key)
        ax.plot(xs, ys, color="tab:purple" if kind == "generator" else "tab:brown", linewidth=1.2,
                **_marker(len(xs)))
        _maybe_log(ax, ys)
        if kind == "generator":
            name = key[len("generator_"):]
            title = ("generator loss (total)" if name == "loss" else GENERATOR_TITLES.get(name, f"generator: {name}")
                     + (" (= total)" if key in same else ""))
        else:
            title = key
        _style_axes(ax, title + (" (log scale)" if ax.get_yscale() == "log" else ""), "", epochs, bins=6, title_size=9)
    notes = []
    if generator:
        notes.append("Generator panels: its loss terms and diagnostics, mean over its steps in each epoch (an "
                     "epoch without a generator step has no point).")
    if groups["other"]:
        notes.append("Other panels: values recorded per epoch, such as learnt loss parameters.")
    if notes:
        fig.text(0.01, 0.005, " ".join(notes), fontsize=7.5, color="0.35", ha="left", va="bottom")
    _layout(fig, bottom=0.03 if notes else 0.0)
    return fig


def _score_figure(plt, report: DistillReport, groups: Dict[str, List[str]], num_eval: Optional[int]):
    scores = set(groups["scores"])
    if not scores:
        return None
    history, epochs = report.history, _epochs(report)
    on = f"{num_eval} evaluation graphs" if num_eval else "the evaluation graphs"
    if "r2" in scores:
        panels = [("r2", "agreement_r2", "teacher_r2", "R²", "R²", "R² vs its outputs"),
                  ("mae", "agreement_mae", "teacher_mae", "MAE", "mean absolute error", "MAE vs its outputs")]
    else:
        panels = [("accuracy", "agreement", "teacher_accuracy", "accuracy", "fraction of graphs", "same class")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.9 * len(panels) + 0.3), squeeze=False)
    for ax, (own, agree, ref, name, ylabel, agreement) in zip(axes[:, 0], panels):
        values: List[float] = []
        xs, ys = _series(history, own)
        ax.plot(xs, ys, color="tab:blue", linewidth=1.5, label=f"student {name}", **_marker(len(xs)))
        values += ys
        xs, ys = _series(history, agree)
        ax.plot(xs, ys, color="tab:orange", linewidth=1.5, label=f"agreement with the teacher\n  ({agreement})",
                **_marker(len(xs)))
        values += ys
        _, teacher = _series(history, ref)
        if teacher:
            ax.axhline(teacher[-1], color="0.35", linestyle="--", linewidth=1.0,
                       label=f"teacher {name} ({teacher[-1]:.3f})")
            values.append(teacher[-1])
        if name == "R²" and values and min(values) < -1:
            ax.set_ylim(-1.05, max(1.0, max(values)) + 0.05)
            ax.text(0.01, 0.03, "values below -1 are off the axis", transform=ax.transAxes, fontsize=8, color="0.4")
        elif name == "accuracy" and values:
            ax.set_ylim(max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05) + 0.01)
        elif name == "MAE":
            _maybe_log(ax, values)
        _style_axes(ax, f"{name[0].upper()}{name[1:]} on {on}, every {report.config.get('eval_every', '?')} "
                        "epochs (never used for training)", ylabel, epochs)
    _layout(fig)
    return fig


def _generated_figure(plt, report: DistillReport, groups: Dict[str, List[str]]):
    history, epochs_run = report.history, _epochs(report)
    rows = [r for r in history if isinstance(r.get("class_histogram"), list) and sum(r["class_histogram"])]
    if rows:
        epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(rows)]
        classes = max(len(r["class_histogram"]) for r in rows)
        shares = [[(r["class_histogram"][c] if c < len(r["class_histogram"]) else 0) / sum(r["class_histogram"])
                   for r in rows] for c in range(classes)]
        fig, ax = plt.subplots(figsize=(9, 3.2))
        cmap = plt.get_cmap("tab10" if classes <= 10 else "tab20")
        if len(epochs) == 1:
            bottom = 0.0
            for c in range(classes):
                ax.bar(epochs, [shares[c][0]], bottom=bottom, color=cmap(c % cmap.N), label=f"class {c}", width=0.6)
                bottom += shares[c][0]
        else:
            ax.stackplot(epochs, shares, colors=[cmap(c % cmap.N) for c in range(classes)],
                         labels=[f"class {c}" for c in range(classes)], alpha=0.85)
        collapsed = [e for e, r in zip(epochs, rows) if r.get("collapsed")]
        for k, e in enumerate(collapsed):
            ax.axvspan(e - 0.5, e + 0.5, facecolor="none", edgecolor="red", hatch="///", linewidth=0,
                       label="collapsed epoch (one class)" if k == 0 else None)
        ax.set_ylim(0, 1)
        _style_axes(ax, "Teacher's predicted class on each epoch's generated graphs", "share of generated graphs",
                    epochs_run)
        _layout(fig)
        return fig
    if groups["outputs"]:
        fig, ax = plt.subplots(figsize=(9, 3.2))
        xs, mean = _series(history, "teacher_output_mean")
        _, std = _series(history, "teacher_output_std")
        ax.plot(xs, mean, color="tab:blue", linewidth=1.5, label="mean", **_marker(len(xs)))
        if len(std) == len(mean):
            ax.fill_between(xs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color="tab:blue", alpha=0.2, label="mean ± std")
        for key, style in (("teacher_output_max", "--"), ("teacher_output_min", ":")):
            x, y = _series(history, key)
            ax.plot(x, y, color="0.35", linestyle=style, linewidth=1.0, label=key.rsplit("_", 1)[1])
        _style_axes(ax, "Teacher's outputs on each epoch's generated graphs (a shrinking range is collapse)",
                    "teacher output", epochs_run)
        _layout(fig)
        return fig
    return None


def training_figures(report: DistillReport, num_eval: Optional[int] = None) -> List[Figure]:
    """The report's figures as PNG bytes: ``losses``, ``scores`` (with evaluation data) and ``generated``
    (online generators). Raises :class:`~dfkd.inspect.PlotUnavailableError` without matplotlib."""
    plt = require_matplotlib("drawing the report's training curves")
    groups = _history_columns(report)
    made = [
        ("losses", "Loss terms per epoch.", _loss_figure(plt, report, groups)),
        ("scores", "Student and teacher on the evaluation graphs (never used for training), per evaluated epoch.",
         _score_figure(plt, report, groups, num_eval)),
        ("generated", "What the teacher makes of the graphs the generator produced in each epoch.",
         _generated_figure(plt, report, groups)),
    ]
    figures = []
    for name, caption, fig in made:
        if fig is None:
            continue
        buffer = io.BytesIO()
        save_figure(fig, buffer, dpi=DPI)
        figures.append(Figure(name=name, caption=caption, png=buffer.getvalue()))
    return figures


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
