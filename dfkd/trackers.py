"""Experiment trackers: a distillation's numbers sent to the tools teams already use (optional extras).

``dfkd distill --log tensorboard:DIR`` / ``--log mlflow[:TRACKING_URI]`` (repeatable), or ``trackers=`` in
:func:`dfkd.distill_student`. A tracker receives the run's settings once (:meth:`Tracker.log_params`), every
epoch's row of the report (loss terms, evaluation metrics when real graphs are given, generator statistics) with
the wall time so far (:meth:`Tracker.log_metrics`), and the final figures (``final/...``). Trackers register by
name (``@register_tracker("tensorboard")``); a missing extra is a one-line error naming the ``pip install`` to run.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Dict, Optional

from dfkd.registry import Registry

TRACKERS: Registry[type] = Registry("tracker")


def register_tracker(name: str) -> Callable[[type], type]:
    """Class decorator that makes a tracker resolvable by ``name`` in :func:`make_tracker`."""
    return TRACKERS.register(name)


class Tracker:
    """Receives a run's settings and numbers; subclasses send them somewhere."""

    def log_params(self, params: Dict[str, Any]) -> None:
        """The run's settings (nested dicts flattened to ``a/b`` keys)."""

    def log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        """Numbers of one step (an epoch, or the final figures at the last one)."""

    def close(self) -> None:
        """Flush and finish the run."""


def numeric(row: Dict[str, Any], prefix: str = "") -> Dict[str, float]:
    """The finite numbers of a report row (lists such as class histograms and flags left out)."""
    return {f"{prefix}{k}": float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def flat(params: Dict[str, Any], prefix: str = "") -> Dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a/b": "1"}``: settings as the trackers' flat string parameters."""
    out: Dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def _require(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise ValueError(f"--log {extra} needs the {extra} extra: pip install 'dfkd[{extra}]'") from None


@register_tracker("tensorboard")
class TensorBoardTracker(Tracker):
    """Scalars in TensorBoard event files under ``target`` (default ``runs/``), settings as one text entry."""

    def __init__(self, target: Optional[str] = None):
        self.writer = _require("torch.utils.tensorboard", "tensorboard").SummaryWriter(target or "runs")

    def log_params(self, params: Dict[str, Any]) -> None:
        text = "\n".join(f"    {k} = {v}" for k, v in sorted(flat(params).items()))
        self.writer.add_text("settings", text)

    def log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


@register_tracker("mlflow")
class MLflowTracker(Tracker):
    """One MLflow run in experiment ``dfkd`` at tracking URI ``target`` (default: MLflow's own, e.g.
    ``MLFLOW_TRACKING_URI``); settings as parameters, numbers as metrics."""

    def __init__(self, target: Optional[str] = None, experiment: str = "dfkd"):
        tracking = _require("mlflow.tracking", "mlflow")
        self.client = tracking.MlflowClient(tracking_uri=target)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(experiment_id).info.run_id
        self._metric = _require("mlflow.entities", "mlflow").Metric

    def log_params(self, params: Dict[str, Any]) -> None:
        for key, value in flat(params).items():
            self.client.log_param(self.run_id, key, value[:6000])  # MLflow's limit on a parameter's length

    def log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        if metrics:
            self.client.log_batch(self.run_id, metrics=[self._metric(k, v, now, step) for k, v in metrics.items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def make_tracker(spec: str) -> Tracker:
    """``NAME[:TARGET]`` → a tracker: ``tensorboard:DIR``, ``mlflow``, ``mlflow:sqlite:///mlflow.db``."""
    name, _, target = spec.partition(":")
    return TRACKERS.get(name)(target or None)
