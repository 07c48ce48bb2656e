r"""Teacher-classifier reuse: the student predicts through the teacher's own classifier.

ACGKD's observation: the teacher's classifier already separates the classes in the teacher's
readout space; a student that maps its readout :math:`g^S \in \mathbb{R}^{d_S}` into that space and
reuses the classifier only has to learn the features, not the decision boundary. During
distillation the student's head is

.. math:: z^S = W_T (P g^S + p) + b_T,

with :math:`P \in \mathbb{R}^{d_T \times d_S}, p` learnt and the teacher's :math:`W_T, b_T` copied
(frozen, or only initialised). Both maps are linear, so afterwards the head folds into one
``nn.Linear`` of the student's own shape, :math:`W = W_T P`, :math:`b = W_T p + b_T`: the saved
student has its usual architecture and checkpoint, no extra parameters.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class ProjectedTeacherHead(nn.Module):
    """``head(proj(g))``: a learnt projection ``[B, d_S] → [B, d_T]`` followed by a copy of the teacher's
    linear classifier ``[B, d_T] → [B, C]`` (frozen unless ``train_head``)."""

    def __init__(self, student_width: int, teacher_head: nn.Linear, train_head: bool = False):
        super().__init__()
        self.proj = nn.Linear(student_width, teacher_head.in_features)
        self.head = copy.deepcopy(teacher_head)
        for p in self.head.parameters():
            p.requires_grad_(train_head)

    def forward(self, graph: Tensor) -> Tensor:
        return self.head(self.proj(graph))

    @torch.no_grad()
    def fold(self) -> nn.Linear:
        """The single ``nn.Linear(d_S, C)`` equal to this head: ``W = W_T P``, ``b = W_T p + b_T``."""
        w_t, b_t = self.head.weight, self.head.bias
        folded = nn.Linear(self.proj.in_features, w_t.size(0), device=w_t.device, dtype=w_t.dtype)
        folded.weight.copy_(w_t @ self.proj.weight)
        folded.bias.copy_(w_t @ self.proj.bias + (b_t if b_t is not None else 0.0))
        return folded


def reuse_teacher_head(student: nn.Module, teacher: nn.Module, train_head: bool = False) -> ProjectedTeacherHead:
    """Replace ``student.head`` (an ``nn.Linear``) by a :class:`ProjectedTeacherHead` around the teacher's.

    Both models must be dfkd classifiers (a linear ``head``) with the same number of outputs; the
    projection is initialised by PyTorch's default ``nn.Linear`` init (seed it beforehand).
    """
    s_head, t_head = getattr(student, "head", None), getattr(teacher, "head", None)
    if not isinstance(s_head, nn.Linear) or not isinstance(t_head, nn.Linear):
        raise ValueError("teacher-head reuse needs dfkd models whose classifier is a linear `head`: "
                         "leave teacher_head off for other models")
    if s_head.out_features != t_head.out_features:
        raise ValueError(f"the student has {s_head.out_features} outputs and the teacher {t_head.out_features}: "
                         "they must match to share a classifier")
    student.head = ProjectedTeacherHead(s_head.in_features, t_head, train_head).to(s_head.weight.device)
    return student.head


def fold_teacher_head(student: nn.Module) -> nn.Module:
    """Fold a :class:`ProjectedTeacherHead` back into one ``nn.Linear`` (no-op otherwise); returns ``student``."""
    if isinstance(getattr(student, "head", None), ProjectedTeacherHead):
        student.head = student.head.fold()
    return student
