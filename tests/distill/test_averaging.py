import pytest
import torch
from torch import nn

import dfkd
from dfkd.distill import DistillConfig, Distiller, SyntheticSetSource
from dfkd.distill.averaging import WeightAverage, blend_states, float_state, load_float_state
from dfkd.generators import RandomGraphGenerator
from dfkd.trackers import Tracker


def _filled(value, tracked=0):
    model = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        for t in list(model.parameters()) + [model[1].running_mean, model[1].running_var]:
            t.fill_(value)
    model[1].num_batches_tracked.fill_(tracked)
    return model


def test_weight_average_is_the_running_mean_hand_computed():
    average = WeightAverage()
    for value in (1.0, 3.0, 8.0):
        average.update(_filled(value))
    assert average.count == 3
    assert set(average.mean) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    assert all(torch.allclose(v, torch.full_like(v, 4.0)) for v in average.mean.values())  # (1 + 3 + 8) / 3
    target = _filled(0.0, tracked=7)
    load_float_state(target, average.mean)
    assert float(target[0].weight.detach()[0, 1]) == pytest.approx(4.0) and float(target[1].running_var) == pytest.approx(4.0)
    assert int(target[1].num_batches_tracked) == 7  # integer buffers keep the model's own value
    restored = WeightAverage()
    restored.load_state_dict(average.state_dict())
    assert restored.count == 3 and restored.mean is average.mean


def test_blend_states_hand_computed():
    trained, start = float_state(_filled(2.0)), float_state(_filled(10.0))
    blended = blend_states(trained, start, 0.25)
    assert all(torch.allclose(v, torch.full_like(v, 4.0)) for v in blended.values())  # 0.75 * 2 + 0.25 * 10
    assert all(torch.equal(v, trained[k]) for k, v in blend_states(trained, start, 0.0).items())


class _Snapshots(Tracker):
    """The student's weights at the end of every epoch."""

    def __init__(self, student):
        self.student, self.states = student, []

    def log_metrics(self, metrics, step):
        if "final/kl" not in metrics:
            self.states.append(float_state(self.student))


class _Killed(Exception):
    pass


class _DyingSource(SyntheticSetSource):
    def batches(self, epoch, generator):
        if epoch == 3:  # after the epoch-2 state (epochs 2 and 3 in the mean so far)
            raise _Killed()
        yield from super().batches(epoch, generator)


def _distiller(tiny_teacher, graphs, seed=0, state_path=None, source=SyntheticSetSource, **changes):
    torch.manual_seed(seed)
    student = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    tracker = _Snapshots(student)
    distiller = Distiller(tiny_teacher.build_model(), student, source(graphs, batch_size=8),
                          DistillConfig(epochs=4, **changes), show_progress=False, trackers=[tracker],
                          state_path=state_path)
    return distiller, tracker


@pytest.fixture(scope="module")
def graphs(tiny_teacher):
    return RandomGraphGenerator.from_checkpoint(tiny_teacher).generate(24, seed=0, show_progress=False)


@pytest.mark.parametrize("init", ["random", "teacher"])
def test_the_shipped_student_is_the_mean_of_the_last_epochs(tiny_teacher, graphs, init):
    plain, seen = _distiller(tiny_teacher, graphs, student_init=init)
    plain.fit()
    averaged, _ = _distiller(tiny_teacher, graphs, student_init=init, average_fraction=0.5)
    averaged.fit()
    assert not torch.equal(seen.states[2]["head.weight"], seen.states[3]["head.weight"])
    # Averaging never changes training: the shipped weights are the mean of the plain run's epochs 3 and 4.
    expected = {k: (seen.states[2][k] + seen.states[3][k]) / 2 for k in seen.states[3]}
    shipped = float_state(averaged.student)
    assert all(torch.allclose(shipped[k], v, atol=1e-6) for k, v in expected.items())


def test_start_share_blends_an_inherited_student_back_towards_its_start(tiny_teacher, graphs):
    plain, seen = _distiller(tiny_teacher, graphs, student_init="teacher")
    start = float_state(plain.student)  # inherited at construction
    plain.fit()
    blended, _ = _distiller(tiny_teacher, graphs, student_init="teacher", start_share=0.25)
    blended.fit()
    shipped = float_state(blended.student)
    assert all(torch.allclose(shipped[k], 0.75 * seen.states[3][k] + 0.25 * start[k], atol=1e-6) for k in start)
    # A student started at random has no start worth returning to: the option is ignored.
    random, seen_random = _distiller(tiny_teacher, graphs, student_init="random", start_share=0.25)
    random.fit()
    assert all(torch.equal(v, seen_random.states[3][k]) for k, v in float_state(random.student).items())


def test_an_averaged_run_resumes_to_the_same_student(tiny_teacher, graphs, tmp_path):
    options = dict(student_init="teacher", average_fraction=0.75, start_share=0.5, checkpoint_every=2)
    full, _ = _distiller(tiny_teacher, graphs, **options)
    full.fit()
    state = str(tmp_path / "state.pt")
    dying, _ = _distiller(tiny_teacher, graphs, state_path=state, source=_DyingSource, **options)
    with pytest.raises(_Killed):
        dying.fit()
    assert torch.load(state)["average"]["count"] == 1  # epoch 2 of the last three
    resumed, _ = _distiller(tiny_teacher, graphs, seed=99, state_path=state, **options)
    assert resumed.fit(resume=True).resumed_from_epoch == 2
    assert all(torch.equal(a, b) for a, b in zip(full.student.state_dict().values(),
                                                  resumed.student.state_dict().values()))
    # Resumed from its final state, a finished run ensembles the same trained weights again (not twice over).
    again, _ = _distiller(tiny_teacher, graphs, seed=99, state_path=state, **options)
    again.fit(resume=True)
    assert all(torch.equal(a, b) for a, b in zip(full.student.state_dict().values(), again.student.state_dict().values()))


def test_config_checks_the_ensembles():
    for name in ("average_fraction", "start_share"):
        with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\] \(0 = off\), got 1.5"):
            DistillConfig(**{name: 1.5})
        with pytest.raises(ValueError, match=f"{name} must be in"):
            DistillConfig(**{name: float("nan")})
    config = DistillConfig(average_fraction=0.5, start_share=0.25)
    assert DistillConfig.from_dict(config.to_dict()) == config
