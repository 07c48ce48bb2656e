r"""DFAD-GNN: a generator network trained adversarially against the student (Zhuang et al., IJCAI 2022).

Noise :math:`z \sim \mathcal N(0, I)` is decoded into a graph (:mod:`dfkd.generators.decoders`).
Teacher :math:`T` and student :math:`S` act as two discriminators in the min-max game (DFAD-GNN Eq. 3-5)

.. math::
    \min_S \max_G \; \mathbb E_z\big[\mathcal D(T(G(z)), S(G(z)))\big], \qquad
    \mathcal D = \tfrac1C\|T(\cdot) - S(\cdot)\|_1

The student takes ``student_steps`` steps on fresh discrete graphs (the distiller's recipe) for every
generator step; the generator maximises the discrepancy, its gradient flowing through the frozen
teacher and the student into the relaxed graph (straight-through edges and node types). Optional
terms, off by default: the teacher's BatchNorm prior and a class-balance term
:math:`\log C - H(\bar p)` on the batch-mean teacher prediction :math:`\bar p`.

**How the defaults were chosen.** The generator learning rate (1e-4 instead of image-domain DFAD's 1e-3), the bounded
discrepancy (L1 between probabilities for the generator) and the BN prior left off were chosen on
2026-11-25, before that protocol existed, on *test* accuracy of the 70/30 benchmark seeds
(``benchmarks/results/archive/dfad.md``: ``dfad-lr1e-3``, ``dfad-bn``). Under the project's protocol (``benchmarks/results/README.md``)
a default is kept or changed on the validation figures of the committed runs (the teachers' validation
graphs and, for data-free methods, agreement on their fitting graphs), never on test accuracy; the
leaderboard's ablation rows (``benchmarks/distill_benchmark.py``, ``METHODS``) hold the comparison.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from typing import Dict, Iterator, List, Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from dfkd.config import Config
from dfkd.generators.base import OnlineGraphGenerator, check_structure, graph_range
from dfkd.generators.decoders import EDGE_RELAXATIONS, DecodedGraphs, GraphDecoder, decode_graphs
from dfkd.generators.presets import Preset
from dfkd.generators.registry import register_generator
from dfkd.generators.sharding import ShardedGeneratorStep
from dfkd.generators.structure import candidate_pairs, node_to_graph, sample_node_counts, undirected
from dfkd.losses import BN_LOSSES, BatchNormStatsLoss, get_loss, is_stateful_loss
from dfkd.nn import accepts_edge_weight, eval_mode, forward_batch
from dfkd.parallel import DistContext

logger = logging.getLogger(__name__)

STUDENT_MODES = ("train", "eval")


@dataclasses.dataclass
class AdversarialConfig(Config):
    """Hyper-parameters of :class:`AdversarialGraphGenerator`.

    Args:
        noise_dim: width of the noise vector ``z``.
        hidden: widths of the decoder's MLP trunk.
        lr: Adam learning rate of the generator (1e-4; image-domain DFAD's 1e-3 lets the generator
            leave its prior-matched start within a few epochs, and the student then collapses on MUTAG).
        student_steps: student steps per generator update (DFAD-GNN's ``k``).
        generator_steps: generator updates each time one is due.
        discrepancy: registered loss the generator maximises (``prob_mae``, L1 between the softmax
            outputs; ``mae``, DFAD-GNN's L1 on logits, lets the generator win by inflating them).
        adversarial_weight: weight of that (negated) discrepancy in the generator loss.
        warmup_steps: generator steps before distillation starts, on the non-adversarial terms only.
        relaxation: ``straight_through`` (hard edges, relaxed gradient) or ``concrete`` (soft edges).
        temperature: of the edge and node-type relaxations.
        bn_weight: weight of the teacher's BatchNorm prior in the generator loss (0 = off).
        bn_loss: form of that prior (``relative``, ``kl``, ``l2``).
        balance_weight: weight of the class-balance term (0 = off).
        type_prior: start the node-type logits from the distribution inverted from the teacher's
            first BatchNorm layer (one-hot encodings).
        init_degree: initial expected degree (``None``: the teacher's training mean, else 2).
        min_nodes, max_nodes: node-count range (``None``: teacher's statistics, else 10-30).
        structure: where the degree law comes from when no option sets it: ``checkpoint`` (its training
            statistics, else fixed defaults), ``teacher`` (inferred, :mod:`dfkd.generators.inference`) or
            ``auto`` (default: the checkpoint's when it stores them, else the teacher's).
        collapse_threshold: an epoch in which the teacher predicts one class for at least this
            fraction of generated graphs is flagged as collapsed.
        replay: generated batches kept in memory; after every fresh batch the student also trains on
            one of them (0 = off, DFAD-GNN as published).
        output_bound: regression teachers: bound the game to the teacher's output range on the initial
            generator's graphs (its ``[q, 1 - q]`` quantiles, ``q = output_quantile``): the discrepancy compares
            outputs clipped to that range, and leaving it costs the distance beyond it, so the generator cannot
            win by driving the teacher's values to extremes (unbounded, the published L1, it does: student
            R² −11,524 on ``SYNTH:TRIANGLES``, ``benchmarks/results/archive/regression.md``). ``False``: plain L1.
        output_quantile: regression teachers: the quantile ``q`` of that range.
        student_mode: the student's mode while the generator steps against it: ``train`` (dropout live,
            BatchNorm on the generator batch's statistics, its running statistics left alone; image-domain
            DFAD's) or ``eval`` (the function the student is scored with).
    """

    noise_dim: int = 64
    hidden: List[int] = dataclasses.field(default_factory=lambda: [128, 256, 512])
    lr: float = 1e-4
    student_steps: int = 5
    generator_steps: int = 1
    discrepancy: str = "prob_mae"
    adversarial_weight: float = 1.0
    warmup_steps: int = 0
    relaxation: str = "straight_through"
    temperature: float = 1.0
    bn_weight: float = 0.0
    bn_loss: str = "relative"
    balance_weight: float = 0.0
    type_prior: bool = True
    init_degree: Optional[float] = None
    min_nodes: Optional[int] = None
    max_nodes: Optional[int] = None
    structure: str = "auto"
    collapse_threshold: float = 0.95
    replay: int = 0
    output_bound: bool = True
    output_quantile: float = 0.05
    student_mode: str = "train"

    def __post_init__(self) -> None:
        check_structure(self.structure)
        if self.student_mode not in STUDENT_MODES:
            raise ValueError(f"unknown student_mode {self.student_mode!r}: choose one of {STUDENT_MODES}")
        if self.relaxation not in EDGE_RELAXATIONS:
            raise ValueError(f"unknown relaxation {self.relaxation!r}: choose one of {EDGE_RELAXATIONS}")
        if self.bn_loss not in BN_LOSSES:
            raise ValueError(f"unknown bn_loss {self.bn_loss!r}: choose one of {BN_LOSSES}")
        if (self.student_steps < 1 or self.generator_steps < 0 or self.lr <= 0 or self.noise_dim < 1
                or self.warmup_steps < 0 or self.replay < 0):
            raise ValueError("student_steps >= 1, generator_steps >= 0, warmup_steps >= 0, replay >= 0, lr > 0 and "
                             "noise_dim >= 1 are required")
        if not 0.0 <= self.output_quantile < 0.5:
            raise ValueError(f"output_quantile must be in [0, 0.5), got {self.output_quantile}")
        loss = get_loss(self.discrepancy)
        if is_stateful_loss(loss) or getattr(loss, "needs_embeddings", False):
            raise ValueError(f"discrepancy {self.discrepancy!r} needs trainable parts or embeddings: use a logit "
                             "loss such as prob_mae, mae or kl")


DFAD_PRESETS = {
    "paper": Preset(
        generator=dict(noise_dim=32, hidden=[64, 128, 256], lr=0.005, student_steps=5, generator_steps=5,
                       discrepancy="mae", adversarial_weight=1.0, warmup_steps=0, bn_weight=0.0, balance_weight=0.0,
                       type_prior=False, replay=0, student_mode="train"),
        distill=dict(loss="mae", lr=0.005, weight_decay=5e-4, lr_schedule="constant", batch_size=128),
        doc="DFAD-GNN as published (Zhuang et al., IJCAI 2022) where it could be read, its authors' group's port "
            "(GammaGL) elsewhere"),
}
"""DFAD-GNN's presets. ``paper``: the L1 game on both sides (DFAD-GNN Eq. 3-5: the student minimises, the generator
maximises, the mean absolute difference of teacher and student *logits*); the student trained with Adam and weight
decay 5e-4 (the paper). The paper's method and experiment sections could not be read here
(``../shared/reference/methods.md``), so the rest follows the port by the authors' group (GammaGL
``examples/dfad_gnn``): noise of width 32, a generator trunk 64-128-256, Adam at 0.005 for generator and student
(constant), 5 student steps then 5 generator steps, batches of 128, no priors.

Where both are silent or the port cannot be followed we chose: the trunk's layers are dfkd's (Linear, LayerNorm,
LeakyReLU; the port uses tanh and dropout); edges and node types are drawn with straight-through relaxations (the
port's argmax and threshold pass no gradient to the generator); node counts and the initial edge density come from
the structure source (the port: 40 nodes, or the first training graph's count); the student steps against the
generator in the mode the distiller holds it (train: dropout live), as image-domain DFAD does.
"""


@contextlib.contextmanager
def frozen_batchnorm_statistics(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in train mode without moving its BatchNorm running statistics (momentum 0)."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(layers, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


@contextlib.contextmanager
def student_mode(student: nn.Module, mode: str) -> Iterator[None]:
    """The student as the generator sees it (``AdversarialConfig.student_mode``): ``train`` with its BatchNorm
    running statistics frozen, or ``eval``; its own mode is restored afterwards."""
    with eval_mode(student) if mode == "eval" else frozen_batchnorm_statistics(student):
        yield


def hard_edges(batch: Batch) -> Batch:
    """``batch`` with only its edges of weight > 0.5 and no ``edge_weight`` (node features, still differentiable,
    kept): what a teacher whose forward takes no edge weights sees of a relaxed generator batch."""
    keep = batch.edge_weight.detach() > 0.5
    return Batch(x=batch.x, edge_index=batch.edge_index[:, keep], batch=batch.batch, ptr=batch.ptr, y=batch.y)


def class_imbalance(logits: Tensor) -> Tensor:
    r""":math:`\log C - H(\bar p)` for ``[B, C]`` logits: 0 when the batch-mean prediction is uniform."""
    mean = torch.softmax(logits, -1).mean(0)
    return math.log(logits.size(-1)) + (mean * torch.log(mean + 1e-12)).sum()


@register_generator("dfad")
class AdversarialGraphGenerator(ShardedGeneratorStep, OnlineGraphGenerator):
    """DFAD-GNN generator (see module docstring); plugs into the distiller as an online source. Its generator
    step can be split over the ranks of a process group (:class:`~dfkd.generators.sharding.ShardedGeneratorStep`).
    """

    config_cls = AdversarialConfig
    presets = DFAD_PRESETS
    network: Optional[GraphDecoder] = None
    output_range: Optional[Tensor] = None  # [2, T] bounded regression game (see AdversarialConfig.output_bound)

    @property
    def update_every(self) -> int:
        return self.config.student_steps

    @property
    def generator_steps(self) -> int:
        return self.config.generator_steps

    def latent_dim(self) -> int:
        return self.config.noise_dim

    def parameters(self) -> List[nn.Parameter]:
        """What the generator's optimiser trains."""
        return list(self.network.parameters())

    def build(self, seed: int = 0) -> "AdversarialGraphGenerator":
        cfg, spec = self.config, self.feature_spec
        self.infer_structure(seed, needed=cfg.init_degree is None)
        low, high = self.node_range()
        gen = torch.Generator().manual_seed(seed)
        degree = self.mean_degree(cfg.init_degree)
        p0 = min(max(degree / max((low + high) / 2 - 1, 1), 0.01), 0.99)
        type_logits = self.type_prior = None  # [F] node-type distribution (GraphGenerator.fit_type_prior)
        sources = self.structure_sources(cfg.init_degree)
        if spec.encoding == "one_hot":
            counts = sample_node_counts(64, low, high, gen)
            pairs, _ = candidate_pairs(counts)
            edges = undirected(pairs[:, torch.rand(pairs.size(1), generator=gen) < p0]).to(self.device)
            self.type_prior, sources["node types"] = self.fit_type_prior(
                edges, node_to_graph(counts).to(self.device), 64, cfg.type_prior)
            if self.type_prior is not None:
                type_logits = torch.log(self.type_prior.clamp(min=1e-4))
        self.log_sources(sources)
        torch.manual_seed(seed)
        self.network = GraphDecoder(self.latent_dim(), high, spec.dim, cfg.hidden,
                                    edge_bias=math.log(p0 / (1 - p0)), type_logits=type_logits).to(self.device)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=cfg.lr)
        self._discrepancy = get_loss(cfg.discrepancy)
        self.output_range = self.teacher_output_range(gen) if self.regression and cfg.output_bound else None
        # Hooks only when the prior is on: they would compute every BN layer's statistics each step.
        self._teacher_weights = accepts_edge_weight(self.teacher)
        if not self._teacher_weights:
            logger.warning("%s: the teacher's forward takes no edge_weight, so it sees the generated graphs' hard "
                           "edges: edge gradients reach the generator through the student only (node types through "
                           "both)", self.registered_name)
        self._bn = BatchNormStatsLoss(self.teacher, cfg.bn_loss) if cfg.bn_weight > 0 else None
        if self._bn is not None and not self._bn.available:
            logger.warning("BatchNorm prior disabled: %s", self._bn.reason)
            self._bn = None
        for _ in range(cfg.warmup_steps):  # no student yet: the priors (and label CE) alone
            self.generator_step(None, 32, gen)
            if self.warmup_finished():
                break
        return self

    @torch.no_grad()
    def teacher_output_range(self, generator: torch.Generator, num_graphs: int = 256) -> Tensor:
        """``[2, T]`` low and high ``output_quantile`` quantiles of a regression teacher's outputs on
        ``num_graphs`` graphs of the generator as it is (at build: its prior-matched start)."""
        batch = self.decode(num_graphs, generator).hard_batch(self.feature_spec)
        out = forward_batch(self.teacher, batch)
        q = self.config.output_quantile
        return torch.quantile(out, torch.tensor([q, 1 - q], device=out.device, dtype=out.dtype), dim=0)

    def adversarial_terms(self, student_out: Tensor, teacher_out: Tensor) -> Dict[str, Tensor]:
        """The adversarial discrepancy (negated, weighted) and, for a bounded regression game, the range term.

        Bounded (:attr:`output_range` ``[2, T]`` = low, high): outputs ``[B, T]`` are clipped to the range and
        scaled to ``[0, 1]`` before the discrepancy, and the teacher's distance beyond the range (in range
        widths, mean over batch and outputs) is added with the same weight, so the generator gains nothing
        by leaving the range and pays for it."""
        weight = self.config.adversarial_weight
        if self.output_range is None:
            return {"adversarial": -weight * self._discrepancy(student_out, teacher_out)}
        low, high = self.output_range
        width = (high - low).clamp(min=1e-6)
        student_c, teacher_c = ((out.clamp(min=low, max=high) - low) / width for out in (student_out, teacher_out))
        beyond = ((teacher_out - high).relu() + (low - teacher_out).relu()) / width
        return {"adversarial": -weight * self._discrepancy(student_c, teacher_c), "range": weight * beyond.mean()}

    def warmup_finished(self) -> bool:
        """Whether warm-up may stop before ``warmup_steps`` (conditional: once the labels are met)."""
        return False

    # --- drawing graphs -------------------------------------------------------------------------
    def latent(self, num_graphs: int, generator: torch.Generator, labels: Optional[Tensor] = None) -> Tensor:
        """``[G, D]`` decoder input (noise here; noise and label code for conditional generators)."""
        return torch.randn(num_graphs, self.config.noise_dim, generator=generator).to(self.device)

    def draw_labels(self, num_graphs: int, generator: torch.Generator) -> Optional[Tensor]:
        """``[G]`` preset labels of a batch (``None``: the generator is not conditioned on labels)."""
        return None

    def draw_counts(self, num_graphs: int, generator: torch.Generator, labels: Optional[Tensor] = None) -> Tensor:
        """``[G]`` node counts, uniform on :meth:`node_range` (conditional generators: per preset label)."""
        return sample_node_counts(num_graphs, *self.node_range(), generator)

    def decode(self, num_graphs: int, generator: torch.Generator, labels: Optional[Tensor] = None) -> DecodedGraphs:
        """Draw ``num_graphs`` relaxed graphs (for the preset ``labels`` when conditional)."""
        labels = self.draw_labels(num_graphs, generator) if labels is None else labels.to(self.device)
        counts = self.draw_counts(num_graphs, generator, labels)
        nodes, pairs = self.network(self.latent(num_graphs, generator, labels))
        graphs = decode_graphs(nodes, pairs, counts, self.feature_spec, self.config.relaxation,
                               self.config.temperature, generator)
        graphs.labels = labels
        return graphs

    @torch.no_grad()
    def sample(self, num_graphs: int, generator: torch.Generator, labels: Optional[Tensor] = None) -> Batch:
        """Discrete graphs with ``teacher_logits`` and ``y`` (the preset labels, else the teacher's classes)."""
        return self.sample_shard(num_graphs, generator, 0, num_graphs, labels)

    @torch.no_grad()
    def sample_shard(self, num_graphs: int, generator: torch.Generator, lo: int, hi: int,
                     labels: Optional[Tensor] = None, ctx: Optional[DistContext] = None) -> Batch:
        """Graphs ``lo..hi-1`` of :meth:`sample`'s batch, same random stream: the whole batch is decoded (its
        noise, node counts and edge/type draws), the teacher labels ``lo..hi`` only (``teacher_logits
        [hi - lo, C]``). ``ctx`` is not needed: nothing here couples the graphs of a batch."""
        self._require_built()
        batch = graph_range(self.decode(num_graphs, generator, labels).hard_batch(self.feature_spec), lo, hi)
        batch.teacher_logits = forward_batch(self.teacher, batch)
        if batch.y is None:
            batch.y = batch.teacher_logits.argmax(-1)
        return batch

    # --- the adversarial update -----------------------------------------------------------------
    def generator_loss(self, student: nn.Module, num_graphs: int, generator: torch.Generator, lo: int = 0,
                       hi: Optional[int] = None) -> Dict[str, Tensor]:
        """Named loss terms of one generator batch (``loss`` is their weighted sum, to minimise).

        With ``lo..hi`` (default: all ``num_graphs``) the whole batch is decoded (same random stream) but the
        terms are computed on graphs ``lo..hi-1`` only: the teacher and the student see that share. The
        adversarial and label terms are per-graph means; the BatchNorm prior and the class balance are
        statistics of the graphs they see (a subclass's batch-statistic terms can be made the whole batch's
        in a sharded step with :meth:`reduce_over_shards`).
        """
        cfg = self.config
        batch = graph_range(self.decode(num_graphs, generator).weighted_batch(), lo, num_graphs if hi is None else hi)
        with self._bn or contextlib.nullcontext():
            teacher_out = forward_batch(self.teacher, batch if self._teacher_weights else hard_edges(batch))
        terms: Dict[str, Tensor] = {}
        if cfg.adversarial_weight > 0 and student is not None:
            with student_mode(student, cfg.student_mode):
                student_out = forward_batch(student, batch)
            terms.update(self.adversarial_terms(student_out, teacher_out))
        if self._bn is not None:
            terms["bn"] = cfg.bn_weight * self._bn.loss().to(teacher_out.device)
        if cfg.balance_weight > 0:
            terms["balance"] = cfg.balance_weight * class_imbalance(teacher_out)
        terms.update(self.extra_terms(batch, teacher_out))
        terms["loss"] = sum(terms.values()) if terms else teacher_out.sum() * 0
        terms["teacher_logit_max"] = teacher_out.detach().abs().max()
        return terms

    def extra_terms(self, batch: Batch, teacher_out: Tensor) -> Dict[str, Tensor]:
        """Hook for subclasses (the conditional generator's label cross-entropy)."""
        return {}

    def generator_step(self, student: nn.Module, num_graphs: int, generator: torch.Generator,
                       ctx: Optional[DistContext] = None) -> Dict[str, float]:
        """One Adam step of the generator against ``student``; returns the loss terms (floats).

        With a process group ``ctx`` (:meth:`generator_step_shard`) the step is split over its ranks, each
        computing the terms on its share of the batch, and every rank takes the single-process step; the
        returned terms are the global batch's (:class:`~dfkd.generators.sharding.ShardedGeneratorStep`).
        """
        self._require_built()
        with self._shard(num_graphs, ctx) as (lo, hi, counted):
            terms = self.generator_loss(student, num_graphs, generator, lo, hi)
            loss = terms["loss"]
            self._check_finite(terms, ctx, "generator loss", "the adversarial game diverged: lower the generator lr "
                               "(--set lr=...) and --resume from the last checkpoint")
            params = [p for p in self.parameters() if p.requires_grad]
            # Gradients for the generator only: the student's own .grad stays untouched. In a sharded step the
            # backward of a differentiable reduce_over_shards is a collective: every rank runs it here, together.
            grads = (torch.autograd.grad(loss, params, allow_unused=True) if loss.requires_grad
                     else [None] * len(params))
        for p, g in zip(params, grads):
            p.grad = g
        values = {k: float(v.detach()) for k, v in terms.items()}
        values = self._reduce_step(params, values, counted, num_graphs, ctx, maxima=("teacher_logit_max",))
        self.optimizer.step()
        return values
