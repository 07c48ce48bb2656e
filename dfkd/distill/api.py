"""End-to-end data-free distillation: teacher checkpoint → generator → student checkpoint + report."""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import time
from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import nn

from dfkd.checkpoint import Checkpoint, encoding_spec, load_checkpoint
from dfkd.config import FeatureSpec, GraphSizeStats
from dfkd.distill import distributed
from dfkd.distill.distiller import DistillConfig, Distiller, DistillReport
from dfkd.distill.inherit import why_not_inheritable
from dfkd.distill.sources import GraphListSource, GraphSource, OnlineSource, SyntheticSetSource
from dfkd.generators import GraphGenerator, SyntheticGraphSet, get_generator_class
from dfkd.generators.presets import get_preset
from dfkd.evaluate import evaluate
from dfkd.losses import parse_recipe
from dfkd.losses.logits import REGRESSION_DEFAULT_LOSS, check_regression_recipe, is_classification_only
from dfkd.nn import build_model, count_parameters, parse_arch, use_precision
from dfkd.nn.precision import check_precision
from dfkd.trackers import Tracker, make_tracker
from dfkd.version import __version__

logger = logging.getLogger(__name__)

DEFAULT_STUDENT = "gin-2-32"
# The default generator: chosen on 2026-11-28 on test figures (archived leaderboard), re-checked on the
# validation figures of benchmarks/results/leaderboard.md (see generators/prior.py).
DEFAULT_GENERATOR = "prior"
DEFAULT_NUM_GRAPHS = 256
SYNTHETIC_FILE = "synthetic.pt"
STATE_FILE = "distill_state.pt"


@dataclasses.dataclass
class DistillResult:
    """The trained student (eval mode), its checkpoint, the report and the synthetic graphs used."""

    student: nn.Module
    checkpoint: Checkpoint
    report: DistillReport
    graphs: Optional[SyntheticGraphSet]


# What a student of the teacher's own family takes from it unless told otherwise (``options``).
TEACHER_LIKE_FIELDS = ("pool", "jk", "batch_norm", "bias_after_propagation")


def build_student(spec: str, teacher: Checkpoint, **options: Any) -> nn.Module:
    """A zoo model with the teacher's input width and class count; one of the teacher's family (a zoo teacher,
    or one recognised as such) also takes its readout, normalisation and bias placement
    (:data:`TEACHER_LIKE_FIELDS`, so that it can start from the teacher's weights, :mod:`dfkd.distill.inherit`)
    unless ``options`` set them."""
    config = teacher.model_config
    if config is not None and parse_arch(spec)["arch"] == config.arch:
        options = {**{field: getattr(config, field) for field in TEACHER_LIKE_FIELDS}, **options}
    return build_model(spec, in_channels=config.in_channels if config else teacher.feature_spec.dim,
                       out_channels=teacher.num_classes, **options)


def make_generator(name: str, teacher: Checkpoint, device: str = "cpu", preset: Optional[str] = None,
                   **options: Any) -> GraphGenerator:
    """Resolve a registered generator and bind it to the teacher; options override its config, which starts
    from the family's named ``preset`` when given (``"paper"`` for ``gfkd`` and ``dfad``).

    For a regression teacher, a generator whose ``discrepancy`` (DFAD) defaults to a class-probability
    loss (``prob_mae``) gets ``mae`` (L1 on the outputs) instead; asking for a class-only one explicitly
    is an error, and so are label-conditioned generators (``conditional``).
    """
    cls = get_generator_class(name)
    if preset is not None:
        options = {**get_preset(cls, preset).generator, **options}
    names = {f.name for f in dataclasses.fields(cls.config_cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"generator {name!r} has no option(s) {unknown}: choose from {sorted(names)}")
    if getattr(teacher, "task", "classification") == "regression" and "discrepancy" in names:
        if "discrepancy" in options:
            if is_classification_only(str(options["discrepancy"])):
                raise ValueError(f"discrepancy {options['discrepancy']!r} compares class probabilities, which a "
                                 "regression teacher does not have: use discrepancy=mae or mse")
        elif is_classification_only(getattr(cls.config_cls(), "discrepancy")):
            options = {**options, "discrepancy": "mae"}
            logger.info("regression teacher: generator %r maximises the L1 discrepancy of the outputs (mae)", name)
    return cls.from_checkpoint(teacher, device=device, **options)


def preset_config(generator: str, preset: str, **changes: Any) -> DistillConfig:
    """The student recipe of ``generator``'s named ``preset`` with ``changes`` (DistillConfig fields) applied."""
    return DistillConfig(**{**get_preset(get_generator_class(generator), preset).distill, **changes})


def distill_student(
    teacher: Union[str, Checkpoint],
    student: Union[str, nn.Module] = DEFAULT_STUDENT,
    generator: str = DEFAULT_GENERATOR,
    num_graphs: int = DEFAULT_NUM_GRAPHS,
    generator_options: Optional[Dict[str, Any]] = None,
    config: Optional[DistillConfig] = None,
    preset: Optional[str] = None,
    eval_graphs: Optional[Sequence] = None,
    real_graphs: Optional[Sequence] = None,
    out: Optional[str] = None,
    work_dir: Optional[str] = None,
    resume: bool = False,
    show_progress: bool = True,
    device: str = "cpu",
    trust: bool = False,
    student_options: Optional[Dict[str, Any]] = None,
    assistants: Sequence[str] = (),
    provenance: Optional[Dict[str, Any]] = None,
    trackers: Sequence[Union[str, Tracker]] = (),
) -> DistillResult:
    """Distil ``teacher`` into ``student`` without real training data.

    Args:
        teacher: checkpoint path or :class:`Checkpoint`.
        student: architecture string (``gin-2-32``) or a model.
        generator: registered generator name (``prior``, ``gfkd``, ``dfad``, ``conditional``, ``random``);
            ignored with ``real_graphs``.
        num_graphs: synthetic graphs to generate (offline generators) or per epoch (online ones).
        generator_options: overrides of the generator's config dataclass.
        config: the distillation recipe (seed included).
        preset: a named preset of the generator family (``"paper"`` for ``gfkd`` and ``dfad``: the method as
            published): its generator options (``generator_options`` win over them) and, when ``config`` is not
            given, its student recipe (:func:`preset_config` builds that recipe with changes).
        eval_graphs: labelled real graphs for reporting only.
        real_graphs: distil on these real graphs instead (the real-data KD ceiling).
        out: student checkpoint path; the report goes beside it as ``.report.json``. For a readable report
            with training curves, size and latency, pass ``result.report`` to :func:`dfkd.report.write_report`.
        work_dir: where the synthetic set and resumable state live (default ``<out>.run/``).
        resume: reuse the synthetic set and continue the distillation state found in ``work_dir``.
        trackers: experiment trackers (:mod:`dfkd.trackers`: ``"tensorboard:DIR"``, ``"mlflow"``,
            ``"mlflow:URI"`` or :class:`~dfkd.trackers.Tracker` objects) that receive the settings, every epoch of
            the student's training and the final figures; closed at the end.
        provenance: extra facts recorded in the student checkpoint's provenance (plain values; the command line
            records the run's resolved recipe there).
        assistants: teacher-assistant chain (Mirzadeh et al., AAAI 2020), e.g. ``["gin-3-48"]``: the
            teacher is distilled into the first assistant, that one into the next, the last into the
            student, each stage with the same recipe on graphs of the same source (drawn from the
            original teacher's priors, labelled by the stage's teacher).

    Regression teachers (checkpoint ``task="regression"``, outputs ``[B, T]`` values): the ``auto`` loss
    is ``mse`` on the outputs, recipes with class-probability or label terms (``kl``, ``dynamic_kl``,
    ``prob_mae``, ``label_ce``) are refused, ``prior`` stratifies its pools over the teacher's output
    range, ``gfkd`` optimises towards value targets spread over that range, ``dfad`` maximises the L1
    discrepancy within the teacher's output range on its initial graphs (``output_bound``), ``conditional``
    is refused; the report's metrics are R², MAE and RMSE (see
    :func:`dfkd.evaluate.compare_regression`).

    Multi-process: under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) or inside
    :func:`dfkd.distill.distributed.launch`, every process calls this function; the student trains with
    DDP on shards of every global batch and only rank 0 evaluates and writes files
    (:mod:`dfkd.distill.distributed`).
    """
    if preset is not None:
        generator_options = {**get_preset(get_generator_class(generator), preset).generator,
                             **(generator_options or {})}
        config = config or preset_config(generator, preset)
    config = config or DistillConfig()
    device = distributed.init_from_env(device)
    check_precision(config.precision, device)  # before any generation
    main = distributed.is_main()
    show_progress = show_progress and main
    # Before any work: a missing extra (pip install 'dfkd[mlflow]') fails at once.
    trackers = [make_tracker(t) if isinstance(t, str) else t for t in trackers] if main else []
    ckpt = teacher if isinstance(teacher, Checkpoint) else load_checkpoint(teacher, trust=trust)
    regression = ckpt.task == "regression"
    if config.loss == "auto":
        if regression:
            loss = REGRESSION_DEFAULT_LOSS
        else:
            loss = "kl" if real_graphs is not None else get_generator_class(generator).recommended_loss
        config = config.replace(loss=loss)
    # What student_init="auto" becomes where the student can inherit (_fit checks that it can, stage by stage).
    recommended_init = "random" if real_graphs is not None else get_generator_class(generator).recommended_student_init
    if regression:
        check_regression_recipe(parse_recipe(config.loss))
    work_dir = work_dir or (f"{out}.run" if out else None)
    if resume and not work_dir:
        raise ValueError("resume needs --out or --work-dir to find the saved state")
    if work_dir:
        os.makedirs(work_dir, exist_ok=True)
    gen_name = "real" if real_graphs is not None else generator
    builder = _SourceBuilder(ckpt, generator, num_graphs, generator_options or {}, config, real_graphs, work_dir,
                             resume, show_progress, device)

    teacher_model, chain = ckpt.build_model(), []
    for index, arch in enumerate(assistants):
        torch.manual_seed(config.seed)
        assistant = build_student(arch, ckpt)
        stage_dir = os.path.join(work_dir, f"assistant-{index + 1}") if work_dir else None
        logger.info("teacher-assistant chain: stage %d, %s", index + 1, arch)
        stage = _fit(teacher_model, assistant, builder.source(relabel=index > 0),
                     _student_init(config, recommended_init, assistant, teacher_model), eval_graphs, stage_dir,
                     resume, device, show_progress, task=ckpt.task)
        chain.append({"assistant": arch, "parameters": stage.student_parameters, **stage.final})
        teacher_model = assistant
    student_model = student if isinstance(student, nn.Module) else None
    if student_model is None:
        torch.manual_seed(config.seed)
        student_model = build_student(student, ckpt, **(student_options or {}))
    source = builder.source(relabel=bool(assistants))
    try:
        for tracker in trackers:
            tracker.log_params({"generator": gen_name, "preset": preset, "student": _arch(getattr(student_model,
                                "config", None)), "teacher": ckpt.path, "num_graphs": num_graphs,
                                "generator_options": generator_options or {}, "distill": config.to_dict()})
        report = _fit(teacher_model, student_model, source,
                      _student_init(config, recommended_init, student_model, teacher_model), eval_graphs, work_dir,
                      resume, device, show_progress, task=ckpt.task, trackers=trackers)
    finally:
        for tracker in trackers:
            tracker.close()

    graphs, gen_seconds = builder.graphs, builder.seconds
    if builder.online is not None and main:
        # A sample of the final generator, for inspection (dfkd inspect, GraphML export).
        with use_precision(config.precision):
            graphs = builder.online.generate(min(num_graphs, DEFAULT_NUM_GRAPHS), seed=config.seed)
        gen_seconds += sum(s.seconds for s in builder.online_sources)
        if work_dir:
            graphs.save(os.path.join(work_dir, SYNTHETIC_FILE))
    report.generation_seconds = gen_seconds
    report.extra.update({"generator": gen_name, "preset": preset,
                         "generator_config": (graphs.meta.get("config") if graphs else None),
                         "teacher": ckpt.path, "teacher_provenance": ckpt.provenance,
                         # For the report (dfkd.report): which models, written by which dfkd, when.
                         "teacher_arch": _arch(ckpt.model_config), "student": out,
                         "student_arch": _arch(getattr(student_model, "config", None)), "task": ckpt.task,
                         "dfkd_version": __version__, "finished": datetime.datetime.now().isoformat(timespec="seconds")})
    if chain:
        # The last stage compared the student with the last assistant: report it against the real teacher.
        report.extra["assistants"] = chain + [{"student_vs_last_assistant": report.final}]
        original = ckpt.build_model()
        report.teacher_parameters = count_parameters(original)
        if eval_graphs and main:
            ev = evaluate(student_model, eval_graphs, teacher=original, device=device, measure_latency=False)
            report.final = ev.metrics()
    student_ckpt = Checkpoint.from_model(
        student_model, task=ckpt.task, feature_spec=ckpt.feature_spec, label_values=list(ckpt.label_values),
        size_stats=ckpt.size_stats,
        provenance={"distilled_from": ckpt.path, "teacher_source": ckpt.provenance.get("source", "dfkd checkpoint"),
                    "generator": gen_name, "data_free": real_graphs is None,
                    "distill_config": config.to_dict(), "metrics": report.final, "dfkd_version": __version__,
                    "assistants": list(assistants),
                    "dataset": ckpt.provenance.get("dataset"), "split": ckpt.provenance.get("split"), "preset": preset,
                    **(provenance or {})},
    )
    if out and main:
        student_ckpt.save(out)
        student_ckpt.path = out
        report.save(report_path(out))
    distributed.barrier()  # the files exist when every rank returns
    return DistillResult(student=student_model.eval(), checkpoint=student_ckpt, report=report, graphs=graphs)


def _student_init(config: DistillConfig, recommended: str, student: nn.Module, teacher: nn.Module) -> DistillConfig:
    """``config`` with ``student_init="auto"`` resolved: ``recommended`` (the generator's) where ``student`` can
    start from ``teacher``'s weights and no teacher head is asked for, else ``random``."""
    if config.student_init != "auto":
        return config
    reason = why_not_inheritable(student, teacher) if recommended == "teacher" else None
    if recommended == "teacher" and config.teacher_head != "off":
        reason = "teacher_head is on"
    if reason is not None:
        logger.info("student initialised at random (student_init=auto): %s", reason)
    return config.replace(student_init="random" if reason is not None else recommended)


def _fit(teacher: nn.Module, student: nn.Module, source: GraphSource, config: DistillConfig,
         eval_graphs: Optional[Sequence], work_dir: Optional[str], resume: bool, device: str,
         show_progress: bool, task: str = "classification", trackers: Sequence[Tracker] = ()) -> DistillReport:
    if work_dir:
        os.makedirs(work_dir, exist_ok=True)
    state_path = os.path.join(work_dir, STATE_FILE) if work_dir else None
    return Distiller(teacher, student, source, config, eval_graphs=eval_graphs, state_path=state_path,
                     device=device, show_progress=show_progress, task=task, trackers=trackers).fit(resume=resume)


class _SourceBuilder:
    """Graph sources of one distillation (one per stage of a teacher-assistant chain): the offline set
    is generated (or reloaded on resume) once and shared; online generators are rebuilt per stage,
    bound to the original teacher."""

    def __init__(self, ckpt: Checkpoint, generator: str, num_graphs: int, options: Dict[str, Any],
                 config: DistillConfig, real_graphs: Optional[Sequence], work_dir: Optional[str], resume: bool,
                 show_progress: bool, device: str):
        self.ckpt, self.generator, self.num_graphs, self.options = ckpt, generator, num_graphs, options
        self.config, self.real_graphs, self.work_dir, self.resume = config, real_graphs, work_dir, resume
        self.show_progress, self.device = show_progress, device
        self.graphs: Optional[SyntheticGraphSet] = None
        self.online = None
        self.online_sources: list = []
        self.seconds = 0.0

    def source(self, relabel: bool = False) -> GraphSource:
        """A fresh source; ``relabel`` drops the original teacher's outputs so the stage's teacher labels.
        Generation runs at the recipe's precision, as the student's training does."""
        with use_precision(self.config.precision):
            return self._source(relabel)

    def _source(self, relabel: bool) -> GraphSource:
        config = self.config
        if self.real_graphs is not None:
            return GraphListSource(self.real_graphs, config.batch_size)
        if get_generator_class(self.generator).online:
            # Online generators learn while the student trains: their state travels in the distiller's.
            start = time.perf_counter()
            self.online = make_generator(self.generator, self.ckpt, device=self.device, **self.options).build(config.seed)
            self.seconds += time.perf_counter() - start  # warm-up steps, if any
            logger.info("training %r online, %d graphs per epoch", self.online, self.num_graphs)
            source = OnlineSource(self.online, self.num_graphs, config.batch_size, self.online.config.collapse_threshold,
                                  replay=getattr(self.online.config, "replay", 0), relabel=relabel)
            self.online_sources.append(source)
            return source
        if self.graphs is None:
            self.graphs = self._offline_set()
        return SyntheticSetSource(self.graphs, config.batch_size, resample=config.resample, relabel=relabel)

    def _offline_set(self) -> SyntheticGraphSet:
        """The fixed synthetic set: generated (or reloaded) by rank 0 and shared with the other ranks."""
        if distributed.context() is None:
            graphs = self._make_offline_set()
        else:  # as CPU tensors: every rank moves its batches to its own device
            state = distributed.broadcast_object(self._make_offline_set().to_dict() if distributed.is_main() else None)
            graphs = SyntheticGraphSet.from_dict(state)
        self.seconds = float(graphs.meta.get("seconds_total", 0.0))
        return graphs

    def _make_offline_set(self) -> SyntheticGraphSet:
        synth_path = os.path.join(self.work_dir, SYNTHETIC_FILE) if self.work_dir else None
        if self.resume and synth_path and os.path.exists(synth_path):
            graphs = SyntheticGraphSet.load(synth_path)
            logger.info("reusing %d synthetic graphs from %s", len(graphs), synth_path)
        else:
            gen = make_generator(self.generator, self.ckpt, device=self.device, **self.options)
            logger.info("generating %d graphs with %r", self.num_graphs, gen)
            start = time.perf_counter()
            graphs = gen.generate(self.num_graphs, seed=self.config.seed, show_progress=self.show_progress)
            graphs.meta["seconds_total"] = time.perf_counter() - start
            if synth_path:
                graphs.save(synth_path)
        self.seconds = float(graphs.meta.get("seconds_total", 0.0))
        return graphs


def _arch(config: Any) -> Optional[str]:
    """``gin-2-32`` for a zoo model's config, ``None`` for any other model."""
    return getattr(config, "short_name", None)


def compress(teacher: nn.Module, student: Union[str, nn.Module] = DEFAULT_STUDENT, *, num_classes: int,
             features: Union[str, FeatureSpec] = "one_hot", in_channels: Optional[int] = None,
             generator: str = DEFAULT_GENERATOR, preset: Optional[str] = None, config: Optional[DistillConfig] = None,
             size_stats: Optional[GraphSizeStats] = None, task: str = "classification", **options: Any) -> nn.Module:
    """Distil a teacher held in memory into a student, in one call; returns the trained student module.

    The teacher is any module called as ``teacher(x, edge_index, batch)`` → ``[B, C]`` (a zoo model, a PyTorch
    Geometric model of your own); nothing but the module is needed. Its mode and its parameters' ``requires_grad``
    are restored afterwards (distillation freezes it in eval mode meanwhile).

    Args:
        teacher: the trained model.
        student: zoo architecture (``"gin-2-32"``) or a module to train.
        num_classes: the teacher's output width.
        features: how its node features are encoded, ``one_hot`` (node types), ``degree`` (one-hot node degree)
            or ``continuous`` (with ``in_channels``), or a :class:`~dfkd.FeatureSpec` (``dataset.feature_spec``).
        in_channels: node-feature width (needed unless ``features`` is a ``FeatureSpec``).
        generator, preset, config: as in :func:`distill_student`.
        size_stats: optional statistics of the teacher's training graphs (a hint; inferred from the teacher
            when absent).
        task: ``classification`` or ``regression``.
        options: any other :func:`distill_student` argument (``num_graphs``, ``generator_options``,
            ``eval_graphs``, ``out`` to also write the student checkpoint, ``device``, ``show_progress``, ...).
    """
    if isinstance(features, FeatureSpec):
        spec = features
    elif in_channels is None:
        raise ValueError(f"compress(features={features!r}) needs in_channels= (the node-feature width), or pass "
                         "features=dataset.feature_spec")
    else:
        spec = encoding_spec(in_channels, features)
    ckpt = dataclasses.replace(Checkpoint.from_module(teacher, spec, num_classes=num_classes, size_stats=size_stats),
                               task=task)
    training, grads = teacher.training, [p.requires_grad for p in teacher.parameters()]
    try:
        return distill_student(ckpt, student, generator=generator, preset=preset, config=config, **options).student
    finally:
        teacher.train(training)
        for param, grad in zip(teacher.parameters(), grads):
            param.requires_grad_(grad)


def report_path(out: str) -> str:
    """``student.pt`` → ``student.report.json``."""
    root, _ = os.path.splitext(out)
    return f"{root}.report.json"
