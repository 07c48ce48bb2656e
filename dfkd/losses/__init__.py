"""Loss functions: distillation objectives (registry) and data-free priors."""
from dfkd.losses.bn import BN_LOSSES, BatchNormStatsLoss, first_batchnorm
from dfkd.losses.logits import (
    kl_divergence, mean_absolute_error, mean_squared_error, per_graph_disagreement, probability_absolute_error,
)
from dfkd.losses.conditional import attention_transfer, node_attention, preset_label_cross_entropy
from dfkd.losses.representation import (
    AdversarialTemperatureKL, GraphContrastiveRepresentationLoss, global_structure_preserving, graph_relation,
    local_structure_preserving, reverse_gradient,
)
from dfkd.losses.registry import (
    LOSS_BUILD_ARGUMENTS, build_loss, get_loss, is_stateful_loss, list_losses, parse_recipe, register_loss,
)

__all__ = [
    "AdversarialTemperatureKL", "BN_LOSSES", "BatchNormStatsLoss", "GraphContrastiveRepresentationLoss",
    "LOSS_BUILD_ARGUMENTS", "attention_transfer", "build_loss", "first_batchnorm", "get_loss",
    "global_structure_preserving", "graph_relation", "is_stateful_loss", "kl_divergence", "list_losses",
    "local_structure_preserving", "mean_absolute_error", "mean_squared_error", "node_attention", "parse_recipe",
    "per_graph_disagreement",
    "preset_label_cross_entropy", "probability_absolute_error", "register_loss", "reverse_gradient",
]
