r"""Student initialised from the teacher's own weights: its first layers, narrowed to their busiest channels.

A data-free student learns the teacher's function where the synthetic graphs show it and extrapolates to
the real graphs it never sees; the teacher's own weights already compute that function *on the real
graphs*, so a student of the teacher's family starts from them (as DistilBERT starts from every other layer
of BERT, Sanh et al. 2019), and distillation only has to repair what the narrowing removed.

A student of :math:`L_S` layers of width :math:`h` takes the teacher's first :math:`L_S` layers of width
:math:`H \ge h` (its layers past :math:`L_S` are dropped; with ``jk="cat"`` the teacher's prediction is a sum
of per-layer terms :math:`\sum_l W_l\,\mathrm{pool}(h_l)`, Xu et al. 2019 Eq. 4.2, so those layers' terms
go and the rest stay; with ``jk="last"`` the head reads the last kept layer as it read the teacher's last).
Of each layer it keeps the :math:`h` output channels that carry most, scored from
the weights alone:

.. math::
    s_c = \mathbb{E}[\mathrm{ReLU}(z_c)] \Big( \frac{\|W^{head}_{:,c}\|}{\overline{\|W^{head}\|}}
          + \frac{\|W^{next}_{:,c}\|}{\overline{\|W^{next}\|}} \Big),
    \quad z_c \sim N(\beta_c, \gamma_c^2),

the expected activation after the layer's BatchNorm (affine :math:`\gamma, \beta`) and ReLU, times how much
the head and the next kept layer read the channel; a GIN layer's inner MLP channels are scored the same way
by its second linear layer. Every kept weight, bias and BatchNorm statistic is copied as it is.

The BatchNorm layers then keep the teacher's running statistics throughout distillation
(:func:`freeze_batch_norm`): they describe the real graphs, which the synthetic batches do not, so a student
that normalised by its synthetic batches would be calibrated to the wrong graphs; and the student trains at Adam
3e-3 (:data:`INHERITED_LR`), not 1e-2, which trains the inherited start away. Teacher only, on the leaderboard's
GIN and GCN pairs (30 runs, seeds 0-2), agreement with the teacher on its fitting graphs +0.014 and on its
validation graphs +0.025 against students initialised at random (IMDB-B GCN +0.074, NCI1 +0.03; MUTAG and PTC
-0.01); at 1e-2, -0.089 (seed 0); with statistics from the synthetic batches the gain went
(``benchmarks/results/gap_analysis.md``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from dfkd.nn.conv import GCNConv, GINConv, NodeLinear, SAGEConv
from dfkd.nn.models import GraphClassifier, MLPWithEncodings

INHERITED_LR = 3e-3  # Adam learning rate of an inherited student (DistillConfig.lr=None)
RANDOM_INIT_LR = 1e-2  # GFKD's, for a student initialised at random


def relu_mean(norm: nn.Module, width: int) -> Tensor:
    r"""``[C]`` :math:`\mathbb{E}[\mathrm{ReLU}(z)]` for :math:`z \sim N(\beta, \gamma^2)`, the output of a
    BatchNorm layer's affine map: :math:`|\gamma|\varphi(\beta/|\gamma|) + \beta\Phi(\beta/|\gamma|)`
    (ones without BatchNorm: nothing tells the channels apart)."""
    if not isinstance(norm, nn.BatchNorm1d) or not norm.affine:
        return torch.ones(width)
    gamma, beta = norm.weight.detach().abs().clamp_min(1e-6), norm.bias.detach()
    z = beta / gamma
    return gamma * torch.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi) + beta * 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def _busiest(score: Tensor, k: int) -> Tensor:
    """``[k]`` indices of the ``k`` highest scores, in increasing order (ties: the lower index)."""
    order = torch.sort(score, descending=True, stable=True).indices[:k]
    return torch.sort(order).values


def _relative(norms: Tensor) -> Tensor:
    return norms / norms.mean().clamp_min(1e-12)


def _linears(conv: nn.Module):
    """``(first linear layers reading the layer's input, [inner BatchNorm, second linear] or None)``."""
    if isinstance(conv, GINConv):
        return [conv.mlp[0]], (conv.mlp[1], conv.mlp[3])
    if isinstance(conv, SAGEConv):
        return [conv.lin_self, conv.lin_neigh], None
    return [conv.lin], None  # GCNConv, NodeLinear


def why_not_inheritable(student: nn.Module, teacher: nn.Module) -> Optional[str]:
    """Why ``student`` cannot start from ``teacher``'s weights, or ``None`` when it can: both dfkd
    classifiers of one family (GIN, GCN, GraphSAGE, MLP), the same readout, normalisation, bias placement, input
    and output widths, no residual connections, and the student no deeper or wider than the teacher."""
    if not isinstance(student, GraphClassifier) or not isinstance(teacher, GraphClassifier):
        return "the teacher or the student is not a dfkd zoo model"
    if type(student) is not type(teacher) or isinstance(student, MLPWithEncodings):
        return f"the student ({type(student).__name__}) is not of the teacher's family ({type(teacher).__name__})"
    if not isinstance(student.convs[0], (GINConv, GCNConv, SAGEConv, NodeLinear)):
        return f"its layers ({type(student.convs[0]).__name__}) have no channel map"
    s, t = student.config, teacher.config
    for field in ("in_channels", "out_channels", "pool", "jk", "batch_norm", "bias_after_propagation"):
        if getattr(s, field) != getattr(t, field):
            return f"{field} differs ({getattr(s, field)} against the teacher's {getattr(t, field)})"
    if s.residual or t.residual:
        return "residual connections tie every layer's channels together"
    if s.num_layers > t.num_layers or s.hidden > t.hidden:
        return (f"the student ({s.num_layers} layers of {s.hidden}) is deeper or wider than the teacher "
                f"({t.num_layers} of {t.hidden})")
    return None


@torch.no_grad()
def inherit_from_teacher(student: GraphClassifier, teacher: GraphClassifier) -> str:
    """Copy into ``student`` the teacher's first layers, narrowed to their busiest channels (module
    docstring); check :func:`why_not_inheritable` first. Returns a one-line description."""
    reason = why_not_inheritable(student, teacher)
    if reason is not None:
        raise ValueError(f"the student cannot start from the teacher's weights: {reason}")
    s, t = student.config, teacher.config
    width, h, first = t.hidden, s.hidden, t.in_channels
    cat, device = t.jk == "cat", teacher.head.weight.device
    previous = torch.arange(first, device=device)  # input channels of the current layer, among the teacher's
    for layer in range(s.num_layers):
        t_conv, s_conv = teacher.convs[layer], student.convs[layer]
        head = teacher.head.weight[:, first + layer * width: first + (layer + 1) * width] if cat else None
        use = _relative(head.norm(dim=0)) if head is not None else torch.zeros(width, device=device)
        if layer + 1 < s.num_layers:  # the next kept layer reads it
            use = use + _relative(sum(lin.weight.norm(dim=0) for lin in _linears(teacher.convs[layer + 1])[0]))
        elif not cat:  # the last kept layer feeds the head
            use = use + _relative(teacher.head.weight.norm(dim=0))
        kept = _busiest(relu_mean(teacher.norms[layer], width).to(device) * use, h)
        firsts, inner = _linears(t_conv)
        rows = kept
        if inner is not None:  # GIN: the inner MLP's channels, scored by the second linear layer
            t_norm, t_second = inner
            rows = _busiest(relu_mean(t_norm, width).to(device) * t_second.weight[kept].norm(dim=0), h)
            s_norm, s_second = _linears(s_conv)[1]
            _copy_norm(s_norm, t_norm, rows)
            s_second.weight.copy_(t_second.weight[kept][:, rows])
            s_second.bias.copy_(t_second.bias[kept])
            s_conv.eps.copy_(t_conv.eps)
        for s_lin, t_lin in zip(_linears(s_conv)[0], firsts):
            s_lin.weight.copy_(t_lin.weight[rows][:, previous])
            if t_lin.bias is not None:
                s_lin.bias.copy_(t_lin.bias[rows])
        _copy_norm(student.norms[layer], teacher.norms[layer], kept)
        if cat:
            student.head.weight[:, first + layer * h: first + (layer + 1) * h].copy_(head[:, kept])
        previous = kept
    if cat:  # the pooled input's term
        student.head.weight[:, :first].copy_(teacher.head.weight[:, :first])
    else:
        student.head.weight.copy_(teacher.head.weight[:, previous])
    student.head.bias.copy_(teacher.head.bias)
    return f"the teacher's first {s.num_layers} of {t.num_layers} layers, {h} of {width} channels each"


def _copy_norm(dst: nn.Module, src: nn.Module, index: Tensor) -> None:
    if isinstance(src, nn.BatchNorm1d):
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name)[index])


def freeze_batch_norm(model: nn.Module) -> None:
    """Put ``model``'s BatchNorm layers in eval mode (normalise by, and keep, their running statistics);
    the rest of the model keeps its mode (dropout trains). Call after every ``model.train()``
    (:func:`dfkd.nn.eval_mode` puts every module back in its own mode, so they stay frozen)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
