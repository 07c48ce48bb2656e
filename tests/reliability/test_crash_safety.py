"""Crash safety: kill -9 a distillation at seeded random points (mid-epoch, mid-write, before and after a
rename) and resume; the final student equals the uninterrupted one, and no file is ever half-written.
A full disk while saving leaves the previous file intact and gives a one-line error.

Extends the CLI test ``tests/test_cli.py::test_distill_killed_then_resumed_matches_uninterrupted``
(killed right after its N-th checkpoint) with the other kill points, on a tiny run (``crash.py``).
"""
import errno
import glob
import os
import signal

import pytest
import torch

import dfkd
from dfkd.checkpoint import atomic_save, safe_torch_load
from dfkd.cli import main

TRIALS = 4  # one of each kill-point kind (benchmarks/reliability.py runs many more, in fresh processes)
pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill trials fork a child that SIGKILLs itself")


@pytest.fixture(scope="module")
def zygote(crash):
    with crash.Zygote() as z:
        yield z


@pytest.fixture(scope="module")
def reference(crash, tiny_teacher_path, tmp_path_factory):
    """The uninterrupted run's student."""
    return crash.distill(tiny_teacher_path, str(tmp_path_factory.mktemp("full") / "student.pt"))


@pytest.mark.parametrize("index", range(TRIALS))
def test_killed_at_a_random_point_then_resumed_equals_uninterrupted(crash, zygote, tiny_teacher_path, reference,
                                                                  tmp_path, index):
    point = crash.random_points(TRIALS, seed=2024)[index]
    result = crash.trial(tiny_teacher_path, str(tmp_path), point, reference, zygote=zygote)
    assert result["killed"], (point, result["returncode"], result["stderr"])
    assert not result["broken"], (point, result["files"])  # every file left behind is whole
    assert result["equal"], point


def test_kill_mid_write_keeps_the_previous_state(zygote, tiny_teacher_path, tmp_path):
    # The 3rd write is the state after epoch 2; die with 90% of it on disk: epoch 1's state stays.
    out = str(tmp_path / "student.pt")
    assert zygote.kill(tiny_teacher_path, out, "mid_write:3:0.9") == -signal.SIGKILL
    state = safe_torch_load(os.path.join(f"{out}.run", "distill_state.pt"))
    assert state["epoch"] == 1
    assert len(glob.glob(os.path.join(f"{out}.run", ".tmp-*"))) == 1  # the torn temporary file, never renamed
    # The next write of that file removes the killed writer's leftover, not a live writer's.
    live = os.path.join(f"{out}.run", f".tmp-distill_state.pt.{os.getppid()}-x.pt")
    open(live, "wb").close()
    atomic_save(state, os.path.join(f"{out}.run", "distill_state.pt"))
    assert glob.glob(os.path.join(f"{out}.run", ".tmp-*")) == [live]




def _fill_disk(monkeypatch, full_disk, budget=300):
    real = os.fdopen
    monkeypatch.setattr("dfkd.checkpoint.os.fdopen", lambda fd, *a, **k: full_disk(real(fd, *a, **k), budget))


def test_disk_full_while_saving_keeps_the_previous_checkpoint(crash, tmp_path, monkeypatch):
    path = str(tmp_path / "model.pt")
    old = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    dfkd.save_model(path, old)
    before = open(path, "rb").read()
    _fill_disk(monkeypatch, crash.FullDisk)
    with pytest.raises(OSError) as info:
        dfkd.save_model(path, dfkd.build_model("gin-2-8", in_channels=7, out_channels=2))
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and "\n" not in message
    assert path in message and "previous file there is unchanged" in message and "free disk space" in message
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["model.pt"]  # no temporary left
    monkeypatch.undo()
    assert all(torch.equal(a, b) for a, b in zip(dfkd.load_model(path).state_dict().values(),
                                                 old.state_dict().values()))


def test_disk_full_mid_run_then_resume_equals_uninterrupted(crash, tiny_teacher_path, reference, tmp_path,
                                                            monkeypatch):
    out = str(tmp_path / "student.pt")
    state_path = os.path.join(f"{out}.run", "distill_state.pt")
    real = os.fdopen
    writes = [0]

    def fdopen(fd, *a, **k):  # the disk fills up at the 4th write (the state after epoch 3)
        writes[0] += 1
        return crash.FullDisk(real(fd, *a, **k), 100 if writes[0] == 4 else 10 ** 12)

    monkeypatch.setattr("dfkd.checkpoint.os.fdopen", fdopen)
    with pytest.raises(OSError, match="No space left on device"):
        crash.distill(tiny_teacher_path, out)
    monkeypatch.undo()
    assert safe_torch_load(state_path)["epoch"] == 2 and not os.path.exists(out)
    resumed = crash.distill(tiny_teacher_path, out, resume=True)  # space freed: --resume
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def test_cli_disk_full_is_one_line_exit_1(crash, tiny_teacher_path, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "student.pt")
    _fill_disk(monkeypatch, crash.FullDisk, budget=50)
    status = main(["distill", "--teacher", tiny_teacher_path, "--student", "gin-1-8", "--generator", "random",
                   "--num-graphs", "8", "--epochs", "1", "--out", out, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 1 and "\n" not in err and "No space left on device" in err and "Traceback" not in err
    assert not os.path.exists(out)


def test_atomic_save_never_leaves_a_partial_file_on_error(tmp_path):
    path = str(tmp_path / "x.pt")
    atomic_save({"a": torch.zeros(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.equal(safe_torch_load(path)["a"], torch.zeros(3)) and os.listdir(tmp_path) == ["x.pt"]
