"""Distillation: sources, the distiller and the end-to-end API."""
from dfkd.distill.api import (DistillResult, build_student, compress, distill_student, make_generator,
                             preset_config)
from dfkd.distill.curriculum import CurriculumSource
from dfkd.distill.distributed import distill_distributed
from dfkd.distill.distiller import DistillConfig, Distiller, DistillReport
from dfkd.distill.sources import GraphListSource, GraphSource, OnlineSource, SyntheticSetSource

__all__ = [
    "CurriculumSource", "DistillConfig", "DistillReport", "DistillResult", "Distiller", "GraphListSource",
    "GraphSource", "OnlineSource", "SyntheticSetSource", "build_student", "compress", "distill_distributed",
    "distill_student", "make_generator", "preset_config",
]
