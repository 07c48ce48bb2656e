"""dfkd: data-free knowledge distillation for graph neural networks.

Public API::

    import dfkd
    teacher = dfkd.load_model("teacher.pt")
    model = dfkd.build_model("gin-2-32", in_channels=7, out_channels=2)
"""
from dfkd.checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_model, save_model
from dfkd.config import FeatureSpec, GraphSizeStats, ModelConfig
from dfkd.data import load_dataset
from dfkd.distill import DistillConfig, Distiller, DistillReport, compress, distill_student, preset_config
from dfkd.evaluate import EvalReport, evaluate
from dfkd.nn import build_model, list_models
from dfkd.train import TrainConfig, train_model, train_teacher
from dfkd.version import __version__

__all__ = [
    "Checkpoint", "CheckpointError", "DistillConfig", "DistillReport", "Distiller", "distill_student", "EvalReport", "FeatureSpec", "GraphSizeStats", "ModelConfig", "TrainConfig",
    "__version__", "build_model", "compress", "evaluate", "list_models", "load_checkpoint", "load_dataset",
    "load_model", "preset_config", "save_model", "train_model", "train_teacher",
]
