"""Numerical health: a NaN/Inf in a student or generator loss stops the run at the step it appears, before
the update, with a message naming the term that blew up and the last good state; ``grad_clip`` bounds
the gradient norm (and catches a non-finite gradient behind a finite loss)."""
import copy

import pytest
import torch
from torch import nn

import dfkd
from dfkd.checkpoint import safe_torch_load
from dfkd.cli import main
from dfkd.distill import DistillConfig, Distiller, SyntheticSetSource
from dfkd.generators import BernoulliGraphGenerator, RandomGraphGenerator


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_teacher_path):
    return dfkd.load_checkpoint(tiny_teacher_path)


@pytest.fixture(scope="module")
def graphs(teacher_ckpt):
    return RandomGraphGenerator.from_checkpoint(teacher_ckpt).generate(24, seed=0, show_progress=False)


def _student(seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dfkd.build_model("gin-1-8", in_channels=7, out_channels=2)


class _PoisonedSource(SyntheticSetSource):
    """The teacher's outputs of one batch of one epoch (0-based) are NaN."""

    def __init__(self, graphs, epoch, batch):
        super().__init__(graphs, 8)
        self.poison = (epoch, batch)

    def batches(self, epoch, generator):
        for i, batch in enumerate(super().batches(epoch, generator), 1):
            if (epoch, i) == self.poison:
                batch.teacher_logits = torch.full_like(batch.teacher_logits, float("nan"))
            yield batch


def test_nan_in_one_term_stops_at_its_step_naming_it_and_the_last_good_state(teacher_ckpt, graphs, tmp_path):
    state = str(tmp_path / "state.pt")
    cfg = DistillConfig(epochs=5, batch_size=8, checkpoint_every=1, loss="kl,label_ce=0.5")
    student = _student()
    distiller = Distiller(teacher_ckpt.build_model(), student, _PoisonedSource(graphs, epoch=2, batch=2), cfg,
                          state_path=state, show_progress=False)
    with pytest.raises(FloatingPointError) as info:
        distiller.fit()
    message = str(info.value)
    # The KL term saw the NaN teacher outputs; the label cross-entropy (integer targets) did not.
    assert message.startswith("student loss at epoch 3: non-finite loss term(s) ['kl', 'loss'];")
    assert "label_ce" not in message.split(";")[0] and "batch 2 of the epoch" in message
    assert f"last good state (epoch 2, {state})" in message and "--grad-clip" in message and "\n" not in message
    saved = safe_torch_load(state)
    assert saved["epoch"] == 2
    # Nothing of the bad step was applied: the weights are finite.
    assert all(torch.isfinite(p).all() for p in student.parameters())
    # Recovery: --resume from the last good state, with clipping added (grad_clip is outside the fingerprint).
    report = Distiller(teacher_ckpt.build_model(), _student(seed=9), SyntheticSetSource(graphs, 8),
                       cfg.replace(grad_clip=1.0), state_path=state, show_progress=False).fit(resume=True)
    assert report.resumed_from_epoch == 2 and len(report.history) == 5 and report.config["grad_clip"] == 1.0


class _NaNTeacher(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, edge_index, batch, edge_weight=None):
        return self.model(x, edge_index, batch, edge_weight=edge_weight) * float("nan")


def test_generator_nan_names_its_term_at_the_first_step(teacher_ckpt):
    gen = BernoulliGraphGenerator(_NaNTeacher(teacher_ckpt.build_model()), teacher_ckpt.feature_spec, 2,
                                  iterations=3, bn_weight=0.0)
    with pytest.raises(FloatingPointError, match=r"gfkd generator loss at step 1: non-finite loss term\(s\) "
                                                 r"\['ce', 'loss'\]"):
        gen.generate(4, show_progress=False)


class _SqrtStudent(nn.Module):
    """Finite outputs whose gradient is NaN: d/dz sqrt(z * 0) at z = 1 is 0 * inf."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(7, 2)
        self.z = nn.Parameter(torch.ones(()))

    def forward(self, x, edge_index, batch):
        pooled = torch.zeros(int(batch.max()) + 1, x.size(1)).index_add_(0, batch, x)
        return self.head(pooled) + torch.sqrt(self.z * 0)


def test_non_finite_gradient_behind_a_finite_loss(teacher_ckpt, graphs):
    cfg = DistillConfig(epochs=1, batch_size=8, loss="kl")
    # Without clipping the NaN gradient is applied and the next step's loss names the blow-up ...
    with pytest.raises(FloatingPointError, match="batch 2 of the epoch"):
        Distiller(teacher_ckpt.build_model(), _SqrtStudent(), SyntheticSetSource(graphs, 8), cfg,
                  show_progress=False).fit()
    # ... with clipping the gradient norm is checked at the step itself, before the update.
    student = _SqrtStudent()
    with pytest.raises(FloatingPointError, match=r"student gradient at epoch 1: non-finite gradient norm .* "
                                                 r"batch 1 of the epoch"):
        Distiller(teacher_ckpt.build_model(), student, SyntheticSetSource(graphs, 8), cfg.replace(grad_clip=1.0),
                  show_progress=False).fit()
    assert all(torch.isfinite(p).all() for p in student.parameters())


def _grad_norms(monkeypatch):
    norms = []
    real = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return norms


def test_grad_clip_bounds_every_step(teacher_ckpt, graphs, monkeypatch):
    cfg = DistillConfig(epochs=2, batch_size=8, lr=0.05)
    norms = _grad_norms(monkeypatch)
    Distiller(teacher_ckpt.build_model(), _student(), SyntheticSetSource(graphs, 8), cfg, show_progress=False).fit()
    limit = min(norms) / 2  # below every unclipped step's norm
    unclipped = list(norms)
    norms.clear()
    a, b = _student(), _student()
    Distiller(teacher_ckpt.build_model(), a, SyntheticSetSource(graphs, 8), cfg.replace(grad_clip=limit),
              show_progress=False).fit()
    assert len(norms) == len(unclipped) == 6 and max(norms) <= limit * (1 + 1e-4)
    # Deterministic: the same clipped run twice gives the same student.
    Distiller(teacher_ckpt.build_model(), b, SyntheticSetSource(graphs, 8), cfg.replace(grad_clip=limit),
              show_progress=False).fit()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("field, value, message", [
    ("grad_clip", -1.0, "grad_clip must be a finite number >= 0"),
    ("grad_clip", float("nan"), "grad_clip must be a finite number >= 0"),
    ("lr", float("nan"), "invalid distillation config"),
    ("temperature", float("inf"), "invalid distillation config"),
    ("checkpoint_every", -1, "checkpoint_every must be >= 0"),
    ("weight_decay", -0.1, "weight_decay must be a finite number >= 0"),
])
def test_config_rejects_non_finite_and_negative_settings(field, value, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value})


def test_cli_nan_is_one_line_exit_1_naming_the_term(tiny_teacher_path, tmp_path, capsys):
    # Finite but huge head weights: the teacher's logits overflow to inf, the KL term becomes NaN.
    obj = torch.load(tiny_teacher_path)
    obj = copy.deepcopy(obj)
    obj["state_dict"]["head.weight"].fill_(3e38)
    teacher = str(tmp_path / "overflowing.pt")
    torch.save(obj, teacher)
    status = main(["distill", "--teacher", teacher, "--generator", "random", "--student", "gin-1-8", "--num-graphs",
                   "8", "--epochs", "1", "--out", str(tmp_path / "s.pt"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err and "Traceback" not in err
    assert "non-finite loss term(s) ['kl', 'loss']" in err and "check the teacher's outputs" in err


def test_cli_grad_clip_reaches_the_run(tiny_teacher_path, tmp_path, capsys):
    import json

    out = str(tmp_path / "s.pt")
    assert main(["distill", "--teacher", tiny_teacher_path, "--generator", "random", "--student", "gin-1-8",
                 "--num-graphs", "8", "--epochs", "1", "--grad-clip", "0.5", "--out", out, "--quiet"]) == 0
    assert json.load(open(str(tmp_path / "s.report.json")))["config"]["grad_clip"] == 0.5
