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
while the first layers do. The law minimising :math:`\sum_l w_l m_l / \sum_l w_l`, averaged over two
independent probe batches, wins. With ``mean_from="first-layer"`` (:func:`choose_law`; the prior generator's
default, ``PriorConfig.law_mean_from``) its mean degree is replaced by the one the first BatchNorm layer alone
points to: the first layer sees one hop of neighbours, as on the training graphs, while a deeper layer's sums
over several hops also depend on graph sizes and type arrangements the probes do not share, and pull the joint
minimum off the mean degree (PROTEINS teachers 5.0 against a true 3.75, a PTC GCN teacher 10.0 against 2.03);
the deeper layers still tell a molecule's narrow law from a wide one, which the first alone does not (it put
MUTAG GCN teachers at dispersion 9 against 0.25).
Over the leaderboard's 24 one-hot GIN and GCN teachers it halves the mean absolute log error of the mean
degree (0.24 to 0.12, the largest error 393% to 48%; the dispersion's unchanged), moves less between probe
draws (``benchmarks/results/structure_inference.md``), and its students' gains and losses are in
``benchmarks/results/gap_analysis.md`` (``first-layer-mean``). The GFKD and DFAD-GNN generators start from
the joint law (``all-layers``, the default here).

Two limits on the grid make the guess safe to train on. Graph-classification graphs are connected, and a
connected graph on :math:`n` nodes has mean degree at least :math:`2(n-1)/n` (a tree), so sparser laws
are not candidates (``connected=False`` lifts this); without the bound, two NCI1 GIN teachers pointed to
0.8-1.0 (true 2.2). And no law is narrower than molecules' (dispersion 0.25): at mean 1.5 and dispersion
0.15 every degree is 1 or 2, and a GIN student distilled from a MUTAG GCN teacher on such graphs, never
having seen a degree-3 atom, fell below the majority class on one seed of three (0.333; 0.602 ± 0.233 over
the three, against 0.725 ± 0.037 at dispersion 0.25 and 0.754 at the true law,
``benchmarks/results/law_sensitivity.md``).

For **degree-encoded** features (one-hot node degree) the probe graphs carry their own degrees as
features, so encoded and real degrees agree, and only the first BatchNorm layer is matched: it sees the
degree law directly, while on dense social graphs the deeper layers' running statistics are sums over
high-degree nodes that no batch reproduces. (Inverting the first layer for a degree distribution
:math:`\pi` fed to every node, as for node types, overestimates: neighbours' degrees follow the
size-biased law :math:`k\pi_k / \bar d`, not :math:`\pi`. On two IMDB-B GIN teachers it gave mean degree
16-18 against the true 9.6; the first-layer grid gives 8.0 on both, all layers 3.5 and 10.)

**Teachers without BatchNorm** (LayerNorm, GraphNorm, none) keep no statistics of their inputs, and
their outputs do not point to the law either: over the same grid, the mutual information of the teacher's
predictions (class balance minus per-graph entropy), the mean logit norm and the share of predictions
that flip when 10% of the edges are dropped peaked at mean degree 3-6 on a MUTAG GIN without
normalisation (true 2.2), 0.75-1.25 on a PTC one (true 2.0), 4 and 16 on IMDB-B GIN/GAT teachers
(true 9.6): trained teachers are confident far from their data. What every teacher does keep is the
*support* of its inputs in its first layer's weights (:func:`trained_columns`): a one-hot column that no
training node ever switched on gets no gradient and stays where the initialisation drew it, inside its
bound, while trained columns leave it. For degree-encoded features that support is the range of
degrees seen in training, and :func:`support_degree_law` turns it into a law (log-uniform over the
range: the maximum-entropy law on the scale that heavy-tailed degrees live on); for one-hot node
types, a teacher without BatchNorm gets types drawn among the trained ones
(:meth:`~dfkd.generators.base.GraphGenerator.fit_type_prior`).

Measured on the benchmark's hold-out teachers against their true training statistics
(``benchmarks/structure_inference.py``, ``benchmarks/results/structure_inference.md``), median error of
the mean degree 4% on GIN-5-64 teachers (largest 34%) and 18% on GCN-5-64 ones (largest 393%, on a PTC
teacher barely above chance) for the joint law; with the first layer's mean, 7% (largest 18%) and 9% (largest
48%). GCN's symmetric normalisation :math:`1/\sqrt{d_i d_j}` cancels most of the degree from its activations,
so its BatchNorm statistics barely depend on the law, and the node-type fit at each grid point absorbs what is
left.

Node counts barely move node-level statistics (on MUTAG, PTC and IMDB-B GIN teachers the mismatch
changes by a few percent from 4-8 to 50-100 nodes, and the class balance of the teacher's predictions
does not single out the training sizes either), so they are not inferred.
"""
from __future__ import annotations

import dataclasses
import logging
import math
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
# No narrower than molecules (MUTAG 0.25, NCI1 0.28): a narrower law can starve the student of degrees one above
# the mean (MUTAG GCN teacher -> GIN student at mean 1.5: 0.602 +- 0.233 at dispersion 0.15, 0.725 +- 0.037 at 0.25).
DISPERSIONS = (0.25, 0.4, 0.6, 1.0, 1.6, 2.5, 4.0, 6.0, 9.0)
PROBES = 2  # probe batches whose mismatch tables are averaged (one batch's second moments are noisy)
LAW_MEAN_SOURCES = ("all-layers", "first-layer")  # where choose_law reads the mean degree from
LAW_METHODS = {"batchnorm-grid": "BatchNorm statistics", "weight-support": "degrees its first layer was trained on"}
TYPE_STEPS = 25  # Adam steps of each warm-started node-type fit along the mean-degree grid


@dataclasses.dataclass
class InferredDegreeLaw:
    """A degree law read off the teacher: ``mean_degree`` :math:`\\bar d`, ``dispersion`` ``var / mean``,
    the weighted mismatch ``score`` at the optimum, the number of BatchNorm ``layers`` it weighed, and the
    ``method`` (``batchnorm-grid``, or ``weight-support``: :func:`support_degree_law`)."""

    mean_degree: float
    dispersion: float
    score: float
    layers: int
    method: str

    @property
    def degree_var(self) -> float:
        return self.mean_degree * self.dispersion


def trained_columns(teacher: nn.Module, dim: int) -> Optional[Tensor]:
    r"""``[F]`` bool: the one-hot input columns the teacher was trained on, read off its weights alone.

    Every 2-D ``*weight`` of width ``dim`` (the first layer of each branch that sees the node features) is
    scanned. A column that no training node switched on gets no gradient and stays the draw its
    initialisation made: :math:`F_{out}` entries uniform on :math:`[-b, b]`, with :math:`b` PyTorch's
    Kaiming-uniform :math:`1/\sqrt{F_{in}}` or PyG's Glorot :math:`\sqrt{6/(F_{in}+F_{out})}`
    (:func:`looks_initialised`). Every other column counts as trained. Testing for the draw, rather than
    for an entry beyond the larger bound, matters for PyG convolutions on few node types: a MUTAG GAT
    (Glorot bound 0.151, Kaiming 0.378) moved its carbon column, 71% of the training nodes, to 0.294, and
    the bound test called it untrained, so the students never saw a carbon atom. On 42 development teachers
    (``benchmarks/dev_teachers.py``: GAT, GIN without normalisation, GraphSAGE; MUTAG, PTC, PROTEINS,
    IMDB-B, NCI1) it flags 2 of their 559 untrained columns (two IMDB-B degrees beyond 80, past the run of
    degrees :func:`support_degree_law` reads) and misses 10 of 851 trained ones, none above 0.1% of the
    training nodes (the bound test: none flagged, 23 missed, the MUTAG GAT's carbon among them). Columns seen
    only once or twice in training may be missed, and common ones may have been when training was short and
    the layer narrow (a 40-epoch GIN on 3 node types left a type of 29% of the nodes inside its bound), so
    BatchNorm teachers' type priors do not use it.

    Returns ``None`` when no weight has that width, or when no column of any such weight either looks
    initialised or lies beyond the larger bound (a custom initialisation): then nothing is known.
    """
    mask = torch.zeros(dim, dtype=torch.bool)
    found = False
    for name, weight in teacher.named_parameters():
        if weight.dim() != 2 or weight.size(1) != dim or not name.endswith("weight"):
            continue
        weight = weight.detach().cpu()
        fan_out, fan_in = weight.shape
        bounds = (fan_in ** -0.5, (6.0 / (fan_in + fan_out)) ** 0.5)
        untouched = looks_initialised(weight, bounds[0]) | looks_initialised(weight, bounds[1])
        beyond = weight.abs().amax(0) > max(bounds) * 1.01
        if bool(untouched.any()) or bool(beyond.any()):
            mask |= ~untouched
            found = True
    return mask if found and bool(mask.any()) else None


def looks_initialised(weight: Tensor, bound: float) -> Tensor:
    r"""``[F_in]`` bool: the columns of ``weight [F_out, F_in]`` that look like a fresh draw from
    :math:`U(-b, b)`: no entry beyond :math:`1.01\,b`, the largest within :math:`6b/F_{out}` of the bound
    (a fresh column's largest entry falls that short with probability :math:`e^{-6}`), and the mean
    :math:`|w|` within four standard errors, :math:`4b/\sqrt{12 F_{out}}`, of :math:`b/2`. A trained column
    whose entries grew by about the ratio of the Kaiming and Glorot bounds looks like a draw from the larger
    one and is missed; the narrower the layer, the wider that window (:math:`6/F_{out}` of the bound)."""
    fan_out = weight.size(0)
    size = weight.abs()
    top = size.amax(0)
    near_bound = (top <= bound * 1.01) & (top >= bound * max(1.0 - 6.0 / fan_out, 0.5))
    spread = (size.mean(0) - bound / 2).abs() <= 4 * bound / math.sqrt(12 * fan_out)
    return near_bound & spread


def support_degree_law(columns: Tensor) -> Optional[InferredDegreeLaw]:
    r"""Degree law of a degree-encoded teacher from the degrees its first layer was trained on
    (:func:`trained_columns`): log-uniform on :math:`[d_{lo}, d_{hi}]`, the run of consecutive trained
    degrees that starts at the smallest one :math:`\geq 1`, with mean and dispersion

    .. math:: \bar d = \frac{d_{hi} - d_{lo}}{\ln(d_{hi}/d_{lo})}, \quad
              D = \frac{(d_{hi}^2 - d_{lo}^2) / (2 \ln(d_{hi}/d_{lo})) - \bar d^2}{\bar d}.

    The run stops at the first untrained degree: beyond it lie the scattered extremes of single graphs
    (IMDB-B teachers: degrees 1-40 all trained, then 42, 43, 45, ... 71), which would put the law's mean
    at 16.4 instead of 10.6 (true 9.6). ``None`` when fewer than two consecutive degrees ``>= 1`` are
    trained.
    """
    degrees = columns.nonzero().flatten()
    degrees = degrees[degrees >= 1]
    if degrees.numel() < 2:
        return None
    gaps = (degrees[1:] - degrees[:-1] > 1).nonzero()
    run = degrees[: int(gaps[0]) + 1] if gaps.numel() else degrees
    if run.numel() < 2:
        return None
    lo, hi = float(run[0]), float(run[-1])
    log_ratio = math.log(hi / lo)
    mean = (hi - lo) / log_ratio
    second = (hi ** 2 - lo ** 2) / (2 * log_ratio)
    law = InferredDegreeLaw(mean, max(second - mean ** 2, 1e-3) / mean, float("nan"), 0, "weight-support")
    logger.info("degree law inferred from the degrees the teacher's first layer was trained on (%d-%d): "
                "mean degree %.2f, dispersion %.2f", lo, hi,
                law.mean_degree, law.dispersion)
    return law


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
                     dispersions: Sequence[float] = DISPERSIONS, probes: int = PROBES,
                     connected: bool = True, mean_from: str = "all-layers") -> Optional[InferredDegreeLaw]:
    """The degree law the teacher's BatchNorm statistics point to (module docstring), or ``None`` when
    the teacher keeps no BatchNorm running statistics.

    Args:
        teacher: the frozen teacher (eval mode).
        spec: its node-feature encoding.
        node_range: ``(min, max)`` node counts of the probe graphs.
        num_graphs: graphs per probe batch.
        probes: probe batches (independent draws) whose mismatch tables are averaged.
        connected: assume the training graphs were connected, so no mean degree below
            :math:`2(n_{min} - 1) / n_{min}` (a tree on the smallest probe graph's nodes) is considered.
        mean_from: ``all-layers`` or ``first-layer``: where the mean degree is read (:func:`choose_law`).
    """
    if not BatchNormStatsLoss(teacher).available:
        return None
    lowest = 2 * (node_range[0] - 1) / node_range[0] if connected else 0.0
    grid = sorted(m for m in mean_degrees if m >= lowest - 1e-9) or [max(mean_degrees)]
    device = next(iter(teacher.parameters()), torch.zeros(())).device
    tables, types = [], {}
    for probe in range(max(probes, 1)):
        probe_seed = seed + 1000 * probe
        counts = sample_node_counts(num_graphs, *node_range, torch.Generator().manual_seed(probe_seed))
        node_graph = node_to_graph(counts).to(device)
        mismatch, previous = {}, None
        for mean in grid:
            for i, dispersion in enumerate(dispersions):
                # Common random numbers: every grid point of a probe draws from the same stream, so points
                # differ by their law, not by their luck (dense, uneven graphs are noisy in second moments).
                gen = torch.Generator().manual_seed(probe_seed + 1)
                edges = undirected(sample_structure(counts, mean, dispersion, gen)).to(device)
                if probe == 0 and i == 0:  # the type mix depends on the mean degree, barely on the dispersion
                    types[mean] = previous = _type_probs(teacher, spec, edges, node_graph, counts.numel(), previous)
                x = _features(spec, types[mean], edges, node_graph.numel(), gen).to(device)
                mismatch[(mean, dispersion)] = layer_mismatch(teacher, x, edges, node_graph, counts.numel())
        tables.append(torch.stack(list(mismatch.values())))  # [grid, L]
    table = torch.stack(tables).mean(0)
    laws = list(mismatch)
    best, weights, score = choose_law(table, laws, first_layer_only=spec.encoding == "degree", mean_from=mean_from)
    mean, dispersion = laws[best]
    law = InferredDegreeLaw(mean, dispersion, score, int((weights > 0).sum()), "batchnorm-grid")
    logger.info("degree law inferred from the teacher's %d BatchNorm layers: mean degree %.2f, dispersion %.2f "
                "(weighted mismatch %.3f)", law.layers, mean, dispersion, law.score)
    return law


def choose_law(table: Tensor, laws: Sequence[Tuple[float, float]], first_layer_only: bool = False,
               mean_from: str = "all-layers") -> Tuple[int, Tensor, float]:
    r"""Which ``(mean degree, dispersion)`` of the grid the mismatch ``table [K, L]`` (:math:`m_l` of each of
    the ``K`` ``laws`` at each of the ``L`` BatchNorm layers) points to: the law minimising
    :math:`\sum_l w_l m_{k,l} / \sum_l w_l`, :math:`w_l = 1 / (1 + \min_k m_{k,l})` (module docstring); with
    ``mean_from="first-layer"`` its mean degree replaced by that of :math:`\arg\min_k m_{k,1}`, the first
    layer's alone. ``first_layer_only`` (degree-encoded features): only the first layer is weighed.

    Returns:
        ``(index into laws, [L] weights, weighted score of that law)``; the grid must hold the combination.
    """
    if mean_from not in LAW_MEAN_SOURCES:
        raise ValueError(f"unknown mean_from {mean_from!r}: choose one of {LAW_MEAN_SOURCES}")
    weights = 1.0 / (1.0 + table.min(0).values)
    if first_layer_only:
        weights[1:] = 0  # the first layer sees the degree law itself; the deeper ones are heavy-tailed sums
    scores = (table * weights).sum(1) / weights.sum()
    best = int(scores.argmin())
    if mean_from == "first-layer":
        best = list(laws).index((laws[int(table[:, 0].argmin())][0], laws[best][1]))
    return best, weights, float(scores[best])


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


