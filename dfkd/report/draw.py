"""The figures of a distillation report (matplotlib), as PNG bytes: :func:`training_figures`.

Loss terms per epoch, evaluation scores per epoch and, for online generators, what the teacher makes of each
epoch's generated graphs. They need matplotlib (``pip install 'dfkd[plot]'``).
"""
from __future__ import annotations

import dataclasses
import io
import logging
import math
import textwrap
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dfkd.distill.distiller import DistillReport
from dfkd.inspect import require_matplotlib, save_figure
from dfkd.report.collect import _epochs, _history_columns, _recipe_weights

logger = logging.getLogger(__name__)

DPI = 100
LOG_SPAN = 30.0  # a positive curve spanning more than this factor gets a log axis
# Titles of generator diagnostics that are not loss terms (generators' ``generator_step`` results).
GENERATOR_TITLES = {"teacher_logit_max": "generator: largest |teacher output| on its graphs"}
LEGEND_WIDTH = 30  # characters per legend line
# Every figure is 9 inches wide with its axes between these fractions (legends right of them): the
# epoch axes of a report's figures line up one above the other.
AXES_LEFT, AXES_RIGHT = 0.09, 0.74


@dataclasses.dataclass
class Figure:
    """A PNG figure of the report."""

    name: str
    caption: str
    png: bytes


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
