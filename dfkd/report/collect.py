"""Reading a run's report and gathering the facts a distillation report shows.

:func:`read_report` loads the JSON a run wrote and :func:`find_run_models` finds its checkpoints;
:func:`measure_models` gives the teacher's and the student's size, weights and latency (:class:`ModelFacts`) and
the evaluation scores. The helpers below them sort and read the run's per-epoch history for the figures
(:mod:`dfkd.report.draw`) and the tables (:mod:`dfkd.report.render`).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from dfkd.distill.distiller import DistillReport
from dfkd.evaluate import CLASSIFICATION_SCORES, REGRESSION_SCORES

logger = logging.getLogger(__name__)

OUTPUT_KEYS = ("teacher_output_mean", "teacher_output_std", "teacher_output_min", "teacher_output_max")
LATENCY_GRAPHS = 32  # random graphs to time the models on when no evaluation graphs are given

ModelLike = Union[None, str, nn.Module, Any]  # a path, a module or a dfkd Checkpoint


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
                       "measured; give it with --%s (%s= in Python)", role,
                       ", ".join(dict.fromkeys(tried)) or "nothing recorded", role, role)
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


# --------------------------------------------------------------------------------------------
# the run's history
# --------------------------------------------------------------------------------------------
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


def _epochs(report: DistillReport) -> int:
    last = report.history[-1].get("epoch", len(report.history)) if report.history else 0
    return max(int(report.epochs_run or 0), int(last or 0))

