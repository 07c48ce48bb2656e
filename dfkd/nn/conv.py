"""Message-passing layers that accept soft edge weights.

Edges follow PyG's ``source_to_target`` flow: ``edge_index[0]`` holds the
source node ``j``, ``edge_index[1]`` the target node ``i``; messages are
aggregated at ``i``. Every layer takes an optional ``edge_weight`` of shape
``[E]`` (values in ``[0, 1]``, differentiable) and gives exactly the unweighted
result when all weights are 1. In place of ``edge_index`` a layer also takes an
adjacency prepared by :func:`dfkd.ops.build_adjacency` (sparse scatter or dense
per-graph blocks, chosen by size and density), as PyG layers take a ``SparseTensor``.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from dfkd.ops.adjacency import Adjacency, as_adjacency

EdgeIndex = Union[Tensor, Adjacency]


class MessagePassingLayer(nn.Module):
    """Base of the layers below: stores the widths, resets children, prints ``Name(in, out)``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


class GINConv(MessagePassingLayer):
    r"""Graph isomorphism layer (Xu et al., ICLR 2019, Eq. 4.1) with edge weights.

    .. math::
        h_i' = \mathrm{MLP}\Big((1 + \epsilon)\, h_i + \sum_{j \in N(i)} w_{ji}\, h_j\Big)

    The MLP is ``Linear → BatchNorm → ReLU → Linear`` (BatchNorm optional).

    Args:
        in_channels (int): input width ``F_in``.
        out_channels (int): output width ``F_out``.
        batch_norm (bool): BatchNorm inside the MLP. (default: ``True``)
        train_eps (bool): learn :math:`\epsilon` instead of fixing it at 0. (default: ``False``)

    Shapes:
        x ``[N, F_in]``, edge_index ``[2, E]``, edge_weight ``[E]`` → ``[N, F_out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True, train_eps: bool = False):
        super().__init__(in_channels, out_channels)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, out_channels),
            nn.BatchNorm1d(out_channels) if batch_norm else nn.Identity(),
            nn.ReLU(),
            nn.Linear(out_channels, out_channels),
        )
        self.eps = nn.Parameter(torch.zeros(1), requires_grad=train_eps)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.eps.data.zero_()

    def forward(self, x: Tensor, edge_index: EdgeIndex, edge_weight: Optional[Tensor] = None) -> Tensor:
        agg = as_adjacency(edge_index, edge_weight, x.size(0)).propagate(x)
        return self.mlp((1 + self.eps) * x + agg)


class GCNConv(MessagePassingLayer):
    r"""Graph convolution (Kipf & Welling, ICLR 2017, Eq. 2) with edge weights.

    .. math::
        H' = \hat D^{-1/2} (\hat A) \hat D^{-1/2} (H W + b), \quad \hat A = A_w + I,
        \quad \hat D_{ii} = 1 + \sum_j w_{ji}

    With ``bias_after_propagation`` the bias is added to the propagated states instead,
    :math:`\hat D^{-1/2} \hat A \hat D^{-1/2} H W + b`, as PyTorch Geometric's ``GCNConv`` does.

    Shapes:
        x ``[N, F_in]``, edge_index ``[2, E]``, edge_weight ``[E]`` → ``[N, F_out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias_after_propagation: bool = False):
        super().__init__(in_channels, out_channels)
        self.lin = nn.Linear(in_channels, out_channels)
        self.bias_after_propagation = bias_after_propagation

    def forward(self, x: Tensor, edge_index: EdgeIndex, edge_weight: Optional[Tensor] = None) -> Tensor:
        after = self.bias_after_propagation
        h = nn.functional.linear(x, self.lin.weight) if after else self.lin(x)
        adj = as_adjacency(edge_index, edge_weight, x.size(0))
        inv_sqrt = (1.0 + adj.in_degree(h)).rsqrt().view(-1, 1)  # self-loop contributes 1 to the degree
        # sum_j d_i^-1/2 w_ji d_j^-1/2 h_j: the symmetric normalisation factors out of the sum.
        out = inv_sqrt * adj.propagate(h * inv_sqrt) + h * inv_sqrt * inv_sqrt
        return out + self.lin.bias if after else out


class SAGEConv(MessagePassingLayer):
    r"""GraphSAGE layer with weighted mean aggregation (Hamilton et al., NeurIPS 2017, Alg. 1).

    .. math::
        h_i' = W_1 h_i + W_2 \frac{\sum_{j} w_{ji} h_j}{\max(1, \sum_j w_{ji})}

    Shapes:
        x ``[N, F_in]``, edge_index ``[2, E]``, edge_weight ``[E]`` → ``[N, F_out]``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels)
        self.lin_self = nn.Linear(in_channels, out_channels)
        self.lin_neigh = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, edge_index: EdgeIndex, edge_weight: Optional[Tensor] = None) -> Tensor:
        adj = as_adjacency(edge_index, edge_weight, x.size(0))
        # Clamping at 1 keeps the weighted mean bounded when soft weights are tiny.
        mean = adj.propagate(x) / adj.in_degree(x).clamp(min=1.0).view(-1, 1)
        return self.lin_self(x) + self.lin_neigh(mean)


class NodeLinear(MessagePassingLayer):
    """A per-node linear layer that ignores the graph (the MLP baseline's 'conv')."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels)
        self.lin = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor, edge_index: EdgeIndex, edge_weight: Optional[Tensor] = None) -> Tensor:
        return self.lin(x)
