"""Every invalid option combination of the CLI exits with status 2 and one line on stderr (argparse's own
errors included), and every example shown in a ``--help`` epilog parses."""
import shlex

import pytest
import torch

from dfkd.cli import build_parser, main


@pytest.fixture(scope="module")
def files(tiny_teacher_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-errors")
    bad = folder / "bad.pt"
    bad.write_bytes(b"junk")
    damaged_set = folder / "damaged_set.pt"
    torch.save({"format": "dfkd.synthetic", "format_version": 1}, str(damaged_set))
    return {"teacher": tiny_teacher_path, "bad": str(bad), "damaged_set": str(damaged_set), "dir": str(folder)}


DISTILL = ["distill", "--teacher", "{teacher}", "--out", "{dir}/s.pt", "--epochs", "1", "--num-graphs", "4"]
GENERATE = ["generate", "--teacher", "{teacher}", "--out", "{dir}/g.pt", "--num-graphs", "4"]
TRAIN = ["train-teacher", "--dataset", "MUTAG", "--out", "{dir}/t.pt", "--epochs", "1"]
EVALUATE = ["evaluate", "--model", "{teacher}", "--dataset", "MUTAG"]
EXPORT = ["export", "--model", "{teacher}", "--out", "{dir}/m.ts"]

CASES = [
    # argparse: unknown command or option, bad value, options that exclude each other, missing required
    (["bogus"], "invalid choice: 'bogus'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (TRAIN + ["--fold", "1", "--holdout", "0.2"], "not allowed with argument --fold"),
    (["train-teacher", "--dataset", "MUTAG"], "the following arguments are required: --out"),
    (DISTILL + ["--grad-clip", "abc"], "invalid float value: 'abc'"),
    (DISTILL + ["--student-batch-norm", "maybe"], "invalid choice: 'maybe'"),
    (EXPORT + ["--format", "tflite"], "invalid choice: 'tflite'"),
    (DISTILL + ["--fold", "1"], "unrecognized arguments: --fold 1"),
    # distill: training settings
    (DISTILL + ["--epochs", "0"], "invalid distillation config"),
    (DISTILL + ["--batch-size", "0"], "invalid distillation config"),
    (DISTILL + ["--lr", "-1"], "invalid distillation config"),
    (DISTILL + ["--lr", "nan"], "invalid distillation config"),
    (DISTILL + ["--temperature", "inf"], "invalid distillation config"),
    (DISTILL + ["--grad-clip", "-1"], "grad_clip must be a finite number >= 0"),
    (DISTILL + ["--checkpoint-every", "-1"], "checkpoint_every must be >= 0"),
    (DISTILL + ["--loss", "nope"], "no loss 'nope' registered"),
    (DISTILL + ["--loss", "kl=abc"], "bad loss weight"),
    (DISTILL + ["--student", "gin-0-8"], "invalid model size"),
    (DISTILL + ["--student", "nope-1-8"], "no architecture 'nope'"),
    (DISTILL + ["--assistant", "nope-1-2"], "no architecture 'nope'"),
    (DISTILL + ["--student-dropout", "1.5"], "dropout must be in [0, 1)"),
    # distill / generate: generator settings
    (DISTILL + ["--num-graphs", "0"], "--num-graphs must be >= 1"),
    (DISTILL + ["--nodes", "5:2"], "invalid node range 5:2"),
    (DISTILL + ["--nodes", "0:3"], "invalid node range 0:3"),
    (DISTILL + ["--nodes", "abc"], "write MIN:MAX"),
    (DISTILL + ["--generator", "nope"], "no generator 'nope' registered"),
    (DISTILL + ["--set", "bogus=1"], "has no option(s) ['bogus']"),
    (DISTILL + ["--set", "novalue"], "write KEY=VALUE"),
    (DISTILL + ["--iterations", "5"], "does not optimise anything"),
    (DISTILL + ["--generator", "gfkd", "--estimator", "magic"], "unknown estimator"),
    (DISTILL + ["--generator", "gfkd", "--iterations", "-1"], "iterations must be >= 0"),
    (GENERATE + ["--class", "1"], "use a conditional generator"),
    (GENERATE + ["--generator", "conditional", "--class", "5"], "out of range"),
    (GENERATE + ["--num-graphs", "0"], "--num-graphs must be >= 1"),
    # data and files
    (DISTILL + ["--eval-dataset", "PTC"], "expects 7 node features but the dataset has 19"),
    (DISTILL + ["--eval-dataset", "NOPE"], "unknown dataset 'NOPE'"),
    (DISTILL + ["--device", "cuda:7"] if not torch.cuda.is_available() else DISTILL + ["--student", "gin-0-8"],
     "CUDA is not available" if not torch.cuda.is_available() else "invalid model size"),
    (["distill", "--teacher", "{bad}", "--out", "{dir}/s.pt"], "not a readable PyTorch checkpoint"),
    (TRAIN + ["--fold", "11"], "fold must be in 1..10"),
    (TRAIN + ["--holdout", "1.5"], "--holdout (test fraction) must be in (0, 1)"),
    (TRAIN + ["--val-ratio", "0"], "--val-ratio (validation fraction of the training split) must be in (0, 1)"),
    (TRAIN + ["--lr", "0"], "invalid training config"),
    (EVALUATE + ["--fold", "0"], "fold must be in 1..10"),
    (["evaluate", "--model", "{bad}", "--dataset", "MUTAG"], "not a readable PyTorch checkpoint"),
    (["inspect", "{damaged_set}"], "not a readable dfkd synthetic graph set"),
    (["inspect", "{dir}/missing.pt"], "synthetic set not found"),
    (["inspect", "{damaged_set}", "--per-class", "0"], "--per-class must be >= 1"),
    (["inspect", "{damaged_set}", "--teacher", "{teacher}"], "--teacher scores real graphs: add --dataset"),
    (EXPORT + ["--dataset", "MUTAG", "--graphs", "{dir}/g.pt"], "--dataset and --graphs both give check graphs"),
    (EXPORT + ["--num-graphs", "0"], "num_graphs must be >= 1"),
    (EXPORT + ["--tolerance", "-1"], "tolerance must be > 0"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CASES])
def test_invalid_options_exit_2_with_one_line(files, argv, message, capsys):
    argv = [a.format(**files) for a in argv]
    try:
        status = main(argv + (["--quiet"] if argv[0] not in ("bogus", "--bogus") else []))
    except SystemExit as exc:  # argparse's errors
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert "usage: dfkd" in captured.out and captured.err.strip() == "dfkd: error: choose a COMMAND (listed above)"


def _subcommands():
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return actions[0].choices


def _examples():
    out = []
    for name, sub in _subcommands().items():
        for line in (sub.epilog or "").splitlines():
            line = line.strip()
            if line.startswith("dfkd "):
                out.append((name, line.split("  #")[0].split(" # ")[0].strip()))
    return out


def test_main_subcommands_have_examples():
    named = {name for name, _ in _examples()}
    assert {"train-teacher", "evaluate", "distill", "generate", "inspect", "export"} <= named


@pytest.mark.parametrize("name, example", _examples(), ids=[e for _, e in _examples()])
def test_help_examples_parse(name, example):
    argv = shlex.split(example)[1:]
    assert argv[0] == name
    args = build_parser().parse_args(argv)  # SystemExit(2) on any stale option
    assert args.command == name and callable(args.func)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_help_exits_0(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0 and f"usage: dfkd {name}" in capsys.readouterr().out
