import json
import os

import pytest
import torch

import dfkd
import dfkd.generators
from dfkd.distill import DistillConfig, Distiller, GraphListSource, SyntheticSetSource, distill_student
from dfkd.generators import RandomGraphGenerator


@pytest.fixture(scope="module")
def synthetic(tiny_teacher):
    return RandomGraphGenerator.from_checkpoint(tiny_teacher).generate(40, seed=0, show_progress=False)


def _student(seed=0):
    torch.manual_seed(seed)
    return dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)


def _run_killed_at(stop, teacher, synthetic, cfg, state):
    """A run writing its state to ``state`` that dies when epoch ``stop`` (0-based) begins."""

    class Killed(Exception):
        pass

    class DyingSource(SyntheticSetSource):
        def batches(self, epoch, generator):
            if epoch == stop:
                raise Killed()
            yield from super().batches(epoch, generator)

    with pytest.raises(Killed):
        Distiller(teacher, _student(), DyingSource(synthetic, 8), cfg, state_path=state, show_progress=False).fit()


def _states_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_student_learns_to_imitate_the_teacher(tiny_teacher, mutag):
    teacher = tiny_teacher.build_model()
    graphs = [mutag[i] for i in range(100)]
    student = _student()
    report = Distiller(teacher, student, GraphListSource(graphs), DistillConfig(epochs=30, eval_every=10),
                       eval_graphs=graphs, show_progress=False).fit()
    assert report.history[-1]["kl"] < report.history[0]["kl"]
    assert report.final["agreement"] >= 0.8
    assert set(report.final) == {"accuracy", "teacher_accuracy", "majority_accuracy", "agreement", "relative_accuracy",
                                 "chance_adjusted_accuracy"}


def test_eval_graphs_never_change_training(tiny_teacher, synthetic, mutag):
    teacher = tiny_teacher.build_model()
    cfg = DistillConfig(epochs=3, eval_every=1)  # an evaluation after every epoch, between training epochs
    a, b = _student(), _student()
    plain = Distiller(teacher, a, SyntheticSetSource(synthetic, 8), cfg, show_progress=False).fit()
    evaluated = Distiller(teacher, b, SyntheticSetSource(synthetic, 8), cfg, eval_graphs=list(mutag)[:20],
                          show_progress=False).fit()
    assert all("accuracy" in row for row in evaluated.history) and len(evaluated.history) == 3
    assert not any("accuracy" in row for row in plain.history)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)  # BatchNorm buffers included
    assert [row["kl"] for row in plain.history] == [row["kl"] for row in evaluated.history]


def test_resume_after_kill_equals_uninterrupted(tiny_teacher, synthetic, tmp_path):
    teacher = tiny_teacher.build_model()
    cfg = DistillConfig(epochs=6, checkpoint_every=2, seed=5)
    full = _student()
    Distiller(teacher, full, SyntheticSetSource(synthetic, 8), cfg, show_progress=False).fit()

    state = str(tmp_path / "state.pt")

    _run_killed_at(4, teacher, synthetic, cfg, state)  # dies mid-run, after the epoch-4 checkpoint
    assert torch.load(state)["epoch"] == 4
    resumed = _student(seed=99)  # different init: everything must come from the checkpoint
    report = Distiller(teacher, resumed, SyntheticSetSource(synthetic, 8), cfg, state_path=state,
                       show_progress=False).fit(resume=True)
    assert report.resumed_from_epoch == 4 and len(report.history) == 6
    assert _states_equal(full, resumed)
    with pytest.raises(ValueError, match="different configuration"):
        Distiller(teacher, _student(), SyntheticSetSource(synthetic, 8), cfg.replace(lr=0.5), state_path=state,
                  show_progress=False).fit(resume=True)


def test_fp16_resume_restores_the_loss_scaler(tiny_teacher, synthetic, tmp_path):
    teacher = tiny_teacher.build_model()
    cfg = DistillConfig(epochs=4, checkpoint_every=2, seed=5, precision="fp16")
    full = _student()
    Distiller(teacher, full, SyntheticSetSource(synthetic, 8), cfg, state_path=str(tmp_path / "full.pt"),
              show_progress=False).fit()
    full_scaler = torch.load(tmp_path / "full.pt")["scaler"]
    # The scale halves at every overflow and the tracker counts the good steps since: this run's own history.
    assert full_scaler["_growth_tracker"] > 5 and full_scaler["scale"] <= 2.0 ** 16

    state = str(tmp_path / "state.pt")

    _run_killed_at(2, teacher, synthetic, cfg, state)
    resumed = _student(seed=99)
    Distiller(teacher, resumed, SyntheticSetSource(synthetic, 8), cfg, state_path=state,
              show_progress=False).fit(resume=True)
    assert _states_equal(full, resumed)
    assert torch.load(state)["scaler"] == full_scaler  # the scale's schedule continued, not restarted
    with pytest.raises(ValueError, match="different configuration"):  # precision is part of the recipe
        Distiller(teacher, _student(), SyntheticSetSource(synthetic, 8), cfg.replace(precision="bf16"),
                  state_path=state, show_progress=False).fit(resume=True)


def test_fp16_overflow_stops_with_advice_naming_bf16(tiny_teacher, synthetic):
    teacher = tiny_teacher.build_model()
    with torch.no_grad():  # logits far beyond float16's 65504; relabel: the teacher runs in the step
        teacher.head.weight.mul_(1e6)
    with pytest.raises(FloatingPointError, match="float16 overflows beyond 65504: run with --precision bf16"):
        Distiller(teacher, _student(), SyntheticSetSource(synthetic, 8, relabel=True),
                  DistillConfig(epochs=1, precision="fp16"), show_progress=False).fit()


def test_bf16_distillation_is_deterministic_and_tracks_fp32(tiny_teacher, synthetic, mutag):
    teacher = tiny_teacher.build_model()
    graphs = list(mutag)[:60]
    runs = {}
    for name, precision in (("fp32", "fp32"), ("bf16", "bf16"), ("bf16 again", "bf16")):
        student = _student()
        report = Distiller(teacher, student, SyntheticSetSource(synthetic, 8), DistillConfig(epochs=6, seed=2,
                           precision=precision), eval_graphs=graphs, show_progress=False).fit()
        runs[name] = (student, report)
    assert _states_equal(runs["bf16"][0], runs["bf16 again"][0])
    assert not _states_equal(runs["bf16"][0], runs["fp32"][0])
    assert runs["bf16"][1].config["precision"] == "bf16"
    assert abs(runs["bf16"][1].final["agreement"] - runs["fp32"][1].final["agreement"]) <= 0.1


def test_resample_draws_fresh_graphs(tiny_teacher):
    from dfkd.generators import BernoulliGraphGenerator

    graphs = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=3).generate(10, show_progress=False)
    source = SyntheticSetSource(graphs, 10, resample=True)
    first = next(source.batches(0, torch.Generator().manual_seed(0)))
    second = next(source.batches(1, torch.Generator().manual_seed(1)))
    assert not hasattr(first, "teacher_logits")  # labelled online by the teacher
    assert first.edge_index.shape != second.edge_index.shape or not torch.equal(first.x, second.x)


def test_distill_student_end_to_end(tiny_teacher, mutag, tmp_path):
    out = str(tmp_path / "student.pt")
    result = distill_student(tiny_teacher, "gcn-2-8", generator="gfkd", num_graphs=16,
                             generator_options={"iterations": 5}, config=DistillConfig(epochs=2),
                             eval_graphs=list(mutag)[:20], out=out, show_progress=False)
    ckpt = dfkd.load_checkpoint(out)
    assert ckpt.model_config.short_name == "gcn-2-8" and ckpt.provenance["data_free"] is True
    assert ckpt.feature_spec == tiny_teacher.feature_spec
    report = json.load(open(str(tmp_path / "student.report.json")))
    assert report["final"]["accuracy"] == result.report.final["accuracy"]
    assert report["generation_seconds"] > 0 and report["student_parameters"] < report["teacher_parameters"]
    assert os.path.exists(str(tmp_path / "student.pt.run" / "synthetic.pt"))
    with pytest.raises(ValueError, match="has no option"):
        distill_student(tiny_teacher, generator_options={"bogus": 1}, show_progress=False)


@pytest.mark.parametrize("generator, options, terms", [
    ("dfad", {"student_steps": 2}, {"kl", "class_histogram", "generator_adversarial"}),
    ("conditional", {"warmup_steps": 3, "student_steps": 2}, {"kl", "label_ce", "attention", "class_histogram", "generator_label_ce"}),
])
def test_online_generators_end_to_end(tiny_teacher, mutag, tmp_path, generator, options, terms):
    out = str(tmp_path / "student.pt")
    result = distill_student(tiny_teacher, "gin-2-8", generator=generator, num_graphs=16, generator_options=options,
                             config=DistillConfig(epochs=2, batch_size=8), eval_graphs=list(mutag)[:20], out=out,
                             show_progress=False)
    history = result.report.history
    assert len(history) == 2 and terms <= set(history[-1]) and sum(history[-1]["class_histogram"]) == 16
    recommended = dfkd.generators.get_generator_class(generator).recommended_loss
    assert result.report.config["loss"] == recommended
    assert result.report.source["source"] == "online" and result.report.generation_seconds > 0
    assert len(result.graphs) == 16 and os.path.exists(str(tmp_path / "student.pt.run" / "synthetic.pt"))


def test_non_finite_loss_stops_at_the_step_naming_the_term(tiny_teacher, synthetic, tmp_path):
    import copy

    broken = copy.copy(synthetic)
    broken.teacher_logits = torch.full_like(synthetic.teacher_logits, float("nan"))
    distiller = Distiller(tiny_teacher.build_model(), _student(), SyntheticSetSource(broken, 8),
                          DistillConfig(epochs=3, loss="kl,mse=0.5"), state_path=str(tmp_path / "state.pt"),
                          show_progress=False)
    with pytest.raises(FloatingPointError, match=r"student loss at epoch 1: non-finite loss term\(s\) \['kl', 'mse', 'loss'\]"):
        distiller.fit()
    assert not os.path.exists(str(tmp_path / "state.pt"))  # nothing bad was checkpointed


def test_config_validation():
    with pytest.raises(ValueError, match="invalid distillation config"):
        DistillConfig(epochs=0)
    with pytest.raises(ValueError, match="no loss"):
        DistillConfig(loss="nope")


def _loss_params(distiller):
    return {k: v.detach().clone() for k, v in distiller.loss_modules.state_dict().items()}


@pytest.mark.parametrize("recipe, stateful", [
    ("kl,lsp=1,gcrd=0.1", {"gcrd"}),
    ("kl,gsp=1,relation=1", set()),
    ("dynamic_kl,gcrd=0.1", {"gcrd", "dynamic_kl"}),
])
def test_representation_recipes_end_to_end(tiny_teacher, synthetic, recipe, stateful):
    # Teacher gin-3-16 and student gin-2-8: the widths differ.
    distiller = Distiller(tiny_teacher.build_model(), _student(), SyntheticSetSource(synthetic, 8),
                          DistillConfig(epochs=2, loss=recipe), show_progress=False)
    assert set(distiller.loss_modules) == stateful
    before = _loss_params(distiller)
    report = distiller.fit()
    names = [name for name, _ in dfkd.losses.parse_recipe(recipe)]
    assert all(name in report.history[-1] and report.history[-1][name] == report.history[-1][name] for name in names)
    after = _loss_params(distiller)
    assert all(not torch.equal(before[k], after[k]) for k in before)  # heads / temperature trained
    if "dynamic_kl" in stateful:
        assert 1.0 <= report.history[-1]["dynamic_kl_temperature"] <= 10.0


def test_stateful_loss_resumes_exactly(tiny_teacher, synthetic, tmp_path):
    teacher = tiny_teacher.build_model()
    cfg = DistillConfig(epochs=4, checkpoint_every=2, seed=3, loss="kl,gcrd=0.1,dynamic_kl=0.5")
    full_student = _student()
    full = Distiller(teacher, full_student, SyntheticSetSource(synthetic, 8), cfg, show_progress=False)
    initial = _loss_params(full)
    full_report = full.fit()

    state = str(tmp_path / "state.pt")

    _run_killed_at(2, teacher, synthetic, cfg, state)
    saved = torch.load(state)
    assert saved["epoch"] == 2 and set(saved["losses"]) == set(initial)
    assert any(not torch.equal(saved["losses"][k], initial[k]) for k in initial)  # they trained
    resumed = Distiller(teacher, _student(seed=99), SyntheticSetSource(synthetic, 8), cfg, state_path=state,
                        show_progress=False)
    with torch.no_grad():  # everything must come from the checkpoint
        for p in resumed.loss_modules.parameters():
            p.add_(1.0)
    report = resumed.fit(resume=True)
    assert report.resumed_from_epoch == 2
    assert _states_equal(full_student, resumed.student)
    assert all(torch.equal(a, b) for a, b in zip(_loss_params(full).values(), _loss_params(resumed).values()))
    assert [row["dynamic_kl_temperature"] for row in report.history] == \
        [row["dynamic_kl_temperature"] for row in full_report.history]


def test_representation_losses_with_an_online_generator(tiny_teacher):
    # Fresh graphs every step from a generator trained alongside the student.
    result = distill_student(tiny_teacher, "gin-2-8", generator="dfad", num_graphs=16,
                             generator_options={"student_steps": 2},
                             config=DistillConfig(epochs=1, batch_size=8, loss="kl,lsp=1,gcrd=0.1"),
                             show_progress=False)
    row = result.report.history[-1]
    assert {"kl", "lsp", "gcrd"} <= set(row) and all(row[k] == row[k] for k in ("lsp", "gcrd"))
