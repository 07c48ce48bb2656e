"""Statistics and pictures of graph sets: synthetic graphs next to the real ones they stand in for.

:func:`graph_statistics` works on a :class:`~dfkd.generators.SyntheticGraphSet` or on any sequence of
PyG ``Data`` (a dataset); :func:`format_statistics` prints one or more of them side by side;
:func:`draw_examples` draws a grid of example graphs per class (needs matplotlib:
``pip install 'dfkd[plot]'``)::

    from dfkd.generators import SyntheticGraphSet
    from dfkd.inspect import graph_statistics, format_statistics

    synth = graph_statistics(SyntheticGraphSet.load("synth.pt"))
    real = graph_statistics(dfkd.load_dataset("MUTAG"))
    print(format_statistics({"synthetic": synth, "MUTAG": real}))
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from dfkd.config import FeatureSpec

logger = logging.getLogger(__name__)

PLOT_HINT = "pip install 'dfkd[plot]'"
DEGREE_ROWS = 8  # the table shows degrees 0..7 and ">= 8"; the dict keeps the full histogram


class PlotUnavailableError(ImportError):
    """matplotlib is missing; the message names the pip command."""


# --------------------------------------------------------------------------------------------
# graphs as plain records
# --------------------------------------------------------------------------------------------
def _records(graphs: Any) -> Tuple[List[Tuple[int, Tensor, Tensor]], Optional[Tensor], Optional[Tensor]]:
    """``([(num_nodes, edge_index, x)], labels [G] or None, teacher_logits [G, C] or None)``."""
    from dfkd.generators.synthetic import SyntheticGraphSet

    if isinstance(graphs, SyntheticGraphSet):
        out = []
        for g in range(len(graphs)):
            n0, n1 = int(graphs.node_ptr[g]), int(graphs.node_ptr[g + 1])
            e0, e1 = int(graphs.edge_ptr[g]), int(graphs.edge_ptr[g + 1])
            out.append((n1 - n0, graphs.edge_index[:, e0:e1] - n0, graphs.x[n0:n1]))
        labels = graphs.target if graphs.target.dim() == 1 else None
        return out, labels, graphs.teacher_logits
    out, labels, logits = [], [], []
    for data in graphs:
        n = int(data.num_nodes)
        out.append((n, data.edge_index, data.x))
        y = getattr(data, "y", None)
        labels.append(int(y.view(-1)[0]) if y is not None and y.numel() == 1 else None)
        t = getattr(data, "teacher_logits", None)
        logits.append(t.view(-1) if t is not None else None)
    y_all = torch.tensor(labels) if labels and all(v is not None for v in labels) else None
    t_all = torch.stack(logits) if logits and all(v is not None for v in logits) else None
    return out, y_all, t_all


def _to_networkx(num_nodes: int, edge_index: Tensor):
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(num_nodes))
    graph.add_edges_from((a, b) for a, b in edge_index.t().tolist() if a != b)
    return graph


def _summary(values: Sequence[float]) -> Dict[str, float]:
    t = torch.tensor(list(values), dtype=torch.float64)
    if t.numel() == 0:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"mean": float(t.mean()), "std": float(t.std(unbiased=False)), "min": float(t.min()), "max": float(t.max())}


def node_type_labels(spec: Optional[FeatureSpec], dim: int) -> List[str]:
    """A short label per feature column: ``tag 3`` (one-hot of a raw tag), ``deg 2`` (degree one-hot)
    or ``type 0``."""
    if spec is not None and spec.encoding == "degree":
        return [f"deg {i}" if i < dim - 1 else f"deg >={i}" for i in range(dim)]
    if spec is not None and spec.categories and len(spec.categories) == dim:
        return [f"tag {c}" for c in spec.categories]
    return [f"type {i}" for i in range(dim)]


def _is_categorical(spec: Optional[FeatureSpec], x: Tensor) -> bool:
    if spec is not None:
        return spec.categorical
    # No spec: one-hot rows are categorical.
    return x.numel() > 0 and bool(((x == 0) | (x == 1)).all()) and bool((x.sum(-1) == 1).all())


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
def graph_statistics(graphs: Any, feature_spec: Optional[FeatureSpec] = None,
                     teacher_logits: Optional[Tensor] = None) -> Dict[str, Any]:
    """Structure, node-type and class statistics of a set of graphs.

    Args:
        graphs: a :class:`~dfkd.generators.SyntheticGraphSet`, a dfkd/PyG dataset or a list of ``Data``.
        feature_spec: node-feature encoding (default: the set's or dataset's own ``feature_spec``; without
            one, one-hot rows count as node types).
        teacher_logits: ``[G, C]`` teacher outputs on these graphs (default: the set's own, if stored).

    Returns:
        A dict of plain Python numbers (JSON-ready): ``graphs``; ``nodes``, ``edges`` (undirected),
        ``density`` (:math:`2m / n(n-1)` per graph) and ``clustering`` (networkx average clustering
        per graph) as ``{mean, std, min, max}`` over graphs; ``degree`` with ``mean`` and ``var``
        over all nodes and ``histogram`` (fraction of nodes of degree 0, 1, ...); ``node_types``
        (``labels`` and ``fractions`` of nodes per feature column, ``None`` for continuous
        features); ``classes``: ``labels`` (graphs per class label or generation target) and, when
        teacher logits exist, ``predicted`` (graphs per class the teacher predicts),
        ``confidence`` (mean top probability), ``confidence_per_class`` (mean top probability of
        the graphs predicted as each class, ``None`` for a class never predicted) and
        ``agreement`` (predicted class = label).
    """
    import networkx as nx

    spec = feature_spec if feature_spec is not None else getattr(graphs, "feature_spec", None)
    records, labels, logits = _records(graphs)
    if teacher_logits is not None:
        logits = teacher_logits
    if not records:
        raise ValueError("no graphs to describe: the set is empty")
    if logits is not None and logits.size(0) != len(records):
        raise ValueError(f"teacher_logits has {logits.size(0)} rows for {len(records)} graphs")

    nodes, edges, density, clustering, degrees = [], [], [], [], []
    type_counts: Optional[Tensor] = None
    dim = records[0][2].size(1) if records[0][2] is not None and records[0][2].dim() == 2 else 0
    categorical = dim > 0 and _is_categorical(spec, torch.cat([r[2] for r in records[:64]]))
    for n, edge_index, x in records:
        graph = _to_networkx(n, edge_index)
        nodes.append(n)
        edges.append(graph.number_of_edges())
        density.append(nx.density(graph) if n > 1 else 0.0)
        clustering.append(nx.average_clustering(graph) if n > 0 else 0.0)
        degrees.extend(d for _, d in graph.degree())
        if categorical and x is not None and x.numel():
            counts = torch.bincount(x.argmax(-1), minlength=dim).double()
            type_counts = counts if type_counts is None else type_counts + counts

    deg = torch.tensor(degrees, dtype=torch.float64)
    hist = torch.bincount(deg.long(), minlength=1).double() if deg.numel() else torch.zeros(1, dtype=torch.float64)
    stats: Dict[str, Any] = {
        "graphs": len(records),
        "nodes": _summary(nodes),
        "edges": _summary(edges),
        "density": _summary(density),
        "clustering": _summary(clustering),
        "degree": {
            "mean": float(deg.mean()) if deg.numel() else 0.0,
            "var": float(deg.var(unbiased=False)) if deg.numel() else 0.0,
            "histogram": (hist / max(1, deg.numel())).tolist(),
        },
        "node_types": None,
        "classes": None,
    }
    if type_counts is not None:
        stats["node_types"] = {"labels": node_type_labels(spec, dim),
                               "fractions": (type_counts / type_counts.sum().clamp(min=1)).tolist()}
    stats["classes"] = _class_statistics(labels, logits)
    return stats


def _class_statistics(labels: Optional[Tensor], logits: Optional[Tensor]) -> Optional[Dict[str, Any]]:
    if labels is None and logits is None:
        return None
    num_classes = 0
    if logits is not None:
        num_classes = logits.size(1)
    if labels is not None and labels.numel():
        num_classes = max(num_classes, int(labels.max()) + 1)
    out: Dict[str, Any] = {"num_classes": num_classes}
    if labels is not None:
        out["labels"] = torch.bincount(labels.long(), minlength=num_classes).tolist()
    if logits is not None:
        probs = torch.softmax(logits.double(), -1)
        top, pred = probs.max(-1)
        out["predicted"] = torch.bincount(pred, minlength=num_classes).tolist()
        out["confidence"] = float(top.mean())
        out["confidence_per_class"] = [float(top[pred == c].mean()) if bool((pred == c).any()) else None
                                       for c in range(num_classes)]
        if labels is not None:
            out["agreement"] = float((pred == labels.long()).double().mean())
    return out


def teacher_outputs(model: torch.nn.Module, graphs: Sequence, device: str = "cpu") -> Tensor:
    """``[G, C]`` outputs of ``model`` on ``graphs`` (a SyntheticGraphSet or a list of ``Data``)."""
    from dfkd.evaluate import predict
    from dfkd.generators.synthetic import SyntheticGraphSet

    data = graphs.to_data_list() if isinstance(graphs, SyntheticGraphSet) else list(graphs)
    return predict(model, data, device=device)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def _fmt(value: Optional[float], digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _table_rows(stats: Dict[str, Any], degree_rows: int) -> Dict[str, str]:
    rows: Dict[str, str] = {"graphs": str(stats["graphs"])}
    for key, digits in (("nodes", 1), ("edges", 1), ("density", 3), ("clustering", 3)):
        s = stats[key]
        span = f" [{s['min']:.0f}-{s['max']:.0f}]" if key in ("nodes", "edges") else ""
        rows[f"{key} mean±std"] = f"{_fmt(s['mean'], digits)} ± {_fmt(s['std'], digits)}{span}"
    rows["degree mean / var"] = f"{_fmt(stats['degree']['mean'], 2)} / {_fmt(stats['degree']['var'], 2)}"
    hist = stats["degree"]["histogram"]
    for d in range(min(degree_rows, DEGREE_ROWS)):
        rows[f"  degree {d}"] = _fmt(hist[d] if d < len(hist) else 0.0)
    if degree_rows > DEGREE_ROWS:
        rows[f"  degree >={DEGREE_ROWS}"] = _fmt(sum(hist[DEGREE_ROWS:]))
    types = stats.get("node_types")
    if types:
        for label, frac in zip(types["labels"], types["fractions"]):
            rows[f"  node {label}"] = _fmt(frac)
    classes = stats.get("classes") or {}
    for c in range(classes.get("num_classes", 0)):
        if "labels" in classes:
            rows[f"class {c}: label or target"] = str(classes["labels"][c])
        if "predicted" in classes:
            rows[f"class {c}: teacher predicts"] = str(classes["predicted"][c])
            rows[f"class {c}: confidence"] = _fmt(classes["confidence_per_class"][c])
    if "confidence" in classes:
        rows["teacher confidence"] = _fmt(classes["confidence"])
    if "agreement" in classes:
        rows["teacher agrees with label"] = _fmt(classes["agreement"])
    return rows


def format_statistics(columns: Mapping[str, Dict[str, Any]]) -> str:
    """A compact text table of one or more :func:`graph_statistics` results, one column each.

    Rows that only some columns have (node types, classes) show ``-`` in the others.
    """
    if not columns:
        raise ValueError("nothing to format: give at least one column of statistics")
    # Degree rows up to the largest degree any column has (degrees >= DEGREE_ROWS share one row).
    degree_rows = max(len(stats["degree"]["histogram"]) for stats in columns.values())
    tables = {name: _table_rows(stats, degree_rows) for name, stats in columns.items()}
    keys: List[str] = []
    for rows in tables.values():
        keys.extend(k for k in rows if k not in keys)
    # Keep the structural rows first, then node types, then classes, in first-seen order.
    order = {"  node": 1, "class": 2, "teacher": 2}
    keys.sort(key=lambda k: next((v for p, v in order.items() if k.startswith(p)), 0))
    width = max(len(k) for k in keys)
    cells = {name: [rows.get(k, "-") for k in keys] for name, rows in tables.items()}
    widths = {name: max(len(name), *(len(c) for c in col)) for name, col in cells.items()}
    lines = ["  ".join([" " * width] + [name.rjust(widths[name]) for name in tables])]
    for i, key in enumerate(keys):
        lines.append("  ".join([key.ljust(width)] + [cells[name][i].rjust(widths[name]) for name in tables]))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the picture
# --------------------------------------------------------------------------------------------
def require_matplotlib(purpose: str = "drawing graphs"):
    """Import matplotlib with the Agg backend, or raise :class:`PlotUnavailableError` naming the fix
    (``purpose`` says what needs it, e.g. ``"drawing training curves"``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailableError(f"{purpose} needs matplotlib, which is not installed: {PLOT_HINT}") from None
    return plt


def save_figure(fig, target: Any, dpi: int = 110) -> None:
    """Write a matplotlib figure as PNG to ``target`` (a path, its folder created, or a binary file
    object) and close it."""
    import matplotlib.pyplot as plt

    if isinstance(target, (str, os.PathLike)):
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    try:
        fig.savefig(target, dpi=dpi, format="png")
    finally:
        plt.close(fig)


def _layout(graph, seed: int) -> Dict[int, Any]:
    """Force-directed positions; networkx needs scipy for graphs above 500 nodes, so without it those
    are drawn on a circle (said once in the log)."""
    import networkx as nx

    try:
        return nx.spring_layout(graph, seed=seed)
    except ImportError:
        logger.info("graph of %d nodes drawn on a circle: networkx's force layout needs scipy above 500 nodes "
                    "(pip install scipy)", graph.number_of_nodes())
        return nx.circular_layout(graph)


def _class_of(labels: Optional[Tensor], logits: Optional[Tensor]) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """``(class per graph, confidence per graph)``: the teacher's prediction when known, else the label."""
    if logits is not None:
        top, pred = torch.softmax(logits.double(), -1).max(-1)
        return pred, top
    return labels, None


def draw_examples(sources: Mapping[str, Any], path: str, per_class: int = 4, seed: int = 0,
                  feature_spec: Optional[FeatureSpec] = None, teacher_logits: Optional[Mapping[str, Tensor]] = None,
                  dpi: int = 110) -> str:
    """Draw ``per_class`` example graphs of every class from each source into a PNG grid.

    One row per class, one block of ``per_class`` columns per source (e.g. ``{"synthetic": set,
    "MUTAG": dataset}``). A graph's class is the teacher's prediction when its logits are known,
    else its label. Nodes are coloured by type (feature column), with a legend of the types drawn.

    Returns ``path``. Raises :class:`PlotUnavailableError` without matplotlib.
    """
    import networkx as nx

    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    plt = require_matplotlib()
    from matplotlib.lines import Line2D

    teacher_logits = dict(teacher_logits or {})
    picked: Dict[str, Dict[int, List[Tuple[int, Optional[float]]]]] = {}
    records: Dict[str, list] = {}
    num_classes, dim = 0, 0
    how: Dict[str, str] = {}
    spec = feature_spec
    for name, graphs in sources.items():
        recs, labels, logits = _records(graphs)
        logits = teacher_logits.get(name, logits)
        how[name] = "teacher's prediction (p: its confidence)" if logits is not None else "label"
        spec = spec if spec is not None else getattr(graphs, "feature_spec", None)
        cls, conf = _class_of(labels, logits)
        if cls is None:
            cls = torch.zeros(len(recs), dtype=torch.long)
        num_classes = max(num_classes, int(cls.max()) + 1 if cls.numel() else 0, logits.size(1) if logits is not None else 0)
        dim = max(dim, recs[0][2].size(1) if recs else 0)
        order = torch.randperm(len(recs), generator=torch.Generator().manual_seed(seed)).tolist()
        by_class: Dict[int, List[Tuple[int, Optional[float]]]] = {}
        for g in order:
            c = int(cls[g])
            if len(by_class.setdefault(c, [])) < per_class:
                by_class[c].append((g, None if conf is None else float(conf[g])))
        picked[name], records[name] = by_class, recs
    if num_classes == 0:
        raise ValueError("no graphs to draw")

    labels_txt = node_type_labels(spec, dim)
    first = next((r[0][2] for r in records.values() if r), None)
    typed = dim > 0 and first is not None and _is_categorical(spec, first)  # colour by type only if one-hot
    # The types drawn, most frequent first, get the most distinct colours (tab10, then tab20's light ones).
    counts: Dict[int, int] = {}
    if typed:
        for name, by_class in picked.items():
            for examples in by_class.values():
                for g, _ in examples:
                    x = records[name][g][2]
                    for t in (x.argmax(-1).tolist() if x is not None and x.numel() else []):
                        counts[t] = counts.get(t, 0) + 1
    palette = [plt.get_cmap("tab10")(i) for i in range(10)] + [plt.get_cmap("tab20")(2 * i + 1) for i in range(10)]
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    colour_of = {t: palette[i % len(palette)] for i, t in enumerate(ranked)}
    names = list(sources)
    cols = per_class * len(names)
    fig, axes = plt.subplots(num_classes, cols, figsize=(2.3 * cols, 2.5 * num_classes + 0.9), squeeze=False)
    for c in range(num_classes):
        for s, name in enumerate(names):
            examples = picked[name].get(c, [])
            for k in range(per_class):
                ax = axes[c][s * per_class + k]
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ax.spines.values():
                    side.set_visible(False)
                if k >= len(examples):
                    ax.text(0.5, 0.5, "(none)" if k == 0 else "", ha="center", va="center", color="0.6",
                            transform=ax.transAxes)
                    continue
                g, conf = examples[k]
                n, edge_index, x = records[name][g]
                graph = _to_networkx(n, edge_index)
                types = x.argmax(-1).tolist() if typed and x is not None and x.numel() else []
                pos = _layout(graph, seed) if n else {}
                nx.draw_networkx_edges(graph, pos, ax=ax, width=0.9, edge_color="0.45")
                nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=max(12, 160 - 4 * n),
                                       node_color=[colour_of[t] for t in types] if types else "0.75",
                                       edgecolors="0.2", linewidths=0.4)
                title = f"{name} #{g}"
                subtitle = f"{n} nodes, {graph.number_of_edges()} edges"
                if conf is not None:
                    subtitle += f", p={conf:.2f}"
                ax.set_title(f"{title}\n{subtitle}", fontsize=8)
        axes[c][0].set_ylabel(f"class {c}", fontsize=12, fontweight="bold", rotation=90, labelpad=8)
    if len(set(how.values())) == 1:
        what = f"class: {next(iter(how.values()))}"
    else:
        what = "; ".join(f"{name}: class = {kind}" for name, kind in how.items())
    fig.suptitle(f"Example graphs per class\n{what}", fontsize=11)
    handles = [Line2D([0], [0], marker="o", linestyle="", markerfacecolor=colour_of[t], markeredgecolor="0.2",
                      markersize=8, label=labels_txt[t] if t < len(labels_txt) else f"type {t}")
               for t in sorted(colour_of)]
    legend_rows = -(-len(handles) // 10)
    bottom = (0.35 + 0.25 * legend_rows) / fig.get_figheight() if handles else 0.0  # inches -> figure fraction
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 10), fontsize=9,
                   title="node type", title_fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 0.94))
    for s in range(1, len(names)):  # a rule between the blocks of two sources
        left, right = axes[0][s * per_class - 1].get_position(), axes[0][s * per_class].get_position()
        xpos = (left.x1 + right.x0) / 2
        fig.add_artist(Line2D([xpos, xpos], [axes[-1][0].get_position().y0, axes[0][0].get_position().y1 + 0.03],
                              transform=fig.transFigure, color="0.6", linewidth=1.0, linestyle="--"))
    save_figure(fig, path, dpi=dpi)
    logger.info("drew %d classes x %d examples per source into %s", num_classes, per_class, path)
    return path
