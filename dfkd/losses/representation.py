r"""Representation-distillation objectives: what the teacher's embeddings say about the graphs.

They need only both models' embeddings on the same batch, so they work with every generator
(offline, online, real graphs). All take the registry's arguments ``(student, teacher, **context)``
and read ``batch`` plus the :class:`dfkd.nn.ModelOutput` of both models (``needs_embeddings``).
Node-level terms use the last layer's node states; teacher and student widths may differ.

=============  ===========================================================================  ==========
name           objective                                                                    state
=============  ===========================================================================  ==========
``lsp``        KL between neighbourhood similarity distributions (Yang et al., CVPR 2020)   —
``gsp``        the same over all node pairs of each graph (Joshi et al., TNNLS 2022)        —
``gcrd``       InfoNCE between projected node embeddings (G-CRD, Joshi et al., TNNLS 2022)  two heads
``relation``   MSE between cosine Gram matrices of graph embeddings (relation / HIRE)       —
``dynamic_kl`` Hinton KD with an adversarially learnt temperature in [1, 10] (CTKD/ACGKD)   temperature
=============  ===========================================================================  ==========

Reductions are "batchmean"-like: a mean over anchor nodes (``lsp``, ``gsp``, ``gcrd``), over
off-diagonal graph pairs (``relation``) or over graphs (``dynamic_kl``), so a recipe weight means
the same thing at every batch size and on every dataset.

Stateful losses are :class:`torch.nn.Module` classes in the registry: the distiller builds them
once (passing the keyword arguments of :data:`dfkd.losses.registry.LOSS_BUILD_ARGUMENTS` their
constructor accepts), trains their parameters with the student's optimiser and saves them in the
resumable state.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfkd.losses.registry import register_loss
from dfkd.ops import scatter

KERNELS = ("cosine", "l1")


def _node_states(student_output, teacher_output, name: str) -> Tuple[Tensor, Tensor]:
    if student_output is None or teacher_output is None:
        raise ValueError(f"the {name} loss needs node embeddings of both models (dfkd.nn models)")
    # The teacher is frozen: nothing may flow back into it (or into a generator through it).
    return student_output.node_embeddings[-1], teacher_output.node_embeddings[-1].detach()


def _sample_nodes(num_nodes: int, max_nodes: int, device: torch.device) -> Optional[Tensor]:
    """Sorted indices of at most ``max_nodes`` nodes (``None`` = all). Draws from torch's global
    generator, which the distiller reseeds every epoch, so sampling is reproducible on resume."""
    if max_nodes <= 0 or num_nodes <= max_nodes:
        return None
    return torch.randperm(num_nodes)[:max_nodes].sort().values.to(device)


def pair_similarity(h: Tensor, src: Tensor, dst: Tensor, kernel: str = "cosine", tau: float = 0.1,
                    beta: float = 100.0) -> Tensor:
    r"""Similarity logits :math:`\mathrm{SIM}(h_i, h_j)` of node pairs ``(src, dst)``.

    * ``cosine``: :math:`\cos(h_i, h_j) / \tau` (scale-free, so models of any width and activation
      size compare; :math:`\tau` sharpens the distribution over a handful of neighbours).
    * ``l1``: the official LSP kernel :math:`\exp(-\|h_i - h_j\|_1 / \beta)`.

    Shapes: ``[N, H]``, ``[P]``, ``[P]`` → ``[P]``.
    """
    if kernel == "cosine":
        return F.cosine_similarity(h[src], h[dst], dim=-1, eps=1e-8) / tau
    if kernel == "l1":
        return torch.exp(-(h[src] - h[dst]).abs().sum(-1) / beta)
    raise ValueError(f"unknown similarity kernel {kernel!r}: choose one of {KERNELS}")


def similarity_matrix(h: Tensor, kernel: str = "cosine", tau: float = 0.1, beta: float = 100.0) -> Tensor:
    """All-pairs :func:`pair_similarity` as a dense matrix. Shapes: ``[M, H]`` → ``[M, M]``."""
    if kernel == "cosine":
        z = F.normalize(h, dim=-1, eps=1e-8)
        return z @ z.t() / tau
    if kernel == "l1":
        return torch.exp(-torch.cdist(h, h, p=1) / beta)
    raise ValueError(f"unknown similarity kernel {kernel!r}: choose one of {KERNELS}")


def grouped_log_softmax(logits: Tensor, group: Tensor, num_groups: int) -> Tensor:
    r"""Log-softmax of ``logits`` within each group: :math:`\log\frac{e^{x_p}}{\sum_{q: g_q = g_p} e^{x_q}}`.

    Shapes: ``[P]``, ``[P]`` → ``[P]``.
    """
    # The per-group maximum is only a shift for stability: no gradient through it.
    shift = scatter(logits.detach(), group, num_groups, "max")[group]
    shifted = logits - shift
    norm = scatter(shifted.exp(), group, num_groups, "sum")
    return shifted - norm[group].log()


def structure_kl(teacher_logits: Tensor, student_logits: Tensor, anchor: Tensor, num_nodes: int) -> Tensor:
    r"""Mean over anchor nodes of :math:`\mathrm{KL}(LS^T_i \,\|\, LS^S_i)`, where :math:`LS_i` is the
    softmax of the pair logits of anchor :math:`i` (anchors without pairs are skipped).

    Shapes: pair logits ``[P]``, anchor of each pair ``[P]`` → scalar.
    """
    if anchor.numel() == 0:
        return student_logits.sum() * 0.0
    log_t = grouped_log_softmax(teacher_logits, anchor, num_nodes)
    log_s = grouped_log_softmax(student_logits, anchor, num_nodes)
    per_anchor = scatter(log_t.exp() * (log_t - log_s), anchor, num_nodes, "sum")
    anchors = torch.unique(anchor).numel()
    return per_anchor.sum() / anchors


@register_loss("lsp")
def local_structure_preserving(student: Tensor, teacher: Tensor, batch=None, student_output=None,
                               teacher_output=None, kernel: str = "cosine", tau: float = 0.1,
                               beta: float = 100.0, **context) -> Tensor:
    r"""Local Structure Preserving loss (LSP; Yang et al., "Distilling Knowledge from Graph
    Convolutional Networks", CVPR 2020, Eqs. 3-5).

    For every node :math:`i` with neighbours :math:`\mathcal N(i)` (edges ``i → j`` of
    ``batch.edge_index``, self-loops dropped):

    .. math::
        LS_{ij} = \frac{w_{ij}\, e^{\mathrm{SIM}(z_i, z_j)}}
                       {\sum_{k \in \mathcal N(i)} w_{ik}\, e^{\mathrm{SIM}(z_i, z_k)}},
        \qquad
        \mathcal L = \frac{1}{|\{i : \mathcal N(i) \ne \emptyset\}|} \sum_i
                     \mathrm{KL}\left(LS^T_i \,\|\, LS^S_i\right)

    with the teacher's distribution as the target (as in Hinton KD; the paper writes the sum with
    the arguments the other way round) and a mean over nodes rather than a sum. ``w_ij`` is
    ``batch.edge_weight`` (soft adjacency of a relaxed generator; 1 without it; edges of weight 0
    are absent), the edge-weighted form of the neighbourhood softmax. SIM: :func:`pair_similarity`
    (default cosine / :math:`\tau = 0.1`; ``kernel="l1"`` is the official
    :math:`\exp(-\|z_i - z_j\|_1/100)`). Only similarity *distributions* are compared, so the
    student's width need not match the teacher's. 0 when the student's similarities equal the teacher's.

    Shapes: node embeddings ``[N, H_s]`` and ``[N, H_t]``, ``edge_index [2, E]`` → scalar.
    """
    h_s, h_t = _node_states(student_output, teacher_output, "lsp")
    src, dst = batch.edge_index
    keep = src != dst
    weight = getattr(batch, "edge_weight", None)
    if weight is not None:
        weight = weight.detach()
        keep = keep & (weight > 0)
    src, dst = src[keep], dst[keep]
    t_logits = pair_similarity(h_t, src, dst, kernel, tau, beta)
    s_logits = pair_similarity(h_s, src, dst, kernel, tau, beta)
    if weight is not None:
        log_w = weight[keep].log()
        t_logits, s_logits = t_logits + log_w, s_logits + log_w
    return structure_kl(t_logits, s_logits, src, h_s.size(0))


local_structure_preserving.needs_embeddings = True


@register_loss("gsp")
def global_structure_preserving(student: Tensor, teacher: Tensor, batch=None, student_output=None,
                                teacher_output=None, kernel: str = "cosine", tau: float = 0.1,
                                beta: float = 100.0, max_nodes: int = 1024, **context) -> Tensor:
    r"""Global Structure Preserving loss (GSP; Joshi et al., "On Representation Knowledge
    Distillation for Graph Neural Networks", TNNLS 2022): LSP over *all* pairs of nodes of the
    same graph instead of the edges.

    .. math::
        GS_{ij} = \frac{e^{\mathrm{SIM}(z_i, z_j)}}{\sum_{k \in V(g_i) \setminus \{i\}} e^{\mathrm{SIM}(z_i, z_k)}},
        \qquad
        \mathcal L = \frac{1}{|\{i\}|} \sum_i \mathrm{KL}\left(GS^T_i \,\|\, GS^S_i\right)

    Choice: the KL of row-softmaxes (as LSP, so ``lsp`` and ``gsp`` weights are comparable) rather
    than the reference code's MSE between cosine-kernel matrices; pairs never cross graphs (the
    graphs of a batch are unrelated synthetic samples). O(N²): at most ``max_nodes`` nodes of the
    batch (uniformly sampled) take part. SIM as in :func:`local_structure_preserving`.

    Shapes: node embeddings ``[N, H_s]`` and ``[N, H_t]``, ``batch.batch [N]`` → scalar.
    """
    h_s, h_t = _node_states(student_output, teacher_output, "gsp")
    graph = batch.batch
    index = _sample_nodes(h_s.size(0), max_nodes, h_s.device)
    if index is not None:
        h_s, h_t, graph = h_s[index], h_t[index], graph[index]
    m = h_s.size(0)
    same = (graph.view(-1, 1) == graph.view(1, -1)) & ~torch.eye(m, dtype=torch.bool, device=graph.device)
    src, dst = same.nonzero(as_tuple=True)
    t_logits = similarity_matrix(h_t, kernel, tau, beta)[src, dst]
    s_logits = similarity_matrix(h_s, kernel, tau, beta)[src, dst]
    return structure_kl(t_logits, s_logits, src, m)


global_structure_preserving.needs_embeddings = True


@register_loss("relation")
def graph_relation(student: Tensor, teacher: Tensor, student_output=None, teacher_output=None,
                   **context) -> Tensor:
    r"""Relation (second-order, Gram-matrix) distillation of graph embeddings (HIRE's second-order
    term; Tung & Mori's similarity preservation, normalised as cosine so one weight fits all
    datasets):

    .. math::
        K_{ab} = \cos(g_a, g_b), \qquad
        \mathcal L = \frac{1}{B(B-1)} \sum_{a \ne b} \left(K^S_{ab} - K^T_{ab}\right)^2

    The diagonal (always 1 on both sides) is left out of the mean, so the value does not shrink
    with the batch size. ``g`` is ``ModelOutput.graph_embedding``, the vector the head sees. 0 for
    a batch of fewer than two graphs.

    Shapes: graph embeddings ``[B, D_s]`` and ``[B, D_t]`` → scalar.
    """
    if student_output is None or teacher_output is None:
        raise ValueError("the relation loss needs graph embeddings of both models (dfkd.nn models)")
    g_s, g_t = student_output.graph_embedding, teacher_output.graph_embedding.detach()
    b = g_s.size(0)
    if b < 2:
        return g_s.sum() * 0.0
    z_s, z_t = F.normalize(g_s, dim=-1, eps=1e-8), F.normalize(g_t, dim=-1, eps=1e-8)
    off = ~torch.eye(b, dtype=torch.bool, device=g_s.device)
    return (z_s @ z_s.t() - z_t @ z_t.t())[off].pow(2).mean()


graph_relation.needs_embeddings = True


def _projection_head(width: int, dim: int) -> nn.Module:
    # No BatchNorm: synthetic batches are small and their statistics drift with the generator.
    return nn.Sequential(nn.Linear(width, dim), nn.ReLU(), nn.Linear(dim, dim))


@register_loss("gcrd")
class GraphContrastiveRepresentationLoss(nn.Module):
    r"""Graph Contrastive Representation Distillation (G-CRD; Joshi et al., "On Representation
    Knowledge Distillation for Graph Neural Networks", TNNLS 2022).

    Student and teacher node states are projected by trainable heads (Linear–ReLU–Linear, no
    BatchNorm) into a common ``dim``-dimensional space and L2-normalised; for each node the teacher
    embedding of the same node is the positive and the teacher embeddings of the other (sampled)
    nodes of the batch are the negatives:

    .. math::
        \mathcal L = -\frac1M \sum_{i=1}^M \log
            \frac{\exp(\hat s_i^\top \hat t_i / \tau)}{\sum_{j=1}^M \exp(\hat s_i^\top \hat t_j / \tau)},
        \qquad \hat s_i = \frac{f_S(h^S_i)}{\|f_S(h^S_i)\|}, \quad \hat t_i = \frac{f_T(h^T_i)}{\|f_T(h^T_i)\|}

    over at most ``max_nodes`` uniformly sampled nodes. InfoNCE has no zero: its minimum is reached
    when the positive pair is aligned and the negatives are far.

    Args:
        student_width: width ``H_s`` of the student's last node states.
        teacher_width: width ``H_t`` of the teacher's last node states.
        dim: projection dimension (paper: 256).
        tau: InfoNCE temperature (paper: 0.05–0.075).
        max_nodes: nodes sampled per batch (the logits are ``[M, M]``).

    Shapes: node embeddings ``[N, H_s]`` and ``[N, H_t]`` → scalar.
    """

    needs_embeddings = True

    def __init__(self, student_width: int, teacher_width: int, dim: int = 256, tau: float = 0.075,
                 max_nodes: int = 1024):
        super().__init__()
        self.tau, self.max_nodes = tau, max_nodes
        self.student_head = _projection_head(student_width, dim)
        self.teacher_head = _projection_head(teacher_width, dim)

    def forward(self, student: Tensor, teacher: Tensor, student_output=None, teacher_output=None,
                **context) -> Tensor:
        h_s, h_t = _node_states(student_output, teacher_output, "gcrd")
        index = _sample_nodes(h_s.size(0), self.max_nodes, h_s.device)
        if index is not None:
            h_s, h_t = h_s[index], h_t[index]
        z_s = F.normalize(self.student_head(h_s), dim=-1)
        z_t = F.normalize(self.teacher_head(h_t), dim=-1)
        logits = z_s @ z_t.t() / self.tau
        return F.cross_entropy(logits, torch.arange(logits.size(0), device=logits.device))

    def extra_repr(self) -> str:
        return f"tau={self.tau}, max_nodes={self.max_nodes}"


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return -grad


def reverse_gradient(x: Tensor) -> Tensor:
    """``x`` in the forward pass; ``-∂L/∂x`` flows back, so a minimising optimiser maximises over ``x``."""
    return _ReverseGradient.apply(x)


@register_loss("dynamic_kl")
class AdversarialTemperatureKL(nn.Module):
    r"""Hinton KD with a learnt, adversarial temperature (CTKD: Li et al., "Curriculum Temperature
    for Knowledge Distillation", AAAI 2023; ACGKD's dynamic adversarial temperature, Jia et al. 2025).

    .. math::
        \mathcal L(T) = T^2\, \mathrm{KL}\left(\mathrm{softmax}(t/T) \,\|\, \mathrm{softmax}(s/T)\right)
        \ (\text{batchmean}),
        \qquad T = T_{\min} + (T_{\max} - T_{\min})\, \sigma(\theta)

    The student minimises :math:`\mathcal L`; :math:`\theta` goes through a gradient-reversal layer,
    so the same optimiser step moves :math:`T` to *maximise* it (the hardest temperature for the
    student), always inside :math:`[T_{\min}, T_{\max}] = [1, 10]`. The reversal strength is constant
    (CTKD's cosine ramp of it is left out for simplicity). Starts at the distiller's ``temperature``.
    Use it instead of ``kl``, not with it. 0 when the logits are equal, at every :math:`T`.

    Shapes: student, teacher ``[B, C]`` → scalar.
    """

    def __init__(self, temperature: float = 2.0, t_min: float = 1.0, t_max: float = 10.0):
        super().__init__()
        if not t_min < t_max:
            raise ValueError(f"dynamic_kl needs t_min < t_max, got [{t_min}, {t_max}]")
        self.t_min, self.t_max = float(t_min), float(t_max)
        # Start strictly inside the bounds: the logit of 0 or 1 is infinite.
        frac = min(max((temperature - t_min) / (t_max - t_min), 1e-3), 1 - 1e-3)
        self.theta = nn.Parameter(torch.tensor(math.log(frac / (1 - frac))))

    @property
    def temperature(self) -> Tensor:
        """The current temperature (a 0-d tensor in ``[t_min, t_max]``)."""
        return self.t_min + (self.t_max - self.t_min) * torch.sigmoid(self.theta)

    def forward(self, student: Tensor, teacher: Tensor, **context) -> Tensor:
        t = reverse_gradient(self.temperature)
        log_s = F.log_softmax(student / t, dim=-1)
        log_t = F.log_softmax(teacher.detach() / t, dim=-1)
        return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * t ** 2

    def epoch_stats(self) -> dict:
        """Reported in the distiller's history (``<name>_temperature``)."""
        return {"temperature": self.temperature.item()}

    def extra_repr(self) -> str:
        return f"T={self.temperature.item():.3f} in [{self.t_min}, {self.t_max}]"
