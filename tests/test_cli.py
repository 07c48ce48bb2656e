import os
import json
import subprocess
import sys

import pytest

from dfkd.cli import build_parser, main


def test_help_lists_commands_and_defaults(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train-teacher", "evaluate", "info"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["train-teacher", "--help"])
    out = capsys.readouterr().out
    assert "(default: gin-5-64)" in out and "examples:" in out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "scatter backend: native" in out and "gin" in out


def test_train_then_evaluate(tmp_path, capsys):
    teacher = str(tmp_path / "t.pt")
    assert main(["train-teacher", "--dataset", "MUTAG", "--arch", "gin-2-16", "--epochs", "3",
                 "--out", teacher, "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    report = str(tmp_path / "r.json")
    assert main(["evaluate", "--model", teacher, "--teacher", teacher, "--dataset", "MUTAG",
                 "--json", report, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "agreement 1.0000" in out and "relative accuracy 1.0000" in out
    data = json.load(open(report))
    assert data["num_graphs"] == 18 and data["agreement"] == 1.0  # fold 1 test split, as recorded
    assert f"majority-class accuracy {data['majority_accuracy']:.4f}" in out
    mutag = __import__("dfkd").load_dataset("MUTAG")
    test_labels = [mutag.labels[i] for i in mutag.fold(1)[1]]
    assert data["majority_accuracy"] == max(test_labels.count(c) for c in set(test_labels)) / 18
    if data["teacher_accuracy"] > data["majority_accuracy"]:
        assert data["chance_adjusted_accuracy"] == 1.0 and "chance-adjusted accuracy 1.0000" in out


def test_scoring_refuses_graphs_that_may_include_the_training_graphs(tmp_path, capsys):
    """A plain state_dict records no split: its test graphs are unknown, so scoring needs --eval-split all."""
    sd = str(tmp_path / "sd.pt")
    __import__("torch").save(__import__("dfkd").build_model("gin-2-8", in_channels=7, out_channels=2).state_dict(), sd)
    plain = ["--arch", "gin-2-8", "--in-channels", "7", "--classes", "2"]
    assert main(["evaluate", "--model", sd, *plain, "--dataset", "MUTAG", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "records no training split on MUTAG" in err and "--eval-split all" in err and len(err.splitlines()) == 1
    assert main(["evaluate", "--model", sd, *plain, "--dataset", "MUTAG", "--eval-split", "all", "--quiet"]) == 0
    assert "MUTAG, all graphs (training graphs included: --eval-split all): 188 graphs" in capsys.readouterr().out
    assert main(["evaluate", "--model", sd, *plain, "--dataset", "MUTAG", "--fold", "3", "--quiet"]) == 0
    assert "test split {'kind': 'fold', 'fold': 3}" in capsys.readouterr().out
    out = str(tmp_path / "s.pt")
    args = ["distill", "--teacher", sd, *plain, "--student", "gin-2-8", "--out", out, "--num-graphs", "16",
            "--epochs", "1", "--eval-dataset", "MUTAG", "--quiet"]
    assert main(args) == 2
    assert "--eval-split all" in capsys.readouterr().err and not (tmp_path / "s.pt").exists()  # refused before work


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--model", "missing.pt", "--dataset", "MUTAG"], "checkpoint not found"),
        (["train-teacher", "--dataset", "NOPE", "--out", "x.pt"], "unknown dataset"),
        (["train-teacher", "--dataset", "MUTAG", "--arch", "gin-two", "--out", "x.pt", "--epochs", "1"],
         "cannot parse architecture"),
        (["train-teacher", "--dataset", "MUTAG", "--out", "x.pt", "--device", "cuda:7"]
         if not __import__("torch").cuda.is_available() else ["evaluate", "--model", "m.pt", "--dataset", "MUTAG"],
         "CUDA is not available" if not __import__("torch").cuda.is_available() else "checkpoint not found"),
    ],
)
def test_user_errors_are_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_feature_mismatch_is_explained(tmp_path, capsys):
    teacher = str(tmp_path / "t.pt")
    main(["train-teacher", "--dataset", "MUTAG", "--arch", "gin-1-8", "--epochs", "1", "--out", teacher, "--quiet"])
    capsys.readouterr()
    assert main(["evaluate", "--model", teacher, "--dataset", "PTC"]) == 2
    assert "expects 7 node features but the dataset has 19" in capsys.readouterr().err


def test_argparse_errors_exit_2():
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["evaluate", "--model", "a.pt", "--dataset", "MUTAG", "--fold", "1",
                                   "--holdout", "0.3"])
    assert info.value.code == 2


def test_console_script_and_module_entry_points():
    out = subprocess.run([sys.executable, "-m", "dfkd", "info"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("dfkd ")


def test_distill_end_to_end(cli_teacher, tmp_path, capsys):
    out = str(tmp_path / "student.pt")
    assert main(["distill", "--teacher", cli_teacher, "--student", "gin-2-8", "--out", out, "--num-graphs", "24",
                 "--epochs", "3", "--eval-dataset", "MUTAG", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "relative accuracy" in text and "student gin-2-8" in text
    assert "MUTAG, test split {'kind': 'fold', 'fold': 1}, 18 graphs:" in text  # says which graphs were scored
    assert "majority-class accuracy 0.6111" in text and "chance-adjusted accuracy" in text  # 11 of 18
    assert main(["evaluate", "--model", out, "--teacher", cli_teacher, "--dataset", "MUTAG", "--quiet"]) == 0
    assert "agreement" in capsys.readouterr().out


def test_distill_preset_fills_the_recipe_and_flags_win(cli_teacher, tmp_path, capsys):
    out = str(tmp_path / "student.pt")
    assert main(["distill", "--teacher", cli_teacher, "--student", "gin-2-8", "--out", out, "--generator", "dfad",
                 "--preset", "paper", "--num-graphs", "32", "--epochs", "2", "--lr", "0.002",
                 "--set", "hidden=[16,16]", "--quiet"]) == 0
    report = json.load(open(tmp_path / "student.report.json"))
    config, extra = report["config"], report["extra"]
    assert extra["preset"] == "paper"
    assert (config["loss"], config["weight_decay"], config["batch_size"], config["lr_schedule"]) == \
        ("mae", 5e-4, 128, "constant")  # the preset's student recipe
    assert (config["lr"], config["epochs"]) == (0.002, 2)  # flags given win
    gen = extra["generator_config"]
    assert (gen["discrepancy"], gen["noise_dim"], gen["hidden"]) == ("mae", 32, [16, 16])
    assert main(["distill", "--teacher", cli_teacher, "--out", out, "--generator", "prior", "--preset", "paper",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "generator 'prior' has no presets: drop --preset paper" in err and len(err.splitlines()) == 1


def test_distill_precision_runs_generation_and_training_low_evaluation_float32(cli_teacher, tmp_path, monkeypatch):
    import json

    import dfkd.nn.utils as nn_utils
    from dfkd.nn import get_precision

    seen = []
    call = nn_utils._call

    def spy(*args, **kwargs):
        seen.append(get_precision())
        return call(*args, **kwargs)

    monkeypatch.setattr(nn_utils, "_call", spy)
    out = str(tmp_path / "student.pt")
    assert main(["distill", "--teacher", cli_teacher, "--student", "gin-2-8", "--out", out, "--generator", "gfkd",
                 "--iterations", "3", "--num-graphs", "16", "--epochs", "2", "--precision", "bf16",
                 "--eval-dataset", "MUTAG", "--quiet"]) == 0
    assert seen[0] == "bf16"  # GFKD's teacher passes come first
    assert set(seen) == {"bf16", "fp32"}  # evaluation in float32
    assert json.load(open(tmp_path / "student.report.json"))["config"]["precision"] == "bf16"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["distill", "--teacher", cli_teacher, "--out", out, "--precision", "fp8"])


def test_generate_and_export(cli_teacher, tmp_path, capsys):
    out = str(tmp_path / "synth.pt")
    assert main(["generate", "--teacher", cli_teacher, "--generator", "gfkd", "--num-graphs", "6", "--iterations", "5",
                 "--nodes", "8:12",
                 "--out", out, "--graphml", str(tmp_path / "gml"), "--quiet"]) == 0
    assert "exported 6 GraphML files" in capsys.readouterr().out
    from dfkd.generators import SyntheticGraphSet

    graphs = SyntheticGraphSet.load(out)
    assert len(graphs) == 6 and int(graphs.num_nodes.min()) >= 8 and int(graphs.num_nodes.max()) <= 12


def test_generate_conditional_class(cli_teacher, tmp_path, capsys):
    out = str(tmp_path / "c1.pt")
    assert main(["generate", "--teacher", cli_teacher, "--generator", "conditional", "--class", "1",
                 "--iterations", "20", "--num-graphs", "6", "--out", out, "--quiet"]) == 0
    assert "class fidelity" in capsys.readouterr().out
    from dfkd.generators import SyntheticGraphSet

    assert SyntheticGraphSet.load(out).target.tolist() == [1] * 6


def test_generate_draws_node_types_from_the_shares_set(cli_teacher, tmp_path):
    from dfkd.generators import SyntheticGraphSet

    out = str(tmp_path / "carbon.pt")
    assert main(["generate", "--teacher", cli_teacher, "--num-graphs", "8", "--out", out,
                 "--set", "type_frequencies=[0,0,1,0,0,0,0]", "--quiet"]) == 0
    x = SyntheticGraphSet.load(out).x
    assert bool((x.argmax(-1) == 2).all())  # every node of the one type given a share
    assert main(["generate", "--teacher", cli_teacher, "--num-graphs", "8", "--out", out,
                 "--set", "type_frequencies={2: 1.0}", "--quiet"]) == 0  # the shares of some types only
    assert bool((SyntheticGraphSet.load(out).x.argmax(-1) == 2).all())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--nodes", "ten:20"], "write MIN:MAX"),
        (["--set", "bogus=1"], "has no option(s) ['bogus']"),
        (["--set", "novalue"], "write KEY=VALUE"),
        (["--set", "type_frequencies=[1,0]"], "2 entries for a 7-wide one-hot node feature"),
        (["--set", "type_frequencies={7: 0.5}"], "names column(s) [7], but the one-hot node feature has 7 columns"),
        (["--generator", "gfkd", "--estimator", "magic"], "unknown estimator"),
        (["--iterations", "5"], "generator 'prior' does not optimise anything"),
        (["--generator", "vae"], "no generator 'vae' registered"),
        (["--num-graphs", "0"], "--num-graphs must be >= 1"),
        (["--class", "1"], "use a conditional generator (--generator conditional)"),
        (["--generator", "conditional", "--class", "5"], "out of range"),
    ],
)
def test_generate_option_errors(cli_teacher, tmp_path, capsys, extra, message):
    assert main(["generate", "--teacher", cli_teacher, "--out", str(tmp_path / "s.pt"), "--quiet"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


# Runs `dfkd distill` in a child that SIGKILLs itself right after its N-th resumable checkpoint has
# been written: a real kill -9 at a known point, independent of how fast the machine is.
_KILL_AFTER_SAVES = """
import os, signal, sys
import dfkd.distill.distiller as distiller
from dfkd.cli import main
saves, real_save = [0], distiller.atomic_save
def save_then_die(obj, path):
    real_save(obj, path)
    saves[0] += 1
    if saves[0] == int(os.environ["DFKD_TEST_KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)
distiller.atomic_save = save_then_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("generator, kill_after", [("gfkd", 1), ("gfkd", 3), ("dfad", 2), ("prior", 2)])
def test_distill_killed_then_resumed_matches_uninterrupted(cli_teacher, tmp_path, generator, kill_after):
    import signal

    import torch

    options = ["distill", "--teacher", cli_teacher, "--student", "gin-2-8", "--num-graphs", "64",
               "--generator", generator, "--epochs", "12", "--checkpoint-every", "2", "--quiet"]
    options += {"gfkd": ["--iterations", "10"], "dfad": ["--set", "student_steps=3"]}.get(generator, [])
    full = str(tmp_path / "full.pt")
    subprocess.run([sys.executable, "-m", "dfkd"] + options + ["--out", full], check=True, capture_output=True)

    killed = str(tmp_path / "killed.pt")
    env = dict(os.environ, DFKD_TEST_KILL_AFTER=str(kill_after))
    proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_SAVES] + options + ["--out", killed],
                          env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert not os.path.exists(killed) and os.path.exists(killed + ".run/distill_state.pt")
    subprocess.run([sys.executable, "-m", "dfkd"] + options + ["--out", killed, "--resume"],
                   check=True, capture_output=True)
    a, b = torch.load(full)["state_dict"], torch.load(killed)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_plain_state_dict_teacher_on_every_command(tmp_path, capsys):
    """A teacher given as weights alone: --arch --in-channels --classes, and --features for how its node
    features are encoded (a dfkd checkpoint records that itself)."""
    import torch

    import dfkd

    mutag = dfkd.load_dataset("MUTAG")
    trained = dfkd.train_teacher(mutag, "gin-2-8", fold=1, config=dfkd.TrainConfig(epochs=2), show_progress=False)
    sd = str(tmp_path / "sd.pt")
    torch.save(trained.model.state_dict(), sd)
    plain = ["--arch", "gin-2-8", "--in-channels", "7", "--classes", "2"]
    out = str(tmp_path / "s.pt")
    distill = ["distill", "--teacher", sd, *plain, "--student", "gin-2-8", "--out", out, "--num-graphs", "16",
               "--epochs", "1", "--quiet"]
    assert main(distill) == 2
    err = capsys.readouterr().err
    assert "--features one_hot|degree|continuous" in err and len(err.splitlines()) == 1
    assert main(distill + ["--features", "one_hot", "--eval-dataset", "MUTAG", "--eval-split", "all"]) == 0
    assert "MUTAG, all graphs (training graphs included: --eval-split all), 188 graphs" in capsys.readouterr().out
    assert dfkd.load_checkpoint(out).feature_spec.encoding == "one_hot"
    synth = str(tmp_path / "g.pt")
    assert main(["generate", "--teacher", sd, *plain, "--features", "one_hot", "--num-graphs", "8", "--out", synth,
                 "--quiet"]) == 0
    assert main(["inspect", synth, "--teacher", sd, *plain, "--dataset", "MUTAG", "--quiet"]) == 0
    # a dfkd checkpoint keeps its own encoding; naming another is refused
    ckpt = str(tmp_path / "t.pt")
    trained.checkpoint.save(ckpt)
    assert dfkd.load_checkpoint(ckpt, features="one_hot").feature_spec == mutag.feature_spec
    with pytest.raises(dfkd.CheckpointError, match="records one_hot node features, not degree"):
        dfkd.load_checkpoint(ckpt, features="degree")
    spec = dfkd.load_checkpoint(sd, arch="gin-2-8", in_channels=7, num_classes=2, features="degree").feature_spec
    assert spec.encoding == "degree" and spec.max_degree == 6 and spec.dim == 7


def test_structure_switch_reaches_every_generator_that_reads_a_degree_law(cli_teacher, tmp_path, capsys):
    from dfkd.cli import build_parser, generator_options

    for name in ("prior", "gfkd", "dfad", "conditional"):
        args = build_parser().parse_args(["distill", "--teacher", "t.pt", "--out", "s.pt", "--generator", name,
                                          "--structure", "teacher"])
        assert generator_options(args)["structure"] == "teacher"
    assert main(["distill", "--teacher", cli_teacher, "--generator", "random", "--structure", "teacher", "--out",
                 str(tmp_path / "s.pt"), "--quiet"]) == 2
    assert "--structure: generator 'random'" in capsys.readouterr().err
