"""Distillation: sources, the distiller and the end-to-end API."""
from dfkd.distill.api import DistillResult, build_student, distill_student, make_generator
from dfkd.distill.distiller import DistillConfig, Distiller, DistillReport
from dfkd.distill.sources import GraphListSource, GraphSource, SyntheticSetSource

__all__ = [
    "DistillConfig", "DistillReport", "DistillResult", "Distiller", "GraphListSource", "GraphSource",
    "SyntheticSetSource", "build_student", "distill_student", "make_generator",
]
