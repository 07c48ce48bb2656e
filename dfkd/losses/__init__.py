"""Loss functions: distillation objectives (registry) and data-free priors."""
from dfkd.losses.bn import BN_LOSSES, BatchNormStatsLoss, first_batchnorm
from dfkd.losses.logits import kl_divergence, mean_absolute_error, mean_squared_error, probability_absolute_error
from dfkd.losses.conditional import attention_transfer, node_attention, preset_label_cross_entropy
from dfkd.losses.registry import get_loss, list_losses, parse_recipe, register_loss

__all__ = [
    "BN_LOSSES", "BatchNormStatsLoss", "attention_transfer", "node_attention", "preset_label_cross_entropy",
    "probability_absolute_error", "first_batchnorm", "get_loss", "kl_divergence", "list_losses", "mean_absolute_error",
    "mean_squared_error", "parse_recipe", "register_loss",
]
