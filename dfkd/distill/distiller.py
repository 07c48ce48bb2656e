"""The distiller: trains a student to match a frozen teacher on batches from any graph source."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from dfkd.checkpoint import atomic_save, safe_torch_load
from dfkd.config import Config
from dfkd.distill import distributed
from dfkd.distill.averaging import WeightAverage, blend_states, float_state, load_float_state
from dfkd.distill.curriculum import CRITERIA, CurriculumSource
from dfkd.distill.head import fold_teacher_head, reuse_teacher_head
from dfkd.distill.inherit import (INHERITED_LR, RANDOM_INIT_LR, freeze_batch_norm, inherit_from_teacher,
                                  why_not_inheritable)
from dfkd.distill.sources import GraphSource
from dfkd.evaluate import classification_metrics, compare_regression, is_regression_target, labels_of, predict, targets_of
from dfkd.losses import build_loss, get_loss, is_stateful_loss, parse_recipe
from dfkd.nn import call_model, count_parameters, eval_mode, forward_batch, use_precision
from dfkd.nn.precision import check_precision, validate_precision
from dfkd.nn.teacher import prepare_teacher
from dfkd.trackers import Tracker, numeric
from dfkd.utils import check_finite, progress

logger = logging.getLogger(__name__)

STATE_FORMAT = "dfkd.distill-state"
STUDENT_INITS = ("auto", "teacher", "random")


@dataclasses.dataclass
class DistillConfig(Config):
    """Student-training recipe (GFKD paper: KL, T=2, Adam 0.01 with linear decay, batch 32, 400 epochs).

    Args:
        epochs: passes over the source. Teacher-only ``prior`` students with 800 instead of 400 agree with the
            teacher a little better on its fitting graphs (+0.007) but not on its validation graphs (−0.001),
            for twice the generation (``benchmarks/results/gap_analysis.md``, ``long-mined``).
        lr: Adam learning rate; ``None`` (default): 1e-2 for a student initialised at random (on teacher-only
            ``prior`` students 3e-3 and 2e-2 did worse: −0.024, −0.006), 3e-3 for one started from the teacher's
            weights (``student_init``; at 1e-2 one MUTAG GCN student collapsed to one class).
        weight_decay: Adam weight decay (on the same students 5e-4: +0.002; 2e-3: −0.005).
        lr_schedule: ``linear`` (decay to 0) or ``constant``.
        batch_size: graphs per step.
        loss: recipe ``NAME[=WEIGHT],...`` over registered losses (``kl``, ``mae``, ``mse``, ``label_ce``,
            ``attention``, ``lsp``, ``gsp``, ``gcrd``, ``relation``, ``dynamic_kl``, ...), or ``auto``: the
            generator's recommended recipe (``kl`` but for the conditional generator,
            ``kl,label_ce=0.5,attention=1``).
        temperature: softmax temperature of the KL term (the starting one of ``dynamic_kl``).
        resample: draw fresh samples from the synthetic set's learnt distributions every epoch.
        seed: seeds initialisation, shuffling, sampling and dropout (epoch by epoch, so resume is exact).
        checkpoint_every: epochs between resumable checkpoints (0 = never).
        eval_every: epochs between evaluations on the optional real graphs (reporting only).
        grad_clip: largest L2 norm of the student's gradient per step (``clip_grad_norm_``; 0 = off, the
            default). It stays out of the resume fingerprint, so a run stopped by a non-finite loss can
            ``--resume`` from its last good state with clipping added.
        curriculum: ``confidence``, ``disagreement``, ``size`` or ``density``: keep the easiest (or smallest,
            sparsest) graphs of every batch first and widen to all
            (:class:`dfkd.distill.curriculum.CurriculumSource`); ``None`` (default) = off.
        curriculum_start: fraction of every batch kept at the first epoch.
        curriculum_ramp: fraction of the epochs after which every graph is kept.
        teacher_head: ``frozen`` or ``trained``: the student predicts through a learnt projection into
            the teacher's readout space and a copy of the teacher's classifier (frozen, or trained from
            it), folded back into one linear head at the end (:mod:`dfkd.distill.head`); ``off`` (default).
        student_init: ``teacher``: start the student from the teacher's first layers, narrowed to their busiest
            channels, and keep the teacher's BatchNorm statistics while it trains (:mod:`dfkd.distill.inherit`;
            the student must be of the teacher's family, no deeper or wider); ``random``: PyTorch's
            initialisation; ``auto`` (default): the generator's recommendation (``teacher`` for ``prior``
            where the student can inherit, else ``random``; real-data distillation: ``random``).
        inherited_lr_scale: learning-rate multiplier of an inherited student's layers below its head (the head
            trains at ``lr``); 0 freezes them. Ignored for a student initialised at random.
        probe_fraction: fraction of the epochs during which an inherited student trains its head alone, its
            inherited layers frozen, before all train (linear probing then fine-tuning, Kumar et al. 2022);
            0 = off. Ignored for a student initialised at random.
        average_fraction: fraction of the final epochs whose end-of-epoch weights are averaged into the student
            it ships (stochastic weight averaging, Izmailov et al. 2018, Eq. 2; :mod:`dfkd.distill.averaging`);
            0 = off (default): the last epoch's weights. On the leaderboard's teacher-only students half the
            epochs moved agreement on the fitting graphs by −0.000 (−0.013 with a constant learning rate).
        start_share: share of an inherited student's starting weights blended back into its trained ones at the
            end, ``(1 - s) * trained + s * start`` (WiSE-FT, Wortsman et al. 2022, Eq. 1); 0 = off (default).
            Ignored for a student initialised at random. On the same students 0.25: −0.021, 0.5: −0.045
            (``benchmarks/results/gap_analysis.md``).
        precision: ``fp32`` (default), ``bf16`` or ``fp16``: the models' forward passes run under
            ``torch.autocast`` (:mod:`dfkd.nn.precision`; weights, gradients, losses and evaluation stay
            float32); ``fp16`` adds loss scaling (``torch.amp.GradScaler``). Faster only on hardware with
            low-precision units (GPU tensor cores, AVX512-BF16/AMX CPUs).
    """

    epochs: int = 400
    lr: Optional[float] = None
    weight_decay: float = 0.0
    lr_schedule: str = "linear"
    batch_size: int = 32
    loss: str = "auto"
    temperature: float = 2.0
    resample: bool = True
    seed: int = 0
    checkpoint_every: int = 25
    eval_every: int = 10
    grad_clip: float = 0.0
    curriculum: Optional[str] = None
    curriculum_start: float = 0.5
    curriculum_ramp: float = 0.5
    teacher_head: str = "off"
    student_init: str = "auto"
    inherited_lr_scale: float = 1.0
    probe_fraction: float = 0.0
    average_fraction: float = 0.0
    start_share: float = 0.0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        lr = RANDOM_INIT_LR if self.lr is None else self.lr
        positive = all(math.isfinite(v) and v > 0 for v in (lr, self.temperature))  # NaN fails too
        if self.epochs < 1 or self.batch_size < 1 or not positive:
            raise ValueError(f"invalid distillation config: epochs={self.epochs}, batch_size={self.batch_size}, "
                             f"lr={self.lr}, temperature={self.temperature}: need epochs, batch_size >= 1 and a "
                             "finite lr, temperature > 0")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if self.checkpoint_every < 0 or self.eval_every < 1:
            raise ValueError(f"checkpoint_every must be >= 0 (0 = never) and eval_every >= 1, got "
                             f"{self.checkpoint_every} and {self.eval_every}")
        if not math.isfinite(self.grad_clip) or self.grad_clip < 0:
            raise ValueError(f"grad_clip must be a finite number >= 0 (0 = off), got {self.grad_clip}")
        if self.lr_schedule not in ("linear", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}: choose linear or constant")
        if self.loss != "auto":
            parse_recipe(self.loss)
        if self.curriculum is not None and self.curriculum not in CRITERIA:
            raise ValueError(f"unknown curriculum {self.curriculum!r}: choose {' or '.join(CRITERIA)}")
        if self.teacher_head not in ("off", "frozen", "trained"):
            raise ValueError(f"unknown teacher_head {self.teacher_head!r}: choose off, frozen or trained")
        if self.student_init not in STUDENT_INITS:
            raise ValueError(f"unknown student_init {self.student_init!r}: choose {', '.join(STUDENT_INITS)}")
        if self.student_init == "teacher" and self.teacher_head != "off":
            raise ValueError("student_init='teacher' and teacher_head both set the student's head: set one "
                             "(student_init='random' with teacher_head)")
        if not math.isfinite(self.inherited_lr_scale) or self.inherited_lr_scale < 0:
            raise ValueError(f"inherited_lr_scale must be a finite number >= 0, got {self.inherited_lr_scale}")
        if not 0 <= self.probe_fraction < 1:
            raise ValueError(f"probe_fraction must be in [0, 1), got {self.probe_fraction}")
        for name in ("average_fraction", "start_share"):
            if not 0 <= getattr(self, name) <= 1:  # NaN fails too
                raise ValueError(f"{name} must be in [0, 1] (0 = off), got {getattr(self, name)}")
        validate_precision(self.precision)
        if not 0 < self.curriculum_start <= 1 or not 0 < self.curriculum_ramp <= 1:
            raise ValueError(f"curriculum_start and curriculum_ramp must be in (0, 1], got {self.curriculum_start} "
                             f"and {self.curriculum_ramp}")


@dataclasses.dataclass
class DistillReport:
    """What a distillation run did and measured (also written as JSON)."""

    config: Dict[str, Any]
    source: Dict[str, Any]
    teacher_parameters: int
    student_parameters: int
    distill_seconds: float = 0.0
    generation_seconds: float = 0.0
    epochs_run: int = 0
    resumed_from_epoch: int = 0
    history: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    final: Dict[str, Any] = dataclasses.field(default_factory=dict)
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2, default=str)
        os.replace(tmp, path)


class Distiller:
    """Train ``student`` to imitate the frozen ``teacher`` on graphs from ``source``.

    Real ``eval_graphs`` (optional) are used for reporting only: accuracy, agreement with the
    teacher and relative accuracy every ``eval_every`` epochs; they never touch training.
    With ``state_path`` the run writes an atomic resumable checkpoint every
    ``checkpoint_every`` epochs; ``fit(resume=True)`` continues from it to the same result.
    ``task`` (``classification`` or ``regression``) tells the curriculum how to score difficulty.
    ``trackers`` (:mod:`dfkd.trackers`) receive every epoch's row with the training time so far and the final
    figures (on rank 0 only).
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, source: GraphSource,
                 config: Optional[DistillConfig] = None, eval_graphs: Optional[Sequence] = None,
                 state_path: Optional[str] = None, device: str = "cpu", show_progress: bool = True,
                 task: str = "classification", trackers: Sequence[Tracker] = ()):
        self.config = config or DistillConfig()
        self.trackers = list(trackers) if distributed.is_main() else []  # rank 0 reports
        self.device = torch.device(device)
        check_precision(self.config.precision, self.device)
        self.teacher = prepare_teacher(teacher.to(self.device), device=self.device)
        self.student = student.to(self.device)
        if self.config.teacher_head != "off":
            # Its own seed, apart from the global stream (as the stateful losses' heads).
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                reuse_teacher_head(self.student, self.teacher, train_head=self.config.teacher_head == "trained")
        self._init_student()
        # Weight-space ensembles (dfkd.distill.averaging): the inherited start, and the running mean of the last epochs.
        blend = self.config.start_share > 0 and self.config.student_init == "teacher"
        self._start_state = float_state(self.student) if blend else None
        self._average = WeightAverage() if self.config.average_fraction > 0 else None
        if self.config.curriculum:
            source = CurriculumSource(source, self.teacher, self.config.epochs, self.config.curriculum,
                                      self.config.curriculum_start, self.config.curriculum_ramp,
                                      student=self.student, regression=task == "regression")
        self.source = source
        source.attach_student(self.student)
        self.eval_graphs = list(eval_graphs) if eval_graphs else None
        self.state_path = state_path
        self.show_progress = show_progress
        if self.config.loss == "auto":
            self.config = self.config.replace(loss="kl")
        # Stateful losses (nn.Module classes: projection heads, a learnt temperature) are built once;
        # their parameters train with the student and travel in the resumable state.
        self.loss_modules = nn.ModuleDict()
        self.recipe = []
        for name, weight in parse_recipe(self.config.loss):
            fn = get_loss(name)
            if is_stateful_loss(fn):
                fn = self.loss_modules[name] = self._build_stateful_loss(fn)
            self.recipe.append((fn, weight, name))
        self._needs_embeddings = any(getattr(fn, "needs_embeddings", False) for fn, _, _ in self.recipe)
        self._student_has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.student.modules())
        self._teacher_eval = None
        self._saved_epoch = 0  # epoch of the last resumable state written or resumed from (0: none)
        # Multi-process (dfkd.distill.distributed): every rank trains on its share of each global batch;
        # the student forward runs through DDP (self._forward_model) so gradients are averaged.
        self.dist = distributed.context()
        self._forward_model: nn.Module = self.student
        if self.dist is not None and not self.dist.is_main:
            self.show_progress = False

    # --- helpers --------------------------------------------------------------------------------
    def _init_student(self) -> None:
        """``student_init`` and ``lr`` resolved (``auto`` here: ``random``; :func:`~dfkd.distill.api.distill_student`
        resolves it per generator first), the student started from the teacher's weights for ``teacher``."""
        init = "random" if self.config.student_init == "auto" else self.config.student_init
        if init == "teacher":
            reason = why_not_inheritable(self.student, self.teacher)
            if reason is not None:
                raise ValueError(f"student_init='teacher': {reason}; use student_init='random' (or 'auto', which "
                                 "falls back to it)")
            logger.info("student initialised from %s", inherit_from_teacher(self.student, self.teacher))
        lr = self.config.lr if self.config.lr is not None else INHERITED_LR if init == "teacher" else RANDOM_INIT_LR
        self.config = self.config.replace(student_init=init, lr=lr)

    def _build_stateful_loss(self, cls) -> nn.Module:
        available: Dict[str, Any] = {"temperature": self.config.temperature}
        if getattr(cls, "needs_embeddings", False):
            available.update(student_width=_node_width(self.student, self.device),
                             teacher_width=_node_width(self.teacher, self.device))
        # Its own seed, apart from the global stream: the same initial heads whatever ran before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            module = build_loss(cls, **available)
        return module.to(self.device)

    def _fingerprint(self) -> str:
        blob = json.dumps({"config": {k: v for k, v in self.config.to_dict().items()
                                      if k not in ("checkpoint_every", "eval_every", "grad_clip")},
                           "source": [self.source.describe().get(k) for k in ("graphs", "generator_config")]},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def _blowup_advice(self, step: int) -> str:
        """What to do after a non-finite loss or gradient at batch ``step`` (nothing of it was applied)."""
        if self.state_path and self._saved_epoch:
            last = f"--resume continues from the last good state (epoch {self._saved_epoch}, {self.state_path})"
        else:
            last = "no resumable state was written yet"
        if self.config.precision == "fp16":  # a forward pass past float16's range (65504) gives inf
            return (f"it appeared at batch {step} of the epoch and was not applied; {last}; float16 overflows "
                    "beyond 65504: run with --precision bf16 (float32's range) or fp32")
        return (f"it appeared at batch {step} of the epoch and was not applied; {last}; add --grad-clip 1.0 "
                "(grad_clip may change on --resume) or start afresh with a lower --lr, and check the teacher's outputs")

    def _clip_gradients(self, opt, epoch: int, step: int, scaled: bool) -> None:
        """Clip the gradient norm to ``grad_clip``; a non-finite norm stops the run before the update, unless
        the loss is ``scaled`` (fp16), where it is an overflow the scaler skips the step for."""
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if not scaled and not bool(torch.isfinite(norm)):
            raise FloatingPointError(f"student gradient at epoch {epoch + 1}: non-finite gradient norm ({float(norm)}) "
                                     f"although every loss term was finite; {self._blowup_advice(step)}")

    def _student_groups(self) -> List[Dict[str, Any]]:
        """Adam's parameter groups for the student: one, or an inherited student's head and the layers below
        it apart (``inherited_lr_scale``, ``probe_fraction``)."""
        cfg = self.config
        head = getattr(self.student, "head", None)
        split = cfg.student_init == "teacher" and (cfg.inherited_lr_scale != 1.0 or cfg.probe_fraction > 0)
        if not split or not isinstance(head, nn.Module):
            return [{"params": list(self.student.parameters())}]
        in_head = {id(p) for p in head.parameters()}
        return [{"params": list(head.parameters())},
                {"params": [p for p in self.student.parameters() if id(p) not in in_head], "inherited": True}]

    def _group_scale(self, group: Dict[str, Any], epoch: int) -> float:
        if not group.get("inherited"):
            return 1.0
        return 0.0 if epoch < self.config.probe_fraction * self.config.epochs else self.config.inherited_lr_scale

    def _lr_factor(self, epoch: int) -> float:
        return 1.0 - epoch / self.config.epochs if self.config.lr_schedule == "linear" else 1.0

    def _loss(self, batch) -> Dict[str, torch.Tensor]:
        """Weighted recipe terms on one batch (``loss`` is their sum). Losses marked
        ``needs_embeddings`` also get both models' :class:`dfkd.nn.ModelOutput`."""
        context: Dict[str, Any] = {"temperature": self.config.temperature, "batch": batch}
        teacher_logits = getattr(batch, "teacher_logits", None)
        if self._needs_embeddings:
            with torch.no_grad():
                context["teacher_output"] = forward_batch(self.teacher, batch, return_embeddings=True)
            context["student_output"] = forward_batch(self._forward_model, batch, return_embeddings=True)
            student_logits = context["student_output"].logits
            teacher_logits = context["teacher_output"].logits if teacher_logits is None else teacher_logits
        else:
            student_logits = forward_batch(self._forward_model, batch)
            if teacher_logits is None:
                with torch.no_grad():
                    teacher_logits = forward_batch(self.teacher, batch)
        terms = {name: fn(student_logits, teacher_logits, **context) * weight for fn, weight, name in self.recipe}
        terms["loss"] = sum(terms.values())
        return terms

    def evaluate(self) -> Dict[str, float]:
        """Scores on the evaluation graphs.

        Classification (integer ``y``): ``accuracy``, ``teacher_accuracy``, ``majority_accuracy``,
        ``agreement`` (same class), ``relative_accuracy`` and ``chance_adjusted_accuracy``
        (:func:`dfkd.evaluate.classification_metrics`). Regression (floating-point ``y``): ``r2``, ``mae``,
        ``rmse``, the teacher's (``teacher_r2`` ...), ``agreement_r2`` / ``agreement_mae`` (student against
        the teacher's outputs) and ``relative_r2`` = student R² / teacher R²
        (:func:`dfkd.evaluate.compare_regression`).
        """
        if not self.eval_graphs or not distributed.is_main():
            return {}  # in a process group only rank 0 evaluates (every rank holds the same student)
        y = labels_of(self.eval_graphs)
        if self._teacher_eval is None:
            self._teacher_eval = predict(self.teacher, self.eval_graphs, device=self.device)
        student = predict(self.student, self.eval_graphs, device=self.device)  # float32, as it ships
        if is_regression_target(y):
            return compare_regression(student, self._teacher_eval, targets_of(self.eval_graphs))
        return classification_metrics(student, self._teacher_eval, y)

    def _ensemble_weights(self) -> None:
        """The shipped weights: the mean of the last epochs' (``average_fraction``), blended towards the inherited
        start (``start_share``); the last epoch's otherwise."""
        trained = self._average.mean if self._average is not None and self._average.count else None
        if self._start_state is not None:
            trained = blend_states(trained or float_state(self.student), self._start_state, self.config.start_share)
        if trained is not None:
            load_float_state(self.student, trained)

    # --- state ----------------------------------------------------------------------------------
    def _save_state(self, epoch: int, opt, scaler, report: DistillReport) -> None:
        if not self.state_path or not distributed.is_main():
            return
        atomic_save({"format": STATE_FORMAT, "fingerprint": self._fingerprint(), "epoch": epoch,
                     "student": self.student.state_dict(), "optimizer": opt.state_dict(),
                     "source": self.source.state_dict(), "history": report.history,
                     "seconds": report.distill_seconds,
                     **({"losses": self.loss_modules.state_dict()} if len(self.loss_modules) else {}),
                     **({"average": self._average.state_dict()} if self._average is not None else {}),
                     **({"scaler": scaler.state_dict()} if scaler is not None else {})},
                    self.state_path)
        self._saved_epoch = epoch

    def _load_state(self, opt, scaler) -> Optional[Dict[str, Any]]:
        if not self.state_path or not os.path.exists(self.state_path):
            return None
        state = safe_torch_load(self.state_path)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{self.state_path}: not a dfkd distillation state; delete it or choose another --out")
        if state["fingerprint"] != self._fingerprint():
            raise ValueError(f"{self.state_path}: was written with a different configuration; "
                             "resume with the same options or start afresh without --resume")
        self.student.load_state_dict(state["student"])
        if len(self.loss_modules):
            self.loss_modules.load_state_dict(state["losses"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None:
            scaler.load_state_dict(state["scaler"])
        self.source.load_state_dict(state["source"])
        if self._average is not None:
            self._average.load_state_dict(state["average"])
        return state

    # --- training -------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> DistillReport:
        """Train the student (from the saved state with ``resume``); evaluates and returns the report."""
        with use_precision(self.config.precision):
            return self._fit(resume)

    def _fit(self, resume: bool) -> DistillReport:
        cfg = self.config
        groups = self._student_groups()
        if any(True for _ in self.loss_modules.parameters()):
            groups.append({"params": list(self.loss_modules.parameters())})
        opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # float16's narrow range underflows small gradients: scale the loss (bf16 has float32's range).
        scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None
        report = DistillReport(config=cfg.to_dict(), source=self.source.describe(),
                               teacher_parameters=count_parameters(self.teacher),
                               student_parameters=count_parameters(self.student))
        start_epoch = 0
        if resume:
            state = self._load_state(opt, scaler)
            if state is not None:
                start_epoch, report.history = state["epoch"], state["history"]
                report.resumed_from_epoch, report.distill_seconds = start_epoch, state["seconds"]
                self._saved_epoch = start_epoch
                logger.info("resuming from epoch %d (%s)", start_epoch, self.state_path)
            else:
                logger.warning("--resume: no saved state at %s, starting from epoch 0", self.state_path)
        if self.dist is not None:
            self._forward_model = distributed.wrap_student(self.student, self.device)
        bar = progress(range(start_epoch, cfg.epochs), enabled=self.show_progress, desc="distill",
                       initial=start_epoch, total=cfg.epochs)
        collapsed = 0
        for epoch in bar:
            t0 = time.perf_counter()
            # Every epoch is a pure function of (state at its start, seed, epoch): resume is exact.
            torch.manual_seed(cfg.seed * 1_000_003 + epoch)
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * self._lr_factor(epoch) * self._group_scale(group, epoch)
            self.student.train()
            if cfg.student_init == "teacher":  # normalised by the teacher's statistics (eval_mode keeps it so)
                freeze_batch_norm(self.student)
            self.loss_modules.train()
            if self.teacher.training:  # switched by someone else's code since: back to a fixed function
                prepare_teacher(self.teacher)
            sums: Dict[str, float] = {}
            count = 0
            for step, batch in enumerate(self.source.batches(epoch, gen), 1):
                total = distributed.global_num_graphs(batch)  # a sharded source yields this rank's share
                if total < 2 and self._student_has_bn:
                    continue  # BatchNorm cannot train on a single graph
                counted, scale = batch.num_graphs, 1.0
                if self.dist is not None:  # this rank's share; DDP's average of the scaled losses = global mean
                    batch, counted = distributed.shard(batch, self.dist)
                    scale = self.dist.world_size * counted / total
                batch = batch.to(self.device)
                terms = self._loss(batch)
                (distributed.check_finite_all if self.dist is not None else check_finite)(
                    terms, f"student loss at epoch {epoch + 1}", self._blowup_advice(step))
                opt.zero_grad(set_to_none=True)
                loss = terms["loss"] * scale if scale != 1.0 else terms["loss"]
                (scaler.scale(loss) if scaler is not None else loss).backward()
                if self.dist is not None and len(self.loss_modules):
                    distributed.average_gradients(self.loss_modules.parameters())
                if scaler is not None:
                    scaler.unscale_(opt)
                if cfg.grad_clip:
                    self._clip_gradients(opt, epoch, step, scaled=scaler is not None)
                if scaler is not None:
                    scaler.step(opt)  # skipped when the scaled gradients overflowed
                    scaler.update()
                else:
                    opt.step()
                self.source.update(self.student, gen)
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value.item() * counted
                count += counted
            if self.dist is not None:  # the epoch's means over every rank's graphs
                sums, count = distributed.reduce_sums(sums, count, self.device)
            report.distill_seconds += time.perf_counter() - t0
            row: Dict[str, Any] = {"epoch": epoch + 1, **{k: v / max(count, 1) for k, v in sums.items()},
                                   **self.source.epoch_stats()}
            for name, module in self.loss_modules.items():
                row.update({f"{name}_{k}": v for k, v in getattr(module, "epoch_stats", dict)().items()})
            if row.get("collapsed"):
                collapsed += 1
                if collapsed == 1:
                    logger.warning("epoch %d: the teacher predicts one class for almost every generated graph "
                                   "(class histogram %s): the generator has collapsed (the report counts such "
                                   "epochs)", epoch + 1, row["class_histogram"])
            if self._average is not None and epoch + 1 > cfg.epochs * (1 - cfg.average_fraction):
                self._average.update(self.student)
            if self.eval_graphs and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
                row.update(self.evaluate())
            report.history.append(row)
            for tracker in self.trackers:
                tracker.log_metrics({**numeric(row), "distill_seconds": report.distill_seconds}, epoch + 1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in ("loss", "accuracy", "agreement")})
            if cfg.checkpoint_every and (epoch + 1) % cfg.checkpoint_every == 0 and epoch + 1 < cfg.epochs:
                self._save_state(epoch + 1, opt, scaler, report)
        self.student.eval()
        report.epochs_run = cfg.epochs
        if any("collapsed" in row for row in report.history):
            report.extra["collapsed_epochs"] = sum(bool(row.get("collapsed")) for row in report.history)
        if self.state_path:
            self._save_state(cfg.epochs, opt, scaler, report)  # before folding: a resumed run rebuilds the wrapped head
        self._ensemble_weights()  # after the final state: a resumed run ensembles the same trained weights again
        fold_teacher_head(self.student)
        report.student_parameters = count_parameters(self.student)
        report.final = self.evaluate()
        for tracker in self.trackers:
            tracker.log_metrics(numeric(report.final, "final/"), cfg.epochs)
        return report


def _node_width(model: nn.Module, device: torch.device) -> int:
    """Width of a model's last node states, read from a forward pass (eval mode, no gradient) on a
    two-node graph: it changes neither the model nor any random stream."""
    in_channels = getattr(getattr(model, "config", None), "in_channels", None)
    if in_channels is None:
        raise ValueError(f"{type(model).__name__} exposes no embeddings: representation losses need dfkd.nn models")
    x = torch.zeros(2, in_channels, device=device)
    edge_index = torch.tensor([[0, 1], [1, 0]], device=device)
    with eval_mode(model), torch.no_grad():
        out = call_model(model, x, edge_index, torch.zeros(2, dtype=torch.long, device=device), num_graphs=1,
                         return_embeddings=True)
    if not out.node_embeddings:
        raise ValueError(f"{type(model).__name__} has no message-passing layers: no node states to distil")
    return out.node_embeddings[-1].size(-1)

