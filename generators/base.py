"""The generator interface shared by every family.

A generator knows the frozen teacher (and what its inputs look like) and
nothing of the distiller. *Offline* generators optimise a fixed
:class:`SyntheticGraphSet` once (:meth:`GraphGenerator.generate`); *online*
generators produce fresh batches while the student trains.
"""
from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch

from dfkd.config import Config, FeatureSpec, GraphSizeStats
from dfkd.nn import call_model
from dfkd.nn.teacher import prepare_teacher
from dfkd.parallel import DistContext, slice_graphs
from dfkd.generators.inference import (LAW_METHODS, InferredDegreeLaw, infer_degree_law, support_degree_law,
                                       trained_columns)
from dfkd.generators.priors import estimate_type_prior
from dfkd.generators.presets import Preset, get_preset
from dfkd.generators.synthetic import SyntheticGraphSet

logger = logging.getLogger(__name__)
FALLBACK_DEGREE = 2.0  # mean degree for teachers without size statistics

SOURCE_TITLES = {"option": "set by options", "teacher": "inferred from the teacher",
                 "checkpoint": "from the checkpoint's training statistics",
                 "fallback": "fixed defaults (neither the teacher nor its checkpoint gives them)"}
STRUCTURE_SOURCES = ("checkpoint", "teacher", "auto")  # where the degree law comes from (the ``structure`` option)
DEFAULT_NODES = (10, 30)  # GFKD's reference range when the teacher stores no size statistics
MAX_GRAPH_NODES = 1_000_000  # larger graphs are a damaged checkpoint's statistics, not a request


def check_structure(structure: str) -> None:
    """Validate a config's ``structure`` option (:data:`STRUCTURE_SOURCES`)."""
    if structure not in STRUCTURE_SOURCES:
        raise ValueError(f"unknown structure source {structure!r}: choose one of {', '.join(STRUCTURE_SOURCES)}")


def graph_range(batch: Batch, lo: int, hi: int) -> Batch:
    """Graphs ``lo..hi-1`` of ``batch`` (:func:`dfkd.parallel.slice_graphs`; ``batch`` itself when that is all
    of it)."""
    if lo == 0 and hi == int(batch.num_graphs):
        return batch
    return slice_graphs(batch, lo, hi)


class GraphGenerator(ABC):
    """Base class: teacher, input spec, class count and a config dataclass.

    Args:
        teacher: the frozen model; it is put in eval mode (a warning when it was in train mode) and its
            parameters stop requiring grads; active dropout and BatchNorm without running statistics
            are warned about (:func:`dfkd.nn.teacher.prepare_teacher`).
        feature_spec: node-feature encoding the teacher expects.
        num_classes: teacher output width.
        size_stats: node-count statistics from the teacher checkpoint, if any.
        config: an instance of ``config_cls``; keyword ``overrides`` replace its fields.
        device: where generation runs.
        task: ``classification`` or ``regression`` (the teacher's outputs ``[B, T]`` are values, not
            class logits: families that support it stratify or target the teacher's output range
            instead of classes, see :attr:`supports_regression`).
    """

    config_cls: type = Config
    registered_name: str = ""
    online: bool = False
    conditional: bool = False  # can be asked for graphs of given classes
    # The student loss recipe this family is designed for (``DistillConfig(loss="auto")`` picks it).
    recommended_loss: str = "kl"
    # How this family's students start (``DistillConfig(student_init="auto")``): ``teacher`` where the student can
    # inherit the teacher's weights (dfkd.distill.inherit), else ``random``.
    recommended_student_init: str = "random"
    # Whether the family can serve a regression teacher (label-conditioned families cannot).
    supports_regression: bool = True
    inferred_law: Optional[InferredDegreeLaw] = None  # degree law read off the teacher (infer_structure)
    # Named sets of option values (generators/presets.py), e.g. ``{"paper": Preset(...)}``.
    presets: Dict[str, Preset] = {}

    def __init__(self, teacher: nn.Module, feature_spec: FeatureSpec, num_classes: int,
                 size_stats: Optional[GraphSizeStats] = None, config: Optional[Config] = None,
                 device: str = "cpu", task: str = "classification", **overrides: Any):
        if task not in ("classification", "regression"):
            raise ValueError(f"unknown task {task!r}: choose classification or regression")
        if task == "regression" and (self.conditional or not self.supports_regression):
            raise ValueError(f"generator {self.registered_name!r} draws graphs for classes, which a regression "
                             "teacher has none of: use prior, random, gfkd or dfad")
        config = config or self.config_cls()
        self.config = config.replace(**overrides) if overrides else config
        self.teacher = prepare_teacher(teacher.to(device), feature_spec.dim, torch.device(device))
        self.feature_spec, self.num_classes, self.size_stats = feature_spec, num_classes, size_stats
        self.task = task
        self.device = torch.device(device)

    @property
    def regression(self) -> bool:
        """Whether the teacher is a regression model (outputs are values, not class logits)."""
        return self.task == "regression"

    @classmethod
    def from_checkpoint(cls, checkpoint, device: str = "cpu", preset: Optional[str] = None,
                        **overrides: Any) -> "GraphGenerator":
        """Build from a :class:`dfkd.Checkpoint` of the teacher, starting from the named ``preset``'s options
        (:attr:`presets`) when given; ``overrides`` win over both."""
        if preset is not None:
            overrides = {**get_preset(cls, preset).generator, **overrides}
        if checkpoint.feature_spec is None:
            raise ValueError(
                f"{checkpoint.path or 'teacher'}: the checkpoint does not say how node features are encoded; "
                "pass --features one_hot|degree|continuous (features= in dfkd.load_checkpoint) to say how"
            )
        return cls(checkpoint.build_model(), checkpoint.feature_spec, checkpoint.num_classes,
                   size_stats=checkpoint.size_stats, device=device, task=getattr(checkpoint, "task", "classification"),
                   **overrides)

    @property
    def stored_law(self) -> bool:
        """Whether the checkpoint stores its training graphs' degree mean and variance."""
        return self.size_stats is not None and self.size_stats.degree_var is not None

    def uses_inferred_law(self) -> bool:
        """Whether the degree law is read off the teacher rather than the checkpoint: the config's
        ``structure`` is ``teacher``, or ``auto`` and the checkpoint stores no degree law (generators
        without that option never infer it)."""
        structure = getattr(self.config, "structure", "checkpoint")
        return structure == "teacher" or (structure == "auto" and not self.stored_law)

    def infer_structure(self, seed: int = 0, needed: bool = True,
                        mean_from: str = "all-layers") -> Optional[InferredDegreeLaw]:
        """Set :attr:`inferred_law` when :meth:`uses_inferred_law` and ``needed`` (some part of the law is not
        set by options): from the teacher's BatchNorm statistics (:func:`infer_degree_law`, its mean degree read
        where ``mean_from`` says), else, for degree-encoded features, from the degrees its first layer was
        trained on (:func:`support_degree_law`)."""
        self.inferred_law = None
        if needed and self.uses_inferred_law():
            spec = self.feature_spec
            law = infer_degree_law(self.teacher, spec, self.node_range(), seed=seed, mean_from=mean_from)
            if law is None and spec.encoding == "degree":
                columns = trained_columns(self.teacher, spec.dim)
                law = support_degree_law(columns) if columns is not None else None
            self.inferred_law = law
        return self.inferred_law

    def mean_degree(self, configured: Optional[float] = None) -> float:
        """The mean node degree to generate: ``configured`` when given (0 asks for edgeless graphs), else
        the law inferred from the teacher (:meth:`infer_structure`), else the teacher's training mean from
        its size statistics, else 2."""
        if configured is not None:
            return float(configured)
        if self.inferred_law is not None:
            return self.inferred_law.mean_degree
        return self.size_stats.mean_degree if self.size_stats else FALLBACK_DEGREE

    def degree_dispersion(self, configured: Optional[float] = None) -> float:
        """Index of dispersion ``var / mean`` of the node degree, in the same order as :meth:`mean_degree`;
        1 (Erdős–Rényi) when nothing gives it."""
        if configured is None:
            law, stats = self.inferred_law, self.size_stats
            configured = law.dispersion if law else (stats.degree_dispersion if stats else None) or 1.0
        return max(configured, 1e-3)

    def node_range(self) -> Tuple[int, int]:
        """``(min, max)`` node count: the config's, else from the teacher's training statistics (same
        minimum and mean), else GFKD's 10-30."""
        lo, hi = getattr(self.config, "min_nodes", None), getattr(self.config, "max_nodes", None)
        if self.size_stats is not None:
            stats = self.size_stats
            lo = lo if lo is not None else max(2, stats.min_nodes)
            # Uniform on [min, 2·mean − min] keeps the training mean; [min, max] would not for skewed
            # sizes (PROTEINS: mean 39, max 620, so graphs 8x too large on average).
            hi = hi if hi is not None else max(lo, min(stats.max_nodes, round(2 * stats.mean_nodes) - lo))
        lo, hi = (lo if lo is not None else DEFAULT_NODES[0]), (hi if hi is not None else DEFAULT_NODES[1])
        if not 1 <= lo <= hi:
            raise ValueError(f"invalid node range {lo}:{hi}: need 1 <= min <= max")
        if hi > MAX_GRAPH_NODES:  # a damaged or hostile checkpoint's statistics: refuse before allocating
            raise ValueError(f"node range {lo}:{hi} is beyond {MAX_GRAPH_NODES:,} nodes per graph (from the teacher's "
                             "size statistics unless you set it): pass --nodes MIN:MAX (min_nodes / max_nodes)")
        return lo, hi

    def node_range_source(self) -> str:
        """Where :meth:`node_range` comes from: ``option``, ``checkpoint`` or ``fallback``."""
        cfg = self.config
        if getattr(cfg, "min_nodes", None) is not None and getattr(cfg, "max_nodes", None) is not None:
            return "option"
        return "checkpoint" if self.size_stats is not None else "fallback"

    def degree_source(self, configured: Optional[float] = None) -> str:
        """Where the degree law comes from: ``option``, ``teacher``, ``checkpoint`` or ``fallback``."""
        if configured is not None:
            return "option"
        if self.inferred_law is not None:
            return "teacher"
        return "checkpoint" if self.size_stats is not None else "fallback"

    def structure_sources(self, configured_degree: Optional[float] = None) -> Dict[str, Tuple[str, str]]:
        """The quantities every generator draws graphs from: ``{name: (source, value)}`` (see
        :meth:`log_sources`); generators add their own (:meth:`dispersion_entry`, node types)."""
        lo, hi = self.node_range()
        source = self.degree_source(configured_degree)
        how = f" ({LAW_METHODS[self.inferred_law.method]})" if source == "teacher" else ""
        return {"node counts": (self.node_range_source(), f"{lo}-{hi}"),
                "mean degree": (source, f"{self.mean_degree(configured_degree):.2f}{how}")}

    def dispersion_entry(self, configured: Optional[float] = None) -> Tuple[str, str]:
        """Source entry of :meth:`degree_dispersion`."""
        dispersion = self.degree_dispersion(configured)
        source = self.degree_source(configured)
        if source == "checkpoint" and not self.stored_law:
            source = "fallback"
        return source, f"{dispersion:.2f}" + (" (Erdős–Rényi)" if dispersion == 1.0 else "")

    def fit_type_prior(self, edge_index: Tensor, node_graph: Tensor, num_graphs: int, enabled: bool = True,
                       uniform_fallback: bool = True) -> Tuple[Optional[Tensor], Tuple[str, str]]:
        """The distribution of the one-hot node features (types, or degrees for degree encodings) and its
        source entry (:meth:`log_sources`).

        Given frequencies win (:meth:`given_type_frequencies`: the config's ``type_frequencies``, else the
        checkpoint's training-set ones); shares given for some types only (:meth:`known_type_shares`) replace
        theirs in whatever distribution the rest of this method finds, the others scaled to the remaining mass
        (:func:`with_known_shares`). Otherwise inverted from the teacher's first BatchNorm layer on the
        structure given (:func:`~dfkd.generators.priors.estimate_type_prior`; on BatchNorm teachers it puts
        0.03-0.5% on types never seen in training, so nothing is masked: the weight test below can miss a
        column that short training left inside its initial bound). A teacher without BatchNorm gets, with
        ``uniform_fallback``, the uniform distribution over the columns its first layer was trained on
        (:func:`~dfkd.generators.inference.trained_columns`) when some are untrained, with a warning that names
        the option. ``None`` (uniform over all) when disabled by option or the teacher gives nothing.

        Args:
            edge_index: ``[2, E]`` structure to run the teacher on; node_graph: ``[N]``.
        """
        if not enabled:
            return None, ("option", "uniform")
        probs, entry = self._type_prior(edge_index, node_graph, num_graphs, uniform_fallback)
        known = self.known_type_shares()
        if known is None:
            return probs, entry
        rest = 1.0 - sum(known.values())
        return (with_known_shares(known, probs, self.feature_spec.dim).to(edge_index.device),
                ("option", f"{len(known)} shares as set, the other {rest:.1%} of the nodes {entry[1]}"))

    def _type_prior(self, edge_index: Tensor, node_graph: Tensor, num_graphs: int,
                    uniform_fallback: bool) -> Tuple[Optional[Tensor], Tuple[str, str]]:
        """:meth:`fit_type_prior` before the shares known by option (``type_frequencies`` as a dict)."""
        given = self.given_type_frequencies()
        if given is not None:
            return given[0].to(edge_index.device), given[1]
        dim = self.feature_spec.dim
        fitted, _ = estimate_type_prior(self.teacher, dim, edge_index, node_graph, num_graphs)
        if fitted is not None:
            return fitted, ("teacher", "from its first BatchNorm layer")
        columns = trained_columns(self.teacher, dim)
        if uniform_fallback and columns is not None and not bool(columns.all()):
            # A warning: the students of such teachers hinge on the shares (given_type_frequencies).
            return ((columns.float() / columns.sum()).to(edge_index.device),
                    ("fallback", f"uniform among the {int(columns.sum())} of {dim} its first layer was trained on "
                                 f"(columns {column_ranges(columns)}; no BatchNorm statistics to read their shares "
                                 "from: --set type_frequencies=[...] if you know them, or {column: share, ...} for "
                                 "the commonest types)"))
        return None, ("fallback", "uniform (the teacher has no BatchNorm running statistics to invert a "
                                  "distribution from)")

    def known_type_shares(self) -> Optional[Dict[int, float]]:
        """The config's ``type_frequencies`` when it names the shares of some node types only (``{column:
        share}``), checked against the feature width; ``None`` otherwise."""
        known = getattr(self.config, "type_frequencies", None)
        if not isinstance(known, dict):
            return None
        dim = self.feature_spec.dim
        outside = sorted(c for c in known if c >= dim)
        if outside:
            raise ValueError(f"type_frequencies names column(s) {outside}, but the one-hot node feature has {dim} "
                             f"columns (0-{dim - 1}): give shares by column index")
        return known

    def given_type_frequencies(self) -> Optional[Tuple[Tensor, Tuple[str, str]]]:
        """``([F] distribution, source entry)`` of the one-hot node features when it is known rather than
        inferred: the config's ``type_frequencies`` (an option), else the checkpoint's
        ``size_stats.type_frequencies`` (its training nodes' shares); ``None`` when neither is given.

        A teacher without BatchNorm has no statistics to read types from; for an NCI1 GIN without normalisation
        its GIN student's agreement with it on the test graphs goes from 0.51 (uniform among the trained types) to
        0.94 with the training shares (3 seeds, ``benchmarks/results/teacher_only.md``).
        """
        dim = self.feature_spec.dim
        stats = self.size_stats.type_frequencies if self.size_stats is not None else None
        for values, source, name in ((getattr(self.config, "type_frequencies", None), "option", "type_frequencies"),
                                     (stats, "checkpoint", "the checkpoint's size_stats.type_frequencies")):
            if values is None or isinstance(values, dict):  # shares of some types only: known_type_shares
                continue
            if len(values) != dim:
                raise ValueError(f"{name} has {len(values)} entries for a {dim}-wide one-hot node feature: give one "
                                 "per column, in the feature's column order")
            probs = torch.tensor(values, dtype=torch.float)
            entry = "as set" if source == "option" else "its training nodes' shares"
            return probs / probs.sum(), (source, entry)
        return None

    def log_sources(self, quantities: Dict[str, Tuple[str, str]]) -> None:
        """Say at the start of a run where its structure comes from, one line per source: set by options,
        inferred from the teacher, taken from the checkpoint's training statistics, and, as a warning, the
        fixed defaults used because neither had them."""
        by_source: Dict[str, list] = {source: [] for source in SOURCE_TITLES}
        for name, (source, value) in quantities.items():
            by_source[source].append(f"{name} {value}")
        for source, items in by_source.items():
            if items and source != "fallback":
                logger.info("%s: %s: %s", self.registered_name, SOURCE_TITLES[source], ", ".join(items))
        if by_source["fallback"]:
            logger.warning("%s: %s: %s (set them with --nodes MIN:MAX / --set, or give the checkpoint size_stats)",
                           self.registered_name, SOURCE_TITLES["fallback"], ", ".join(by_source["fallback"]))

    def teacher_logits(self, x: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int,
                       edge_weight: Optional[Tensor] = None) -> Tensor:
        return call_model(self.teacher, x, edge_index, batch, num_graphs=num_graphs, edge_weight=edge_weight)

    @torch.no_grad()
    def label_set(self, graphs: SyntheticGraphSet, batch_size: int = 512) -> SyntheticGraphSet:
        """Fill ``graphs.teacher_logits`` with the teacher's outputs."""
        outs = []
        for start in range(0, len(graphs), batch_size):
            b = graphs.batch(range(start, min(start + batch_size, len(graphs)))).to(self.device)
            outs.append(self.teacher_logits(b.x, b.edge_index, b.batch, b.num_graphs).cpu())
        graphs.teacher_logits = torch.cat(outs) if outs else torch.zeros(0, self.num_classes)
        return graphs

    def class_labels(self, classes: Sequence[int], num_graphs: int) -> Tensor:
        """``[G]`` preset labels cycling through ``classes``; a clear error when this generator cannot be
        asked for classes or a class is out of range."""
        if not self.conditional:
            raise ValueError(f"generator {self.registered_name!r} cannot be asked for a class: "
                             "use a conditional generator (--generator conditional)")
        bad = [c for c in classes if not 0 <= c < self.num_classes]
        if bad or not classes:
            raise ValueError(f"class(es) {bad or list(classes)} out of range: the teacher has classes "
                             f"0..{self.num_classes - 1}")
        return torch.tensor(list(classes))[torch.arange(num_graphs) % len(classes)]

    def balanced_targets(self, num_graphs: int, generator: torch.Generator) -> Tensor:
        """``[G]`` class targets, each class equally often (up to one), in random order."""
        targets = torch.arange(num_graphs) % self.num_classes
        return targets[torch.randperm(num_graphs, generator=generator)]

    def spread_targets(self, num_graphs: int, low: float, high: float, generator: torch.Generator) -> Tensor:
        """``[G, T]`` regression targets spread evenly over ``[low, high]`` (bin centres of ``G`` equal bins,
        every output column alike), in random order: the regression analogue of :meth:`balanced_targets`."""
        centres = low + (torch.arange(num_graphs, dtype=torch.float) + 0.5) * (high - low) / max(num_graphs, 1)
        centres = centres[torch.randperm(num_graphs, generator=generator)]
        return centres.unsqueeze(1).repeat(1, self.num_classes)

    @abstractmethod
    def generate(self, num_graphs: int, seed: int = 0, show_progress: bool = True) -> SyntheticGraphSet:
        """Synthesise ``num_graphs`` graphs."""

    def __repr__(self) -> str:
        default = self.config_cls()
        changed = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)
                   if getattr(self.config, f.name) != getattr(default, f.name)}
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"


class OnlineGraphGenerator(GraphGenerator):
    """A generator that draws fresh graphs while the student trains; generator networks (DFAD,
    conditional) also keep learning against the student.

    The distiller drives it through :class:`dfkd.distill.sources.OnlineSource`: :meth:`sample` gives
    the student a fresh batch, :meth:`generator_step` updates the generator against the current
    student every ``update_every`` student steps (never when ``generator_steps`` is 0). Call
    :meth:`build` once (seeded) before use. In multi-process distillation every rank calls
    :meth:`sample_shard` and :meth:`generator_step_shard` instead, each doing its share of the work
    (:mod:`dfkd.parallel` primitives; the distiller's side: :mod:`dfkd.distill.distributed`).
    """

    online = True
    network: Optional[nn.Module] = None
    optimizer: torch.optim.Optimizer
    student: Optional[nn.Module] = None  # the student being trained, for student-aware draws (attach_student)

    @property
    def built(self) -> bool:
        """Whether :meth:`build` has run."""
        return self.network is not None

    def _require_built(self) -> None:
        if not self.built:
            raise RuntimeError(f"{type(self).__name__}.build(seed) must be called before sampling")

    @abstractmethod
    def build(self, seed: int = 0) -> "OnlineGraphGenerator":
        """Create the generator network and its optimiser, seeded."""

    @abstractmethod
    def sample(self, num_graphs: int, generator: torch.Generator, labels: Optional[Tensor] = None) -> Batch:
        """A detached batch of discrete graphs with ``teacher_logits [B, C]`` and ``y [B]`` (the preset
        ``labels`` of a conditional generator, else the class each graph stands for; regression
        teachers: ``teacher_logits [B, T]`` are the teacher's values)."""

    def sample_shard(self, num_graphs: int, generator: torch.Generator, lo: int, hi: int,
                     labels: Optional[Tensor] = None, ctx: Optional[DistContext] = None) -> Batch:
        """Graphs ``lo..hi-1`` of the batch :meth:`sample` would draw (``teacher_logits [hi - lo, C]``, ``y``
        as there), consuming ``generator`` exactly as :meth:`sample` does, so processes that share the
        random stream stay in step for the next draw.

        This is how multi-process distillation shards generation (:mod:`dfkd.distill.distributed`): every
        rank calls it with the same ``num_graphs`` and random state and its own ``lo..hi``. ``ctx``: the
        process group (a :class:`dfkd.parallel.DistContext`) when every rank calls together;
        families whose draw couples the graphs of a batch (``prior``'s class balancing) split that step
        over its ranks. Default: the whole batch is drawn and labelled, then sliced (no saving);
        families override it to run the teacher, the costly part, on ``lo..hi`` only.
        """
        return graph_range(self.sample(num_graphs, generator, labels), lo, hi)

    def attach_student(self, student: nn.Module) -> None:
        """Let draws look at ``student``, the model being trained (the distiller calls it once, before the first
        draw). Families that choose graphs by how the student does on them read it in :meth:`sample`; the
        student is only ever run without gradient, in eval mode, and left as it was."""
        self.student = student

    @abstractmethod
    def generator_step(self, student: nn.Module, num_graphs: int, generator: torch.Generator) -> Dict[str, float]:
        """One optimiser step of the generator against ``student``; returns the loss terms."""

    def generator_step_shard(self, student: nn.Module, num_graphs: int, generator: torch.Generator,
                             ctx: DistContext) -> Dict[str, float]:
        """:meth:`generator_step` taken together by every rank of the process group ``ctx`` (a
        :class:`dfkd.parallel.DistContext`), leaving every rank's generator as a single process's
        step would; returns the global batch's loss terms. Default: the whole step on every rank (replicated:
        identical, no communication); families override it to split the batch over the ranks.
        """
        return self.generator_step(student, num_graphs, generator)

    @property
    def update_every(self) -> int:
        """Student steps per generator update."""
        return 1

    @property
    def generator_steps(self) -> int:
        """Generator updates each time one is due."""
        return 1

    def state_dict(self) -> Dict[str, Any]:
        return {"network": self.network.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])

    def generate(self, num_graphs: int, seed: int = 0, show_progress: bool = True,
                 classes: Optional[Sequence[int]] = None) -> SyntheticGraphSet:
        """Sample ``num_graphs`` graphs from the generator in its current state (built if needed);
        conditional generators can be asked for ``classes`` (used in turn)."""
        if num_graphs < 1:
            raise ValueError(f"num_graphs must be >= 1, got {num_graphs}")
        labels = None if classes is None else self.class_labels(classes, num_graphs)
        if not self.built:
            self.build(seed)
        batch = self.sample(num_graphs, torch.Generator().manual_seed(seed), labels)
        # Regression: the target of every graph is the teacher's value ([G, T]).
        target = batch.teacher_logits.view(num_graphs, -1).cpu() if self.regression else batch.y.cpu()
        return SyntheticGraphSet.from_edges(
            batch.x.cpu(), batch.edge_index.cpu(), batch.batch.cpu(), num_graphs, target, self.feature_spec,
            teacher_logits=batch.teacher_logits.cpu(),
            meta={"generator": self.registered_name, "config": self.config.to_dict(), "seed": seed})


def with_known_shares(known: Dict[int, float], probs: Optional[Tensor], dim: int) -> Tensor:
    """``[F]`` distribution with the ``known`` shares (``{column: share}``, summing to at most 1) in their
    columns and the remaining mass spread over the other columns in proportion to ``probs [F]`` (``None``:
    uniform); evenly over them when ``probs`` puts nothing there. Normalised, so shares summing to less than 1
    over every column are scaled up."""
    base = probs.detach().float().cpu().clone() if probs is not None else torch.full((dim,), 1.0 / dim)
    named = torch.tensor(sorted(known))
    base[named] = 0.0
    rest = max(1.0 - sum(known.values()), 0.0)
    if float(base.sum()) > 0:
        base *= rest / float(base.sum())
    elif named.numel() < dim:
        others = torch.ones(dim, dtype=torch.bool)
        others[named] = False
        base[others] = rest / int(others.sum())
    base[named] = torch.tensor([known[int(c)] for c in named], dtype=torch.float)
    if float(base.sum()) <= 0:
        raise ValueError("type_frequencies gives every column a zero share: name at least one type that occurs")
    return base / base.sum()


def column_ranges(mask: Tensor) -> str:
    """The set columns of ``mask [F]`` as ranges, e.g. ``0-3, 5, 7-9``."""
    ranges: List[List[int]] = []
    for column in mask.nonzero().flatten().tolist():
        if ranges and column == ranges[-1][1] + 1:
            ranges[-1][1] = column
        else:
            ranges.append([column, column])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
