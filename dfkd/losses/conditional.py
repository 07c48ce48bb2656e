r"""Student terms of conditional (CGDD-style) distillation: preset labels and attention transfer.

Both take the same arguments as every registered loss, ``(student, teacher, **context)``, and read
what they need from the context the distiller passes: ``batch`` (with the preset labels ``y``) and,
for losses marked ``needs_embeddings``, the :class:`dfkd.nn.ModelOutput` of both models.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from dfkd.losses.registry import register_loss
from dfkd.ops import scatter


@register_loss("label_ce")
def preset_label_cross_entropy(student: Tensor, teacher: Tensor, batch=None, **context) -> Tensor:
    """Cross-entropy of the student against the graphs' preset labels ``batch.y`` (CGDD: the labels
    a conditional generator was asked for are treated as ground truth). Shapes ``[B, C]``, ``[B]`` → scalar."""
    if batch is None or getattr(batch, "y", None) is None:
        raise ValueError("the label_ce loss needs graphs with preset labels (a conditional or GFKD generator)")
    return F.cross_entropy(student, batch.y.view(-1).long().to(student.device))


def node_attention(node_embeddings: Tensor, node_graph: Tensor, num_graphs: int) -> Tensor:
    r"""Per-node attention map (Zagoruyko & Komodakis 2017, for graphs): :math:`a_i = \|h_i\|_2^2`,
    L2-normalised within each graph so models of different widths compare.

    Shapes: ``[N, H]``, ``[N]`` → ``[N]``.
    """
    energy = node_embeddings.pow(2).sum(-1)
    norm = scatter(energy.pow(2), node_graph, num_graphs, "sum").sqrt().clamp(min=1e-12)
    return energy / norm[node_graph]


def attention_transfer(student: Tensor, teacher: Tensor, batch=None, student_output=None, teacher_output=None,
                       **context) -> Tensor:
    r"""CGDD's attention term on graphs: :math:`\frac1G\sum_g \|a^S_g - a^T_g\|_2^2` between the
    per-graph normalised node-attention maps (:func:`node_attention`) of the last layers.

    Shapes: node embeddings ``[N, H_s]`` and ``[N, H_t]`` → scalar.
    """
    if student_output is None or teacher_output is None:
        raise ValueError("the attention loss needs node embeddings of both models (dfkd.nn models)")
    graph = batch.batch
    a_s = node_attention(student_output.node_embeddings[-1], graph, batch.num_graphs)
    a_t = node_attention(teacher_output.node_embeddings[-1], graph, batch.num_graphs)
    return scatter((a_s - a_t).pow(2), graph, batch.num_graphs, "sum").mean()


attention_transfer.needs_embeddings = True
register_loss("attention")(attention_transfer)
