"""Experiment trackers (dfkd.trackers, `dfkd distill --log`): TensorBoard event files and an MLflow store read back."""
import builtins

import pytest

import dfkd
from dfkd.cli import main
from dfkd.trackers import flat, make_tracker, numeric


def test_numeric_and_flat():
    assert numeric({"loss": 0.5, "epoch": 3, "collapsed": True, "class_histogram": [1, 2], "x": float("nan")}) == \
        {"loss": 0.5, "epoch": 3.0}
    assert flat({"a": {"b": 1, "c": "x"}, "d": [1, 2]}) == {"a/b": "1", "a/c": "x", "d": "[1, 2]"}


def test_tensorboard_receives_every_epoch_and_the_final_figures(cli_teacher, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = str(tmp_path / "tb")
    assert main(["distill", "--teacher", cli_teacher, "--student", "gin-2-8", "--out", str(tmp_path / "s.pt"),
                 "--num-graphs", "24", "--epochs", "3", "--eval-dataset", "MUTAG", "--log", f"tensorboard:{logdir}",
                 "--quiet"]) == 0
    events = EventAccumulator(logdir)
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"loss", "distill_seconds", "final/accuracy", "final/agreement", "final/majority_accuracy"} <= set(scalars)
    # chance-adjusted accuracy is sent when defined (a 3-epoch teacher may sit at the majority class: NaN, left out)
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3]
    assert any(tag.startswith("settings") for tag in events.Tags()["tensors"])  # the run's settings, as text


def test_mlflow_run_holds_settings_metrics_and_final_figures(cli_teacher, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local file store, as a laptop would use
    uri = f"file://{tmp_path / 'mlruns'}"
    result = dfkd.distill_student(cli_teacher, "gin-2-8", num_graphs=24, config=dfkd.DistillConfig(epochs=2, seed=1),
                                  eval_graphs=dfkd.load_dataset("MUTAG")[:20], trackers=[f"mlflow:{uri}"],
                                  show_progress=False)
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("dfkd").experiment_id])[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["generator"] == "prior" and run.data.params["distill/seed"] == "1"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert history[-1].value == pytest.approx(result.report.history[-1]["loss"])
    assert run.data.metrics["final/accuracy"] == pytest.approx(result.report.final["accuracy"])


def test_unknown_tracker_and_missing_extra_are_one_line_errors(cli_teacher, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "s.pt")
    assert main(["distill", "--teacher", cli_teacher, "--out", out, "--log", "wandb", "--quiet"]) == 2
    assert "wandb" in capsys.readouterr().err
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ValueError, match=r"pip install 'dfkd\[tensorboard\]'"):
        make_tracker("tensorboard:x")
