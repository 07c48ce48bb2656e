"""Graph neural network zoo on scatter kernels."""
from dfkd.nn.conv import GCNConv, GINConv, NodeLinear, SAGEConv
from dfkd.nn.encodings import degree_encoding, random_walk_pe, structural_encoding, structural_encoding_dim
from dfkd.nn.models import GCN, GIN, MLP, GraphClassifier, GraphSAGE, MLPWithEncodings, ModelOutput
from dfkd.nn.precision import PRECISIONS, get_precision, set_precision, use_precision
from dfkd.nn.registry import build_model, list_models, parse_arch, register_model
from dfkd.nn.utils import (accepts_edge_weight, call_model, count_parameters, eval_mode, forward_batch, freeze,
                           select_graphs)

__all__ = [
    "GCN", "GCNConv", "GIN", "GINConv", "GraphClassifier", "GraphSAGE", "MLP", "MLPWithEncodings", "ModelOutput",
    "NodeLinear", "PRECISIONS", "SAGEConv", "accepts_edge_weight", "build_model", "call_model", "count_parameters",
    "degree_encoding", "eval_mode", "forward_batch", "freeze", "get_precision", "list_models", "select_graphs",
    "parse_arch", "random_walk_pe", "register_model", "set_precision", "structural_encoding",
    "structural_encoding_dim", "use_precision",
]
