r"""The degree law of the training graphs, inferred from the teacher alone.

A teacher checkpoint from elsewhere carries no statistics of its training graphs, yet its BatchNorm
layers remember them: message passing sums neighbours, so the running mean and variance of every
layer depend on how many neighbours nodes have and how unevenly (the degree mean :math:`\bar d` and
index of dispersion :math:`D = \mathrm{var}/\mathrm{mean}`). Rather than fitting per-graph edges
(GFKD, DeepInversion), this fits the two parameters of the structure law that
:func:`~dfkd.generators.structure.sample_structure` draws from, which is cheap: for each
:math:`(\bar d, D)` of a grid, a batch of graphs is drawn (node types from
:func:`~dfkd.generators.priors.estimate_type_prior` on that structure), run through the teacher, and
every BatchNorm layer :math:`l` scored by

.. math::
    m_l(\bar d, D) = \log\Big(1 + \frac{\|\mu_b - \mu_r\|}{\|\mu_r\|}\Big)
                   + \log\Big(1 + \frac{\|\sigma^2_b - \sigma^2_r\|}{\|\sigma^2_r\|}\Big)

(the log keeps the deep layers, where a wrong law blows the statistics up by orders of magnitude, from
drowning the rest). Layers are weighed by how well they can be matched at all,
:math:`w_l = 1 / (1 + \min_{\bar d, D} m_l)`: on teachers of dense social graphs the running statistics
of the deeper layers describe no batch of graphs well (sums over high-degree nodes are heavy-tailed),
while the first layers do. The law minimising :math:`\sum_l w_l m_l / \sum_l w_l` wins.

For **degree-encoded** features (one-hot node degree) the probe graphs carry their own degrees as
features, so encoded and real degrees agree, and only the first BatchNorm layer is matched: it sees the
degree law directly, while on dense social graphs the deeper layers' running statistics are sums over
high-degree nodes that no batch reproduces. (Inverting the first layer for a degree distribution
:math:`\pi` fed to every node, as for node types, overestimates: neighbours' degrees follow the
size-biased law :math:`k\pi_k / \bar d`, not :math:`\pi`. On two IMDB-B GIN teachers it gave mean degree
16-18 against the true 9.6; the first-layer grid gives 8.0 on both, all layers 3.5 and 10.)

Measured on the benchmark's GIN-5-64 hold-out teachers against their true training statistics
(``benchmarks/structure_inference.py``). Node counts barely move node-level statistics (on MUTAG, PTC and IMDB-B GIN teachers the mismatch changes by a few percent from 4-8 to
50-100 nodes, and the class balance of the teacher's predictions does not single out the training
sizes either), so they are not inferred.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfkd.config import FeatureSpec
from dfkd.losses.bn import BatchNormStatsLoss
from dfkd.nn import call_model
from dfkd.generators.priors import estimate_type_prior
from dfkd.generators.structure import node_to_graph, sample_node_counts, sample_structure, undirected
from dfkd.generators.synthetic import degree_features

logger = logging.getLogger(__name__)

MEAN_DEGREES = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0)
DISPERSIONS = (0.15, 0.25, 0.4, 0.6, 1.0, 1.6, 2.5, 4.0, 6.0, 9.0)
TYPE_STEPS = 25  # Adam steps of each warm-started node-type fit along the mean-degree grid


@dataclasses.dataclass
class InferredDegreeLaw:
    """A degree law read off the teacher: ``mean_degree`` :math:`\\bar d`, ``dispersion`` ``var / mean``,
    the weighted mismatch ``score`` at the optimum, the number of BatchNorm ``layers`` used, and the
    ``method`` (``batchnorm-grid``)."""

    mean_degree: float
    dispersion: float
    score: float
    layers: int
    method: str

    @property
    def degree_var(self) -> float:
        return self.mean_degree * self.dispersion


def layer_mismatch(teacher: nn.Module, x: Tensor, edge_index: Tensor, node_graph: Tensor,
                   num_graphs: int) -> Tensor:
    """``[L]`` per-BatchNorm-layer mismatch :math:`m_l` (module docstring) of one batch of graphs."""
    bn = BatchNormStatsLoss(teacher, "relative")
    terms: List[Tensor] = []

    def hook(module: nn.Module, inputs, output) -> None:
        h = inputs[0].detach().float()
        norm = torch.linalg.vector_norm
        mean = norm(h.mean(0) - module.running_mean) / (norm(module.running_mean) + 1e-5)
        var = norm(h.var(0, unbiased=False) - module.running_var) / (norm(module.running_var) + 1e-5)
        terms.append(torch.log1p(mean) + torch.log1p(var))

    handles = [layer.register_forward_hook(hook) for layer in bn.layers]
    try:
        with torch.no_grad():
            call_model(teacher, x, edge_index, node_graph, num_graphs)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(terms).cpu() if terms else torch.zeros(0)


def infer_degree_law(teacher: nn.Module, spec: FeatureSpec, node_range: Tuple[int, int], num_graphs: int = 128,
                     seed: int = 0, mean_degrees: Sequence[float] = MEAN_DEGREES,
                     dispersions: Sequence[float] = DISPERSIONS) -> Optional[InferredDegreeLaw]:
    """The degree law the teacher's BatchNorm statistics point to (module docstring), or ``None`` when
    the teacher keeps no BatchNorm running statistics.

    Args:
        teacher: the frozen teacher (eval mode).
        spec: its node-feature encoding.
        node_range: ``(min, max)`` node counts of the probe graphs.
        num_graphs: graphs per probe batch.
    """
    if not BatchNormStatsLoss(teacher).available:
        return None
    device = next(iter(teacher.parameters()), torch.zeros(())).device
    gen = torch.Generator().manual_seed(seed)
    counts = sample_node_counts(num_graphs, *node_range, gen)
    node_graph = node_to_graph(counts).to(device)
    mismatch, types = {}, None
    for mean in sorted(mean_degrees):
        for i, dispersion in enumerate(dispersions):
            # Common random numbers: every grid point draws from the same stream, so points differ by their
            # law, not by their luck (a batch of dense, uneven graphs is noisy in its second moments).
            gen = torch.Generator().manual_seed(seed + 1)
            edges = undirected(sample_structure(counts, mean, dispersion, gen)).to(device)
            if i == 0:  # the type mix depends on the mean degree, barely on the dispersion
                types = _type_probs(teacher, spec, edges, node_graph, counts.numel(), types)
            x = _features(spec, types, edges, node_graph.numel(), gen).to(device)
            mismatch[(mean, dispersion)] = layer_mismatch(teacher, x, edges, node_graph, counts.numel())
    table = torch.stack(list(mismatch.values()))  # [grid, L]
    weights = 1.0 / (1.0 + table.min(0).values)
    if spec.encoding == "degree":
        weights[1:] = 0  # the first layer sees the degree law itself; the deeper ones are heavy-tailed sums
    scores = (table * weights).sum(1) / weights.sum()
    best = int(scores.argmin())
    mean, dispersion = list(mismatch)[best]
    law = InferredDegreeLaw(mean, dispersion, float(scores[best]), table.size(1), "batchnorm-grid")
    logger.info("degree law inferred from the teacher's %d BatchNorm layers: mean degree %.2f, dispersion %.2f "
                "(weighted mismatch %.3f)", law.layers, mean, dispersion, law.score)
    return law


def _type_probs(teacher: nn.Module, spec: FeatureSpec, edges: Tensor, node_graph: Tensor, num_graphs: int,
                previous: Optional[Tensor]) -> Optional[Tensor]:
    """Node-type distribution on this structure; warm-started from the previous (smaller) mean degree's, so a
    few steps suffice along the grid."""
    if spec.encoding != "one_hot":
        return None
    probs, _ = estimate_type_prior(teacher, spec.dim, edges, node_graph, num_graphs, verbose=False,
                                   steps=100 if previous is None else TYPE_STEPS, init=previous)
    return probs.cpu() if probs is not None else torch.full((spec.dim,), 1.0 / spec.dim)


def _features(spec: FeatureSpec, types: Optional[Tensor], edges: Tensor, num_nodes: int,
              gen: torch.Generator) -> Tensor:
    if spec.encoding == "degree":  # the structure's own degrees: encoded and real degrees agree
        return degree_features(edges, num_nodes, spec)
    if spec.encoding == "one_hot":
        return F.one_hot(torch.multinomial(types, num_nodes, replacement=True, generator=gen), spec.dim).float()
    return torch.randn(num_nodes, spec.dim, generator=gen)


