"""Graph neural network zoo on scatter kernels."""
from dfkd.nn.conv import GCNConv, GINConv, NodeLinear, SAGEConv
from dfkd.nn.models import GCN, GIN, MLP, GraphClassifier, GraphSAGE, ModelOutput
from dfkd.nn.registry import build_model, list_models, parse_arch, register_model
from dfkd.nn.utils import count_parameters, forward_batch

__all__ = [
    "GCN", "GCNConv", "GIN", "GINConv", "GraphClassifier", "GraphSAGE", "MLP", "ModelOutput",
    "NodeLinear", "SAGEConv", "build_model", "count_parameters", "forward_batch", "list_models",
    "parse_arch", "register_model",
]
