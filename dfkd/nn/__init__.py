"""Graph neural network zoo on scatter kernels."""
from dfkd.nn.conv import GCNConv, GINConv, NodeLinear, SAGEConv
from dfkd.nn.models import GCN, GIN, MLP, GraphClassifier, GraphSAGE, ModelOutput
from dfkd.nn.registry import build_model, list_models, parse_arch, register_model
from dfkd.nn.utils import accepts_edge_weight, call_model, count_parameters, forward_batch, freeze

__all__ = [
    "GCN", "GCNConv", "GIN", "GINConv", "GraphClassifier", "GraphSAGE", "MLP", "ModelOutput",
    "NodeLinear", "SAGEConv", "accepts_edge_weight", "build_model", "call_model", "count_parameters", "forward_batch",
    "freeze", "list_models",
    "parse_arch", "register_model",
]
