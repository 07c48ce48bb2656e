"""Command-line interface: a thin layer over the Python API.

Every subcommand parses its options, calls the API and prints a short summary.
User errors (bad options, files, datasets) end with one line on stderr and
exit status 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import platform
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch

from dfkd.checkpoint import CheckpointError, load_checkpoint
from dfkd.data import DatasetFormatError, load_dataset, split_from_record, split_indices
from dfkd.distill.api import DEFAULT_GENERATOR
from dfkd.distill.curriculum import CRITERIA as CURRICULA
from dfkd.nn.precision import PRECISIONS, check_precision, use_precision
from dfkd.recipes import RecipeError, dump_recipe, load_recipe, recipe_path, resolved_recipe, write_recipe
from dfkd.version import __version__

logger = logging.getLogger("dfkd")

EXIT_USAGE = 2

EPILOG_TRAIN = """examples:
  dfkd train-teacher --dataset MUTAG --arch gin-5-64 --out teacher.pt
  dfkd train-teacher --dataset PROTEINS --data-root ./datasets --fold 3 --epochs 150 --out t3.pt
"""
EPILOG_DISTILL = """examples:
  dfkd distill --teacher teacher.pt --student gin-2-32 --out student.pt --eval-dataset MUTAG   # teacher-prior graphs
  dfkd distill --teacher teacher.pt --generator gfkd --out student.pt   # GFKD (Bernoulli structure, ARM)
  dfkd distill --teacher teacher.pt --generator dfad --out student.pt   # adversarial (DFAD-GNN)
  dfkd distill --teacher teacher.pt --generator conditional --out student.pt   # label-conditioned (CGDD)
  dfkd distill --teacher teacher.pt --out student.pt --resume          # continue an interrupted run
  dfkd distill --teacher teacher.pt --real-dataset MUTAG --out kd.pt   # real-data KD ceiling
  dfkd distill --teacher teacher.pt --out student.pt --eval-dataset MUTAG --report report.html   # + report
"""
EPILOG_REPORT = """examples:
  dfkd report student.report.json --out report.html              # one self-contained file
  dfkd report student.report.json --out report/report.md --eval-dataset MUTAG   # markdown + PNGs
"""
EPILOG_GENERATE = """examples:
  dfkd generate --teacher teacher.pt --generator gfkd --num-graphs 100 --out synth.pt --graphml synth_graphml/
  dfkd generate --teacher teacher.pt --generator conditional --class 1 --num-graphs 100 --out class1.pt
"""
EPILOG_INSPECT = """examples:
  dfkd inspect synth.pt                                   # statistics of a synthetic set
  dfkd inspect synth.pt --dataset MUTAG --png grid.png    # side by side with the real graphs, and a picture
  dfkd inspect runs/student.pt.run/synthetic.pt --dataset MUTAG --teacher teacher.pt --json stats.json
"""
EPILOG_EXPORT = """examples:
  dfkd export --model student.pt --format torchscript --out student.ts
  dfkd export --model student.pt --out student.onnx --dataset MUTAG    # format from the suffix; checked on MUTAG
"""
EPILOG_EVAL = """examples:
  dfkd evaluate --model teacher.pt --dataset MUTAG
  dfkd evaluate --model student.pt --teacher teacher.pt --dataset MUTAG
"""


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit status 2."""


EXIT_FAILURE = 1  # the run itself failed (non-finite loss, disk full): not a usage error


class OneLineErrorParser(argparse.ArgumentParser):
    """``argparse`` parser whose usage errors (unknown option, bad value, options that exclude each other)
    are one line on stderr, ``dfkd COMMAND: error: ...``, with exit status 2 like every other user error.
    Subcommand parsers inherit the class."""

    def error(self, message: str) -> None:  # type: ignore[override]
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")


def _add_dataset(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--dataset", required=required,
                   help="dataset name (MUTAG and PTC are bundled; TU:NAME for PyG; SYNTH:TRIANGLES or "
                        "SYNTH:CLUSTERING[:NUM_GRAPHS[:SEED]] for a synthetic regression task)")
    p.add_argument("--data-root", default=None, help="folder holding NAME/NAME.txt in GIN format")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--fold", type=int, default=None, help="standard 10-fold split index (1..10)")
    split.add_argument("--holdout", type=float, default=None, help="stratified test fraction instead of a fold")


def _add_eval_split(p) -> None:
    p.add_argument("--eval-split", choices=["test", "all"], default="test",
                   help="graphs to score: the teacher's recorded test split (refused when the checkpoint records "
                        "none for this dataset), or all graphs, training graphs included")


def _add_checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow checkpoints that hold pickled code (unsafe: only for files you trust)")
    _add_plain_state_dict_options(p)


def _add_plain_state_dict_options(p) -> None:
    p.add_argument("--arch", default=None, help="architecture of a plain state_dict, e.g. gin-5-64")
    p.add_argument("--in-channels", type=int, default=None, help="node-feature width of a plain state_dict")
    p.add_argument("--classes", type=int, default=None, help="number of classes of a plain state_dict")
    p.add_argument("--features", choices=["one_hot", "degree", "continuous"], default=None,
                   help="node-feature encoding of a plain state_dict (one-hot node types, one-hot node degree "
                        "clipped at F-1, or continuous values); dfkd checkpoints record their own")


def _add_teacher_module_options(p) -> None:
    p.add_argument("--teacher-module", default=None, metavar="PACKAGE.MODULE:FACTORY",
                   help="build the teacher with your own code (called with --teacher-kwargs, must return an nn.Module "
                        "forward(x, edge_index, batch)) and load the state_dict given as --teacher into it; needs "
                        "--in-channels, --classes and --trust-checkpoint (it runs that code)")
    p.add_argument("--teacher-kwargs", type=json.loads, default=None, metavar="JSON",
                   help="keyword arguments of the --teacher-module factory, e.g. '{\"hidden\": 64}'")
    p.add_argument("--keep-teacher-module", action="store_true",
                   help="use the --teacher-module model as it is even when it computes a zoo model (by default "
                        "such a teacher becomes that zoo model: saved in dfkd's format, and a student of its family "
                        "can start from its weights)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="dfkd", description="Data-free knowledge distillation for graph neural networks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'dfkd COMMAND --help' for the options of a command",
    )
    parser.add_argument("--version", action="version", version=f"dfkd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    class Formatter(fmt, argparse.RawDescriptionHelpFormatter):
        pass

    p = sub.add_parser("train-teacher", help="train a teacher GNN on a real dataset", epilog=EPILOG_TRAIN,
                       formatter_class=Formatter)
    _add_dataset(p)
    p.add_argument("--arch", default="gin-5-64", help="architecture NAME-LAYERS-HIDDEN")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--epochs", type=int, default=300, help="training epochs")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (halved every 50 epochs)")
    p.add_argument("--batch-size", type=int, default=32, help="graphs per step")
    p.add_argument("--seed", type=int, default=0, help="seeds initialisation, split and shuffling")
    p.add_argument("--val-ratio", type=float, default=0.1, help="part of the training split used to pick the best epoch")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    _add_common(p)
    p.set_defaults(func=cmd_train_teacher)

    p = sub.add_parser("evaluate", help="accuracy, teacher agreement, size and latency of a model",
                       epilog=EPILOG_EVAL, formatter_class=Formatter)
    p.add_argument("--model", required=True, help="checkpoint of the model to score")
    p.add_argument("--teacher", default=None, help="teacher checkpoint to compare with")
    _add_teacher_module_options(p)
    _add_dataset(p)
    _add_eval_split(p)
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    _add_checkpoint_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("info", help="versions, device, scatter backend, registered models and generators",
                       formatter_class=Formatter)
    _add_common(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("distill", help="distil a student from a teacher checkpoint without real data",
                       epilog=EPILOG_DISTILL, formatter_class=Formatter)
    p.add_argument("--teacher", required=True, help="teacher checkpoint")
    p.add_argument("--student", default="gin-2-32", help="student architecture NAME-LAYERS-HIDDEN")
    p.add_argument("--out", required=True, help="student checkpoint to write (report beside it as .report.json, "
                                                "the resolved recipe as .recipe.toml)")
    p.add_argument("--config", metavar="RECIPE.toml", default=None,
                   help="read options from a TOML recipe (keys as these options: num-graphs = 128); flags given "
                        "here win")
    p.add_argument("--print-config", action="store_true",
                   help="print the fully resolved recipe (recipe file + flags) as TOML and stop")
    _add_generator_options(p)
    g = p.add_argument_group("student training")
    # Defaults None: a --preset's student recipe fills what is not given, then DistillConfig's defaults.
    g.add_argument("--epochs", type=int, default=None, help="passes over the synthetic set (default 400)")
    g.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (default 0.01; 0.003 for a student started from the teacher's weights)")
    g.add_argument("--lr-schedule", choices=["linear", "constant"], default=None,
                   help="learning-rate schedule (default linear decay to 0)")
    g.add_argument("--weight-decay", type=float, default=None, help="Adam weight decay (default 0)")
    g.add_argument("--batch-size", type=int, default=None, help="graphs per step (default 32)")
    g.add_argument("--loss", default=None,
                   help="loss recipe NAME[=WEIGHT],... (kl, dynamic_kl, mae, mse, prob_mae, label_ce, attention, lsp, "
                        "gsp, gcrd, relation); default auto: the "
                        "generator's recommended one (kl; conditional: kl,label_ce=0.5,attention=1; "
                        "regression teachers: mse)")
    g.add_argument("--temperature", type=float, default=None, help="softmax temperature of the KL loss (default 2)")
    g.add_argument("--grad-clip", type=float, default=0.0, metavar="MAX_NORM",
                   help="clip the student's gradient to this L2 norm every step (0 = off); may change on --resume")
    g.add_argument("--curriculum", choices=list(CURRICULA), default=None,
                   help="train on the easiest graphs of every batch first (highest teacher confidence, lowest "
                        "teacher-student disagreement, fewest nodes or lowest mean degree), widening to all graphs")
    g.add_argument("--curriculum-start", type=float, default=0.5, help="fraction of every batch kept at first")
    g.add_argument("--curriculum-ramp", type=float, default=0.5,
                   help="fraction of the epochs after which every graph is kept")
    g.add_argument("--teacher-head", choices=["off", "frozen", "trained"], default="off",
                   help="predict through a projection into the teacher's readout and its classifier (frozen or "
                        "trained from it), folded into the student's own head at the end")
    g.add_argument("--inherited-lr-scale", type=float, default=1.0,
                   help="learning-rate multiplier of an inherited student's layers below its head (0 freezes them)")
    g.add_argument("--probe-fraction", type=float, default=0.0,
                   help="fraction of the epochs an inherited student trains its head alone before all (0 = off)")
    g.add_argument("--average-fraction", type=float, default=0.0,
                   help="average the student's weights over this fraction of the final epochs (stochastic weight "
                        "averaging; 0 = off)")
    g.add_argument("--start-share", type=float, default=0.0,
                   help="blend this share of an inherited student's starting weights back into its trained ones "
                        "(WiSE-FT; 0 = off)")
    g.add_argument("--student-init", choices=["auto", "teacher", "random"], default="auto",
                   help="start a student of the teacher's family from the teacher's first layers, narrowed to their "
                        "busiest channels, keeping its BatchNorm statistics (teacher), or at random; auto: teacher "
                        "with the prior generator where the student can inherit, else random")
    g.add_argument("--resample", action=argparse.BooleanOptionalAction, default=None,
                   help="draw fresh samples of the synthetic graphs' distributions every epoch (default), or reuse the "
                        "same graphs (--no-resample)")
    g.add_argument("--student-batch-norm", choices=["on", "off"], default=None,
                   help="BatchNorm in the student (default: the teacher's, for a student of its family; else on)")
    g.add_argument("--student-dropout", type=float, default=None,
                   help="dropout before the student's head (default: the architecture's, 0.5)")
    g.add_argument("--assistant", action="append", default=[], metavar="ARCH",
                   help="teacher-assistant chain: distil teacher -> ARCH -> ... -> student (repeatable, in order)")
    g = p.add_argument_group("evaluation and baselines (real data, never used for data-free training)")
    g.add_argument("--eval-dataset", default=None, help="report accuracy on this dataset's test split")
    _add_eval_split(g)
    g.add_argument("--real-dataset", default=None, help="distil on this dataset's training split instead (KD ceiling)")
    g.add_argument("--data-root", default=None, help="folder holding NAME/NAME.txt in GIN format")
    g = p.add_argument_group("run control")
    g.add_argument("--work-dir", default=None, help="synthetic set and resumable state (default: OUT.run/)")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run from its work dir")
    g.add_argument("--checkpoint-every", type=int, default=25, help="epochs between resumable checkpoints")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    _add_precision(g)
    g.add_argument("--nproc", type=int, default=1,
                   help="train with N local processes (DDP; gloo on CPU, NCCL on GPU); under torchrun leave it at 1")
    g.add_argument("--trust-checkpoint", action="store_true",
                   help="allow a teacher checkpoint that holds pickled code (unsafe)")
    _add_plain_state_dict_options(g)
    _add_teacher_module_options(g)
    g.add_argument("--log", action="append", default=[], metavar="TRACKER[:TARGET]",
                   help="send settings, every epoch's numbers and the final figures to an experiment tracker: "
                        "tensorboard:DIR, mlflow or mlflow:TRACKING_URI (repeatable; extras dfkd[tensorboard], "
                        "dfkd[mlflow])")
    g.add_argument("--report", default=None, metavar="PATH",
                   help="also write a report (training curves, teacher vs student size, latency and scores): "
                        "PATH.html is one self-contained file, PATH.md writes markdown with PNGs beside it; "
                        "figures need dfkd[plot]")
    _add_common(p)
    p.set_defaults(func=cmd_distill, parser=p)

    p = sub.add_parser("generate", help="synthesise graphs from a teacher (no student)",
                       epilog=EPILOG_GENERATE, formatter_class=Formatter)
    p.add_argument("--teacher", required=True, help="teacher checkpoint")
    p.add_argument("--out", required=True, help="synthetic set to write (.pt)")
    _add_generator_options(p)
    p.add_argument("--graphml", default=None, help="also export every graph as GraphML into this folder")
    p.add_argument("--class", dest="wanted_classes", type=int, action="append", default=None, metavar="C",
                   help="only graphs of this class (conditional generator; repeatable)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    _add_precision(p)
    p.add_argument("--trust-checkpoint", action="store_true", help="allow a pickled teacher checkpoint (unsafe)")
    _add_plain_state_dict_options(p)
    _add_teacher_module_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("inspect", help="statistics (and a picture) of synthetic graphs, beside real ones",
                       epilog=EPILOG_INSPECT, formatter_class=Formatter)
    p.add_argument("synthetic", metavar="SYNTH.pt", help="synthetic set written by 'dfkd generate' or 'dfkd distill'")
    p.add_argument("--dataset", default=None, help="also describe this real dataset (all its graphs), side by side")
    p.add_argument("--data-root", default=None, help="folder holding NAME/NAME.txt in GIN format")
    p.add_argument("--teacher", default=None,
                   help="teacher checkpoint: its confidence on the real graphs (synthetic sets store their own)")
    p.add_argument("--png", default=None, help="draw example graphs per class into this PNG (needs dfkd[plot])")
    p.add_argument("--per-class", type=int, default=4, help="example graphs per class and source in --png")
    p.add_argument("--json", default=None, help="also write the statistics as JSON here")
    p.add_argument("--graphml", default=None, help="also export every synthetic graph as GraphML into this folder")
    p.add_argument("--seed", type=int, default=0, help="picks the examples drawn and their layout")
    p.add_argument("--trust-checkpoint", action="store_true", help="allow a pickled teacher checkpoint (unsafe)")
    _add_plain_state_dict_options(p)
    _add_teacher_module_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("export", help="export a model to TorchScript or ONNX, checked against PyTorch",
                       epilog=EPILOG_EXPORT, formatter_class=Formatter)
    p.add_argument("--model", required=True, help="checkpoint of the model to export (e.g. the student)")
    p.add_argument("--out", required=True, help="file to write (.ts / .pt for TorchScript, .onnx for ONNX)")
    p.add_argument("--format", choices=["torchscript", "onnx"], default=None,
                   help="default: onnx when --out ends in .onnx, else torchscript")
    p.add_argument("--dataset", default=None,
                   help="check the export on this dataset's graphs (default: random graphs of the model's input encoding)")
    p.add_argument("--data-root", default=None, help="folder holding NAME/NAME.txt in GIN format")
    p.add_argument("--graphs", default=None, help="check the export on this synthetic set instead")
    p.add_argument("--num-graphs", type=int, default=64, help="graphs in the check batch")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |exported - PyTorch| output difference")
    _add_checkpoint_options(p)
    _add_common(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="rebuild the HTML or markdown report of a finished distillation run",
                       epilog=EPILOG_REPORT, formatter_class=Formatter)
    p.add_argument("run_report", metavar="RUN.report.json", help="report JSON written by 'dfkd distill' beside the student")
    p.add_argument("--out", required=True, help="report to write: .html (self-contained) or .md (with PNGs beside it)")
    p.add_argument("--teacher", default=None, help="teacher checkpoint; without it, the one the run recorded")
    p.add_argument("--student", default=None, help="student checkpoint; without it, the one the run recorded or S.pt beside S.report.json")
    p.add_argument("--eval-dataset", default=None,
                   help="measure latency on this dataset's test split instead of random graphs (scores come from the "
                        "run; scored there when the run has none)")
    _add_eval_split(p)
    p.add_argument("--data-root", default=None, help="folder holding NAME/NAME.txt in GIN format")
    p.add_argument("--device", default="cpu", help="where latency is measured: cpu, cuda, ...")
    p.add_argument("--trust-checkpoint", action="store_true", help="allow pickled checkpoints (unsafe)")
    _add_common(p)
    p.set_defaults(func=cmd_report)
    parser.subcommands = sub.choices  # name -> parser, for recipe files (apply_recipe)
    return parser


def apply_recipe(parser: argparse.ArgumentParser, argv: List[str]) -> None:
    """When ``argv`` names a command and ``--config RECIPE``, make the recipe's values that command's defaults
    (flags on the command line still win; options the recipe sets are no longer required)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = getattr(parser, "subcommands", {}).get(command)
    if sub is None or not any(a.dest == "config" for a in sub._actions):
        return
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv[argv.index(command) + 1:])
    if known.config:
        recipe = load_recipe(known.config, sub)
        for action in sub._actions:
            if action.dest in recipe:
                action.required = False
        sub.set_defaults(**recipe)


def _add_generator_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("graph generation")
    g.add_argument("--generator", default=DEFAULT_GENERATOR,
                   help="registered generator: prior, gfkd, dfad, conditional, random (see 'dfkd info')")
    g.add_argument("--num-graphs", type=int, default=256, help="synthetic graphs to generate")
    g.add_argument("--preset", default=None,
                   help="named option set of the generator: paper (gfkd, dfad: the method as published, with the "
                        "student recipe it states; flags given here still win)")
    g.add_argument("--nodes", default=None, help="node-count range MIN:MAX (default: teacher's statistics, else 10:30)")
    g.add_argument("--structure", choices=["auto", "checkpoint", "teacher"], default=None,
                   help="where the degree law comes from (prior, gfkd, dfad, conditional): the checkpoint's training "
                        "statistics, inferred from the teacher (its BatchNorm statistics, else its first layer), or "
                        "auto (checkpoint if it has them, else teacher); default: the generator's (auto)")
    g.add_argument("--iterations", type=int, default=None,
                   help="generator optimisation steps (gfkd: 300); warm-up steps for dfad (0) and conditional (300)")
    g.add_argument("--estimator", default=None, help="structure gradient: arm, concrete, straight_through (gfkd's default: arm)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other generator option, e.g. --set bn_weight=0.5 (repeatable)")
    g.add_argument("--seed", type=int, default=0, help="seeds generation and training")


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def generator_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Generator config overrides from --nodes, --iterations, --estimator and --set."""
    options: Dict[str, Any] = {}
    if args.nodes:
        try:
            low, high = (int(v) for v in args.nodes.split(":"))
        except ValueError:
            raise UserError(f"--nodes {args.nodes!r}: write MIN:MAX, e.g. 10:30") from None
        options.update(min_nodes=low, max_nodes=high)
    if args.iterations is not None:
        import dataclasses

        from dfkd.generators.registry import GENERATORS

        # Offline generators optimise for --iterations; online ones warm up for that many steps.
        if args.generator in GENERATORS:
            fields = {f.name for f in dataclasses.fields(GENERATORS.get(args.generator).config_cls)}
            name = next((n for n in ("iterations", "warmup_steps") if n in fields), None)
            if name is None:
                raise UserError(f"--iterations: generator {args.generator!r} does not optimise anything; drop the option")
            options[name] = args.iterations
    if args.estimator is not None:
        options["estimator"] = args.estimator
    if getattr(args, "structure", None) is not None:
        import dataclasses

        from dfkd.generators.registry import GENERATORS

        if args.generator in GENERATORS and "structure" not in {
                f.name for f in dataclasses.fields(GENERATORS.get(args.generator).config_cls)}:
            raise UserError(f"--structure: generator {args.generator!r} does not read a degree law from anywhere; "
                            "use --generator prior, gfkd, dfad or conditional, or drop the option")
        options["structure"] = args.structure
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: write KEY=VALUE, e.g. --set bn_weight=0.5")
        options[key.strip()] = _parse_value(value.strip())
    if args.num_graphs < 1:
        raise UserError(f"--num-graphs must be >= 1, got {args.num_graphs}")
    return options


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)


def _add_precision(group) -> None:
    group.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                       help="models' forward passes under torch.autocast (bf16, fp16: weights, losses and evaluation "
                            "stay float32); faster only with GPU tensor cores or CPU bf16 units")


def _device(args: argparse.Namespace) -> str:
    from dfkd.utils import resolve_device

    return str(resolve_device(args.device))


def _dataset(args: argparse.Namespace):
    return load_dataset(args.dataset, root=args.data_root)


def cmd_train_teacher(args: argparse.Namespace) -> int:
    from dfkd.train import TrainConfig, train_teacher

    dataset = _dataset(args)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    result = train_teacher(dataset, args.arch, fold=args.fold, holdout=args.holdout, config=config,
                           val_ratio=args.val_ratio, show_progress=not args.quiet, device=_device(args),
                           dataset_name=args.dataset)
    result.checkpoint.save(args.out)
    split = result.checkpoint.provenance["split"]
    where = f"teacher {args.arch} on {args.dataset} ({split['kind']} {split.get('fold', split.get('ratio'))})"
    if result.task == "regression":
        print(_regression_teacher_line(where, result, args.out))
        return 0
    print(f"{where}: val accuracy {result.val_accuracy:.4f}, test accuracy {result.test_accuracy:.4f} -> {args.out}")
    return 0


def _load_teacher(args: argparse.Namespace):
    """The ``--teacher`` of a command: built by ``--teacher-module`` code, or read as a checkpoint."""
    if getattr(args, "teacher_module", None):
        from dfkd.checkpoint import load_code_teacher

        return load_code_teacher(args.teacher_module, args.teacher, args.in_channels, args.classes,
                                 features=args.features, kwargs=args.teacher_kwargs, trust=args.trust_checkpoint,
                                 recognise=not getattr(args, "keep_teacher_module", False))
    return _load(args.teacher, args)


def _load(path: str, args: argparse.Namespace):
    return load_checkpoint(path, trust=args.trust_checkpoint, arch=args.arch,
                           in_channels=args.in_channels, num_classes=args.classes, features=args.features)


def check_features(ckpt, dataset, role: str) -> None:
    """One-line error when a model's input width does not match a dataset's features."""
    expected = ckpt.model_config.in_channels if ckpt.model_config else None
    if expected is not None and expected != dataset.num_features:
        raise UserError(
            f"{role} {ckpt.path} expects {expected} node features but the dataset has {dataset.num_features}: "
            "use the dataset the model was trained on"
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dfkd.evaluate import evaluate

    ckpt = _load(args.model, args)
    teacher_ckpt = _load_teacher(args) if args.teacher else None
    dataset = _dataset(args)
    check_features(ckpt, dataset, "model")
    if teacher_ckpt:
        check_features(teacher_ckpt, dataset, "teacher")
    if args.fold is not None or args.holdout is not None:
        _, idx, split = split_indices(dataset, fold=args.fold, holdout=args.holdout)
        graphs, where = [dataset[i] for i in idx], f"test split {split}"
    else:
        # The split the (teacher) model was trained with, so its training graphs are not scored.
        graphs, where = _split_graphs(dataset, teacher_ckpt or ckpt, "test", args.eval_split, fallback=ckpt)
    report = evaluate(ckpt.build_model().to(_device(args)), graphs,
                      teacher=teacher_ckpt.build_model().to(_device(args)) if teacher_ckpt else None,
                      device=_device(args))
    print(f"{args.dataset}, {where}: {report.num_graphs} graphs")
    if report.task == "regression":
        print("\n".join(_regression_eval_lines(report)))
    else:
        print(f"  model    accuracy {report.accuracy:.4f}  params {report.parameters:,}  latency {report.latency_ms:.3f} ms/graph")
        print(f"  majority-class accuracy {report.majority_accuracy:.4f} (always predicting the most frequent class)")
    if teacher_ckpt and report.task != "regression":
        print(f"  teacher  accuracy {report.teacher_accuracy:.4f}  params {report.teacher_parameters:,}  "
              f"latency {report.teacher_latency_ms:.3f} ms/graph")
        print("  " + _comparison_line(report.to_dict()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"dataset": args.dataset, "split": where, **report.to_dict()}, handle, indent=2)
    return 0


def _split_graphs(dataset, ckpt, part: str, eval_split: str = "test", fallback=None) -> Tuple[list, str]:
    """The ``part`` ('train' or 'test') of the split ``ckpt`` (else ``fallback``) records for ``dataset``,
    and a description of it. ``eval_split='all'`` takes every graph. Without a recorded split on this
    dataset the test part is refused (the training graphs cannot be told apart) and the train part is
    every graph, with a warning."""
    from dfkd.data import canonical_name

    if eval_split == "all":
        return list(dataset), "all graphs (training graphs included: --eval-split all)"
    for holder in (ckpt, fallback):
        record = holder.provenance.get("split") if holder is not None else None
        trained_on = holder.provenance.get("dataset") if holder is not None else None
        if record and trained_on and canonical_name(str(trained_on)) == canonical_name(dataset.name):
            train, test = split_from_record(dataset, record)
            return [dataset[i] for i in (train if part == "train" else test)], f"{part} split {record}"
    if part == "test":
        raise UserError(f"the teacher checkpoint records no training split on {dataset.name}, so its test graphs "
                        "cannot be told apart from the graphs it was trained on: pass --eval-split all to score "
                        "every graph anyway (training graphs included)")
    logger.warning("teacher records no split on %s: using all its graphs", dataset.name)
    return list(dataset), "all graphs (the teacher records no split)"


def _comparison_line(scores: Dict[str, Any]) -> str:
    """Student against teacher and chance on one line (classification scores of :mod:`dfkd.evaluate`)."""
    return (f"agreement {scores['agreement']:.4f}  chance-adjusted accuracy "
            f"{scores['chance_adjusted_accuracy']:.4f}  relative accuracy {scores['relative_accuracy']:.4f}")


# Student-recipe flags a --preset may fill (argparse name = DistillConfig field).
PRESET_FLAGS = ("epochs", "lr", "lr_schedule", "weight_decay", "batch_size", "loss", "temperature", "resample")


def cmd_distill(args: argparse.Namespace) -> int:
    from dfkd.distill import DistillConfig, distill_student, preset_config
    from dfkd.distill.api import report_path

    options = generator_options(args)
    recipe = resolved_recipe(args, args.parser)
    if args.print_config:
        print(dump_recipe(recipe, [f"dfkd {__version__}: dfkd distill --config THIS_FILE"]), end="")
        return 0
    if args.report:
        _check_report_path(args.report, "--report")  # before any work
    teacher = _load_teacher(args)
    eval_graphs = real_graphs = None
    if args.eval_dataset:
        dataset = load_dataset(args.eval_dataset, root=args.data_root)
        check_features(teacher, dataset, "teacher")
        eval_graphs, eval_where = _split_graphs(dataset, teacher, "test", args.eval_split)
    if args.real_dataset:
        dataset = load_dataset(args.real_dataset, root=args.data_root)
        check_features(teacher, dataset, "teacher")
        real_graphs, _ = _split_graphs(dataset, teacher, "train")
    fields = {name: getattr(args, name) for name in PRESET_FLAGS if getattr(args, name) is not None}
    fields.update(seed=args.seed, checkpoint_every=args.checkpoint_every, grad_clip=args.grad_clip,
                  curriculum=args.curriculum, curriculum_start=args.curriculum_start,
                  curriculum_ramp=args.curriculum_ramp, teacher_head=args.teacher_head, precision=args.precision,
                  student_init=args.student_init, inherited_lr_scale=args.inherited_lr_scale,
                  probe_fraction=args.probe_fraction, average_fraction=args.average_fraction,
                  start_share=args.start_share)
    config = preset_config(args.generator, args.preset, **fields) if args.preset else DistillConfig(**fields)
    run = dict(
        teacher=teacher, student=args.student, generator=args.generator, num_graphs=args.num_graphs,
        generator_options=options, config=config, preset=args.preset, eval_graphs=eval_graphs, real_graphs=real_graphs,
        out=args.out, work_dir=args.work_dir, provenance={"recipe": recipe},
        trackers=args.log, resume=args.resume, show_progress=not args.quiet, device=_device(args),
        student_options={**({} if args.student_batch_norm is None else {"batch_norm": args.student_batch_norm == "on"}),
                         **({} if args.student_dropout is None else {"dropout": args.student_dropout})},
        assistants=args.assistant,
    )
    if args.nproc < 1:
        raise UserError(f"--nproc must be >= 1, got {args.nproc}")
    if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--nproc spawns processes itself: under torchrun leave it out (torchrun's --nproc_per_node sets them)")
    if args.nproc > 1:
        from dfkd.distill.distributed import distill_distributed

        result = distill_distributed(args.nproc, log_level=logging.getLogger().level, **run)
    else:
        result = distill_student(**run)
        from dfkd.distill.distributed import is_main

        if not is_main():
            return 0  # under torchrun, rank 0 reports
    rep = result.report
    name = teacher.model_config.short_name if teacher.model_config else args.teacher_module or "(own module)"
    print(f"student {args.student} <- teacher {name} via {rep.extra['generator']}: "
          f"{rep.student_parameters:,} vs {rep.teacher_parameters:,} parameters; generation {rep.generation_seconds:.1f} s, "
          f"distillation {rep.distill_seconds:.1f} s")
    if rep.final and teacher.task == "regression":
        print(_regression_distill_line(args.eval_dataset, rep.final))
    elif rep.final:
        f = rep.final
        print(f"{args.eval_dataset}, {eval_where}, {len(eval_graphs)} graphs: teacher accuracy "
              f"{f['teacher_accuracy']:.4f}, student accuracy {f['accuracy']:.4f}, majority-class accuracy "
              f"{f['majority_accuracy']:.4f}; {_comparison_line(f)}")
    write_recipe(recipe_path(args.out), dump_recipe(recipe, [f"the resolved recipe of {args.out} (dfkd {__version__}); "
                                                            "run it again: dfkd distill --config THIS_FILE"]))
    print(f"saved {args.out}, {report_path(args.out)} and {recipe_path(args.out)}")
    if args.report:
        from dfkd.report import write_report

        student = getattr(result, "student", None)
        written = write_report(rep, args.report, teacher=teacher, student=args.out if student is None else student,
                               eval_graphs=eval_graphs, device=_device(args), trust=args.trust_checkpoint)
        print(_report_line(written))
    return 0


def _check_report_path(path: str, option: str) -> None:
    from dfkd.report import report_format

    try:
        report_format(path)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


def _report_line(written: List[str]) -> str:
    figures = len(written) - 1
    return f"report -> {written[0]}" + (f" (+ {figures} PNG figure(s) beside it)" if figures else "")


def cmd_report(args: argparse.Namespace) -> int:
    from dfkd.report import find_run_models, read_report, write_report

    _check_report_path(args.out, "--out")
    report = read_report(args.run_report)
    teacher_path, student_path = find_run_models(report, args.run_report, teacher=args.teacher, student=args.student)
    teacher = load_checkpoint(teacher_path, trust=args.trust_checkpoint) if teacher_path else None
    eval_graphs = None
    if args.eval_dataset:
        dataset = load_dataset(args.eval_dataset, root=args.data_root)
        if teacher is None:
            eval_graphs = list(dataset)  # latency only: without a teacher nothing is scored
        else:
            check_features(teacher, dataset, "teacher")
            eval_graphs, _ = _split_graphs(dataset, teacher, "test", args.eval_split)
    written = write_report(report, args.out, teacher=teacher, student=student_path, eval_graphs=eval_graphs,
                           device=_device(args), trust=args.trust_checkpoint)
    print(_report_line(written))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from dfkd.distill import make_generator

    options = generator_options(args)
    teacher = _load_teacher(args)
    device = _device(args)
    check_precision(args.precision, device)
    gen = make_generator(args.generator, teacher, device=device, preset=args.preset, **options)
    extra = {}
    if args.wanted_classes:
        gen.class_labels(args.wanted_classes, args.num_graphs)  # validates before any work
        extra["classes"] = args.wanted_classes
    with use_precision(args.precision):
        graphs = gen.generate(args.num_graphs, seed=args.seed, show_progress=not args.quiet, **extra)
    graphs.save(args.out)
    summary = graphs.summary()
    if teacher.task == "regression":
        print(_regression_generate_line(graphs, gen, args.out))
        if args.graphml:
            print(f"exported {len(graphs.export_graphml(args.graphml))} GraphML files to {args.graphml}")
        return 0
    agreement = "class fidelity (teacher predicts the asked class)" if args.wanted_classes else "teacher agrees with the targets"
    print(f"{len(graphs)} graphs from {gen!r}: {summary['mean_nodes']:.1f} nodes, {summary['mean_edges']:.1f} edges "
          f"on average; {agreement} on {summary.get('teacher_agreement', float('nan')):.2%} "
          f"(mean confidence {summary.get('teacher_confidence', float('nan')):.3f}, predicted classes "
          f"{summary.get('class_histogram')}) -> {args.out}")
    if args.graphml:
        paths = graphs.export_graphml(args.graphml)
        print(f"exported {len(paths)} GraphML files to {args.graphml}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import os

    from dfkd.generators import SyntheticGraphSet
    from dfkd.inspect import (PlotUnavailableError, draw_examples, format_statistics, graph_statistics,
                              require_matplotlib, teacher_outputs)

    if args.per_class < 1:
        raise UserError(f"--per-class must be >= 1, got {args.per_class}")
    if args.teacher and not args.dataset:
        raise UserError("--teacher scores real graphs: add --dataset NAME")
    if args.png:
        try:
            require_matplotlib()  # before any work
        except PlotUnavailableError as exc:
            raise UserError(f"--png: {exc}") from None
    if not os.path.isfile(args.synthetic):
        raise UserError(f"synthetic set not found: {args.synthetic} (write one with 'dfkd generate --out FILE')")
    try:
        synth = SyntheticGraphSet.load(args.synthetic)
    except CheckpointError:
        raise UserError(f"{args.synthetic}: not a readable dfkd synthetic graph set (truncated, corrupted or another "
                        "kind of file): write one with 'dfkd generate --out FILE'") from None
    if len(synth) == 0:
        raise UserError(f"{args.synthetic} holds no graphs: generate some with 'dfkd generate --num-graphs N'")
    columns = {"synthetic": graph_statistics(synth)}
    sources = {"synthetic": synth}
    real_logits = {}
    if args.dataset:
        dataset = load_dataset(args.dataset, root=args.data_root)
        if dataset.num_features != synth.feature_spec.dim:
            raise UserError(
                f"the synthetic graphs have {synth.feature_spec.dim} node features but {args.dataset} has "
                f"{dataset.num_features}: compare with the dataset the teacher was trained on"
            )
        logits = None
        if args.teacher:
            teacher = _load_teacher(args)
            check_features(teacher, dataset, "teacher")
            logits = teacher_outputs(teacher.build_model(), list(dataset))
            real_logits[args.dataset] = logits
        columns[args.dataset] = graph_statistics(dataset, teacher_logits=logits)
        sources[args.dataset] = dataset
    meta = synth.meta
    origin = f" from {meta['generator']}" if meta.get("generator") else ""
    print(f"{args.synthetic}: {len(synth)} graphs{origin}, {synth.feature_spec.dim} node features "
          f"({synth.feature_spec.encoding})")
    print(format_statistics(columns))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"synthetic_file": args.synthetic, **columns}, handle, indent=2)
        print(f"statistics -> {args.json}")
    if args.png:
        draw_examples(sources, args.png, per_class=args.per_class, seed=args.seed, teacher_logits=real_logits)
        print(f"example graphs -> {args.png}")
    if args.graphml:
        paths = synth.export_graphml(args.graphml)
        print(f"exported {len(paths)} GraphML files to {args.graphml}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dfkd.export import export_checkpoint

    if args.dataset and args.graphs:
        raise UserError("--dataset and --graphs both give check graphs: keep one")
    ckpt = _load(args.model, args)
    graphs = None
    if args.dataset:
        dataset = load_dataset(args.dataset, root=args.data_root)
        check_features(ckpt, dataset, "model")
        graphs = list(dataset)
    elif args.graphs:
        import os

        from dfkd.generators import SyntheticGraphSet

        if not os.path.isfile(args.graphs):
            raise UserError(f"synthetic set not found: {args.graphs} (write one with 'dfkd generate --out FILE')")
        graphs = SyntheticGraphSet.load(args.graphs).to_data_list()
    result = export_checkpoint(ckpt, args.out, format=args.format, graphs=graphs, num_graphs=args.num_graphs,
                               tolerance=args.tolerance)
    print(f"exported {args.model} as {result.format} -> {result.path}; checked on {result.num_graphs} graphs "
          f"({result.source}): max |exported - PyTorch| = {result.max_abs_diff:.2e} (tolerance {result.tolerance:g})")
    print(f"inputs: {', '.join(result.input_names)}; output: logits [num_graphs, {result.num_classes}]")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import torch_geometric

    import dfkd.generators as generators
    from dfkd.nn import list_models
    from dfkd.ops import available_backends, get_backend, get_propagation

    print(f"dfkd {__version__}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, torch_geometric {torch_geometric.__version__}")
    cuda = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu only"
    print(f"device: {cuda}, {torch.get_num_threads()} CPU threads")
    print(f"scatter backend: {get_backend()} (available: {', '.join(available_backends())})")
    print(f"aggregation: {get_propagation()} (dense per-graph blocks for dense graphs, scatter otherwise)")
    print(f"precision: fp32 by default; --precision bf16/fp16 pays with GPU tensor cores or CPU bf16 units "
          f"(this CPU: {torch.backends.cpu.get_cpu_capability()})")
    print(f"models: {', '.join(list_models())}")
    print(f"generators: {', '.join(generators.list_generators()) or '(none registered)'}")
    return 0


# --- regression teachers (issue 6): what the commands print for them -----------------------------------

def _regression_teacher_line(where: str, result, out: str) -> str:
    v, t = result.val_metrics, result.test_metrics
    return (f"{where}, regression: val R² {v.get('r2', float('nan')):.4f}; test R² {t['r2']:.4f}, MAE {t['mae']:.4f}, "
            f"RMSE {t['rmse']:.4f} -> {out}")


def _regression_eval_lines(report) -> List[str]:
    lines = [f"  model    R² {report.r2:.4f}  MAE {report.mae:.4f}  RMSE {report.rmse:.4f}  params {report.parameters:,}  "
             f"latency {report.latency_ms:.3f} ms/graph"]
    if report.teacher_r2 is not None:
        lines.append(f"  teacher  R² {report.teacher_r2:.4f}  MAE {report.teacher_mae:.4f}  RMSE {report.teacher_rmse:.4f}  "
                     f"params {report.teacher_parameters:,}  latency {report.teacher_latency_ms:.3f} ms/graph")
        lines.append(f"  agreement (model vs teacher outputs) R² {report.agreement_r2:.4f}  MAE {report.agreement_mae:.4f}  "
                     f"relative R² {report.relative_r2:.4f}")
    return lines


def _regression_distill_line(dataset: Optional[str], f: Dict[str, Any]) -> str:
    return (f"{dataset} test: teacher R² {f['teacher_r2']:.4f} (MAE {f['teacher_mae']:.4f}), student R² {f['r2']:.4f} "
            f"(MAE {f['mae']:.4f}), relative R² {f['relative_r2']:.4f}, agreement R² {f['agreement_r2']:.4f} "
            f"(MAE {f['agreement_mae']:.4f})")


def _regression_generate_line(graphs, gen, out: str) -> str:
    summary = graphs.summary()
    values = graphs.teacher_logits.float() if graphs.teacher_logits is not None else torch.zeros(0)
    spread = (f"teacher outputs {float(values.mean()):.4f} ± {float(values.std()):.4f} "
              f"(range {float(values.min()):.4f}..{float(values.max()):.4f})" if values.numel() > 1 else "no teacher outputs")
    return (f"{len(graphs)} graphs from {gen!r}: {summary['mean_nodes']:.1f} nodes, {summary['mean_edges']:.1f} edges on "
            f"average; {spread} -> {out}")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``dfkd`` console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        apply_recipe(parser, argv)
    except RecipeError as exc:
        print(f"dfkd: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        print("dfkd: error: choose a COMMAND (listed above)", file=sys.stderr)
        return EXIT_USAGE
    _setup_logging(args)
    try:
        return args.func(args)
    except (UserError, CheckpointError, DatasetFormatError, FileNotFoundError, ValueError) as exc:
        if args.debug:
            raise
        print(f"dfkd {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FloatingPointError, OSError) as exc:  # the run blew up or the disk is full: state kept, one line
        if args.debug:
            raise
        print(f"dfkd {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"dfkd {args.command}: interrupted", file=sys.stderr)
        return 130
