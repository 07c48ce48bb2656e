"""Sharded online generation across processes: one process against two, side by side, on CPU.

For the online generators ``prior`` and ``dfad`` (defaults; MUTAG GIN-5-64 teacher), every process with one
torch thread, three set-ups measured in one run:

* **1 process**: ``sample(B)`` / ``generator_step`` / ``distill_student``;
* **2 processes, replicated** (before sharding): every rank draws the whole global batch and takes whole
  generator steps (``OnlineSource.sharded = False``); the distiller shards only the student's work;
* **2 processes, sharded** (now): every rank draws the random parts of the whole batch but labels only its
  share with the teacher (``sample_shard``; ``prior``: its share of the class-balancing candidates, outputs
  gathered) and computes generator losses on its share (gradients all-reduced).

Measured: generation throughput (graphs/s of the global batch, teacher included, between barriers) and
the busiest rank's CPU time per batch, the same for ``dfad`` generator steps, and a whole distillation
(wall time including process start-up, the report's epoch-loop seconds, the busiest rank's CPU seconds).

Every measured set-up (``kind``: ``generation`` per generator, batch and set-up; ``distill`` per generator
and set-up) is appended as one JSON line to ``--raw`` (default ``runs/distributed.jsonl``, committed);
``python benchmarks/regenerate.py`` writes ``results/distributed.md`` from them (:func:`render`).

    OMP_NUM_THREADS=1 python benchmarks/distributed_speed.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (HERE, RUNS, append_run, grouped, header_lines, load_average, load_note,  # noqa: E402
                    machine_tags, median, mutag_teacher, provenance, repeat_note, settings, speedup, table)

import dfkd  # noqa: E402
from dfkd.distill import DistillConfig, build_student, distill_student, make_generator  # noqa: E402
from dfkd.distill import distributed  # noqa: E402
from dfkd.distill.sources import OnlineSource  # noqa: E402

RAW = os.path.join(RUNS, "distributed.jsonl")
GENERATORS = ("prior", "dfad")
MODES = ("1 process", "2 processes, replicated (before)", "2 processes, sharded (now)")


def _time_generation(name: str, teacher_path: str, args, sharded: bool) -> dict:
    """Per global batch size of ``args.sizes``: seconds per draw (``sample``) and per ``dfad`` generator step
    (``step``), wall between barriers and the busiest rank's CPU (``*_cpu``), over ``args.batches`` of each, in
    this process or, inside a process group, by every rank together."""
    torch.set_num_threads(1)
    ctx = distributed.context()
    ckpt = dfkd.load_checkpoint(teacher_path)
    gen = make_generator(name, ckpt).build(0)
    torch.manual_seed(0)
    student = build_student("gin-2-32", ckpt)
    rng = torch.Generator().manual_seed(0)
    split = sharded and ctx is not None
    results = {}
    for size in args.sizes:
        lo, hi, _ = distributed.rank_share(size, ctx) if split else (0, size, size)

        def draw():
            return gen.sample_shard(size, rng, lo, hi, ctx=ctx) if split else gen.sample(size, rng)

        def step():
            if split:
                return gen.generator_step_shard(student, size, rng, ctx)
            return gen.generator_step(student, size, rng)

        out = results[str(size)] = {}
        for label, fn, repeats in (("sample", draw, args.batches),
                                   ("step", step, args.batches if gen.generator_steps else 0)):
            if not repeats:
                continue
            fn()  # warm-up
            distributed.barrier()
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeats):
                fn()
            cpu = _busiest(time.process_time() - cpu)
            distributed.barrier()
            out[label] = (time.perf_counter() - start) / repeats
            out[f"{label}_cpu"] = cpu / repeats
    return results


def _busiest(seconds: float) -> float:
    """The largest of every rank's ``seconds`` (``seconds`` itself outside a process group)."""
    if distributed.context() is None:
        return seconds
    return float(distributed.all_gather_rows(torch.tensor([[seconds]], dtype=torch.float64)).max())


def _generation_worker(name: str, teacher_path: str, args, sharded: bool, path: str) -> None:
    result = _time_generation(name, teacher_path, args, sharded)
    if distributed.is_main():
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(result, handle)


def _distill(kwargs: dict, sharded: bool) -> None:
    """``distill_student`` in this process (every rank of a group calls it); the busiest rank's CPU seconds
    go to ``<out>.cpu``."""
    torch.set_num_threads(1)
    OnlineSource.sharded = sharded
    cpu = time.process_time()
    distill_student(**kwargs)
    cpu = _busiest(time.process_time() - cpu)
    if distributed.is_main():
        with open(kwargs["out"] + ".cpu", "w", encoding="utf-8") as handle:
            handle.write(str(cpu))


def _distill_kwargs(name: str, teacher_path: str, args, out: str) -> dict:
    return dict(teacher=teacher_path, student="gin-2-32", generator=name, num_graphs=args.graphs, out=out,
                show_progress=False, config=DistillConfig(epochs=args.epochs, batch_size=args.batch_size, seed=0,
                                                          checkpoint_every=0, eval_every=args.epochs))


def _read_loop_seconds(out: str) -> float:
    from dfkd.distill.api import report_path

    with open(report_path(out), encoding="utf-8") as handle:
        return float(json.load(handle)["distill_seconds"])


def measure(name: str, teacher_path: str, args, tmp: str, record) -> None:
    """The generation timings and the whole distillation of one generator, the three set-ups side by side;
    ``record(kind, figures, load)`` appends each measured set-up."""
    for mode in MODES:
        load = load_average()
        if mode == MODES[0]:
            timings = _time_generation(name, teacher_path, args, sharded=False)
        else:
            path = os.path.join(tmp, f"{name}-gen.json")
            distributed.launch(_generation_worker, 2, name, teacher_path, args, mode == MODES[2], path)
            with open(path, encoding="utf-8") as handle:
                timings = json.load(handle)
        for size in args.sizes:
            t = timings[str(size)]
            record("generation", dict(generator=name, batch=size, mode=mode, sample_s=t["sample"],
                                      sample_cpu_s=t["sample_cpu"], step_s=t.get("step"),
                                      step_cpu_s=t.get("step_cpu")), load)
    for index, mode in enumerate(MODES):
        out = os.path.join(tmp, f"{name}-{index}.pt")
        kwargs = _distill_kwargs(name, teacher_path, args, out)
        load = load_average()
        start = time.perf_counter()
        if mode == MODES[0]:
            _distill(kwargs, sharded=False)
        else:
            distributed.launch(_distill, 2, kwargs, mode == MODES[2])
        wall = time.perf_counter() - start
        with open(out + ".cpu", encoding="utf-8") as handle:
            cpu = float(handle.read())
        record("distill", dict(generator=name, mode=mode, wall_s=wall, loop_s=_read_loop_seconds(out), cpu_s=cpu), load)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32, help="global batch (graphs per step) of the distillations")
    p.add_argument("--gen-batch-sizes", default="32,128", help="global batches of the generation timings")
    p.add_argument("--batches", type=int, default=10, help="timed draws / generator steps per set-up")
    p.add_argument("--graphs", type=int, default=512, help="graphs per epoch of the distillations")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--generators", default=",".join(GENERATORS))
    p.add_argument("--raw", default=RAW, help="JSON lines file the set-ups are appended to (default: "
                                              "runs/distributed.jsonl)")
    args = p.parse_args(argv)
    args.sizes = [int(v) for v in args.gen_batch_sizes.split(",")]
    os.environ["OMP_NUM_THREADS"] = "1"  # spawned ranks: one thread each
    torch.set_num_threads(1)
    teacher_path = mutag_teacher()
    base = dict(benchmark="distributed", teacher="gin-5-64", student="gin-2-32",
                teacher_file=os.path.relpath(teacher_path, os.path.join(HERE, "..")), batches=args.batches,
                distill_batch_size=args.batch_size, graphs_per_epoch=args.graphs, epochs=args.epochs)

    def record(kind: str, figures: dict, load) -> None:
        append_run(args.raw, dict(base, kind=kind, load_average=load, **figures, **provenance()))
        print(kind, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        for name in args.generators.split(","):
            measure(name, teacher_path, args, tmp, record)
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# results/distributed.md, rendered by benchmarks/regenerate.py from the raw runs



def render(runs: List[Dict]) -> str:
    """``results/distributed.md``: per generator and batch, generation throughput and the busiest rank's CPU
    per batch (and per dfad generator step) of 1 process, 2 replicated and 2 sharded; the whole distillation
    the same way; and a reading computed from those figures (medians over runs). A pure function of ``runs``
    (sorted; no clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "distributed"]
    tags = machine_tags(runs)
    gens = {g: i for i, g in enumerate(GENERATORS)}
    modes = {m: i for i, m in enumerate(MODES)}
    gen_runs = [r for r in runs if r["kind"] == "generation"]
    dist_runs = [r for r in runs if r["kind"] == "distill"]
    gen_groups = grouped(gen_runs, lambda r: (r["generator"], r["batch"], r["mode"]), tags,
                         order=lambda k: (gens.get(k[0], len(gens)), k[0], k[3], k[1], modes.get(k[2], len(modes))))
    dist_groups = grouped(dist_runs, lambda r: (r["generator"], r["mode"]), tags,
                          order=lambda k: (gens.get(k[0], len(gens)), k[0], k[2], modes.get(k[1], len(modes))))
    gen_fig: Dict[tuple, Dict[str, float]] = {}
    for key, items in gen_groups:
        steps = [r for r in items if r.get("step_s") is not None]
        gen_fig[key] = dict(rate=median(key[1] / r["sample_s"] for r in items),
                            sample=median(r["sample_s"] for r in items), cpu=median(r["sample_cpu_s"] for r in items),
                            **(dict(step=median(r["step_s"] for r in steps), step_cpu=median(r["step_cpu_s"] for r in steps))
                               if steps else {}))
    dist_fig = {key: {f: median(r[f] for r in items) for f in ("wall_s", "loop_s", "cpu_s")} for key, items in dist_groups}
    gen_rows = []
    for key, _ in gen_groups:
        f, base = gen_fig[key], gen_fig.get((key[0], key[1], MODES[0], key[3]))
        row = [key[0], str(key[1]), key[2], f"{f['rate']:.0f}", speedup(base["sample"], f["sample"]) if base else "-",
               f"{1e3 * f['cpu']:.1f}", speedup(base["cpu"], f["cpu"]) if base else "-"]
        if "step" in f:
            row += [f"{1e3 * f['step']:.1f}", f"{1e3 * f['step_cpu']:.1f}",
                    speedup(base["step_cpu"], f["step_cpu"]) if base and "step_cpu" in base else "-"]
        else:
            row += ["-", "-", "-"]
        gen_rows.append(row + ([key[-1]] if tags else []))
    dist_rows = []
    for key, _ in dist_groups:
        f, base = dist_fig[key], dist_fig.get((key[0], MODES[0], key[2]))
        dist_rows.append([key[0], key[1], f"{f['wall_s']:.1f}", f"{f['loop_s']:.1f}",
                          speedup(base["loop_s"], f["loop_s"]) if base else "-", f"{f['cpu_s']:.1f}",
                          speedup(base["cpu_s"], f["cpu_s"]) if base else "-"] + ([key[-1]] if tags else []))
    tag_col = ["machine"] if tags else []
    lines = ["# Sharded online generation: 1 process against 2 on CPU", "",
             *header_lines(runs, ["distributed.jsonl"], tags=tags),
             "- every process 1 torch thread (`OMP_NUM_THREADS=1` for the spawned ranks)",
             f"- teacher: {settings(runs, 'teacher')} on MUTAG (`{settings(runs, 'teacher_file')}`), student "
             f"{settings(runs, 'student')}, generator defaults (prior: 4 candidates per graph; dfad: a generator step "
             f"every 5 student steps); distillation: batch {settings(runs, 'distill_batch_size')}, "
             f"{settings(runs, 'graphs_per_epoch')} graphs per epoch, {settings(runs, 'epochs')} epochs",
             *load_note(runs),
             "- wall-clock figures of 2 processes measure contention with other jobs on the cores as much as the work "
             "split. The busiest rank's CPU time is what the split changes: on free cores, the wall time of a step "
             "follows it (plus the collectives, included in it)",
             *repeat_note([items for _, items in gen_groups + dist_groups]), ""]
    if gen_rows:
        lines += ["## Generation throughput (teacher included)", "",
                  f"Per set-up: {settings(gen_runs, 'batches')} draws of the global batch (and as many dfad generator "
                  "steps) after one warm-up, timed between barriers; graphs/s counts the global batch once.", "",
                  *table(["generator", "batch", "set-up", "graphs/s (wall)", "vs 1 process",
                          "CPU ms per batch, busiest rank", "vs 1 process", "ms per generator step (wall)",
                          "CPU ms per step, busiest rank", "vs 1 process"] + tag_col, gen_rows), ""]
    if dist_rows:
        lines += ["## Whole distillation", "",
                  "Wall: the call, 2-process start-up (spawn, imports, process group) and the final sample included; "
                  "loop: the report's epoch-loop seconds (rank 0); CPU: the busiest rank's CPU seconds inside "
                  "`distill_student` (build, loop, final sample).", "",
                  *table(["generator", "set-up", "wall s", "loop s", "loop vs 1 process", "CPU s, busiest rank",
                          "vs 1 process"] + tag_col, dist_rows), ""]
    lines += ["Replicated (before): every rank drew and labelled the whole batch and took whole generator steps; "
              "only the student's forward/backward was split. Sharded (now): the teacher labels each rank's share "
              "only (prior: its share of the candidate pool, whose outputs are all-gathered for class balancing), "
              "and dfad's generator loss is computed on each rank's share with gradients all-reduced. The random "
              "parts of the batch (node counts, structures, noise, dfad's decoder) are still drawn on every rank, "
              "which keeps the ranks' random streams in step.", ""]
    reading_lines = reading(gen_fig, dist_fig)
    if reading_lines:
        lines += ["## Reading", "", *reading_lines, ""]
    return "\n".join(lines)


def reading(gen_fig: Dict[tuple, Dict[str, float]], dist_fig: Dict[tuple, Dict[str, float]]) -> List[str]:
    """What the tables say, from their figures (keys as in :func:`render`: generator, batch, set-up, machine
    tag; generator, set-up, machine tag)."""
    sharded = {k: f for k, f in gen_fig.items() if k[2] == MODES[2]}
    out = []
    cpu, steps, vs_replicated, vs_single = [], [], [], []
    for (name, batch, _, tag), f in sharded.items():
        single, replicated = gen_fig.get((name, batch, MODES[0], tag)), gen_fig.get((name, batch, MODES[1], tag))
        if single:
            cpu.append(single["cpu"] / f["cpu"])
            vs_single.append(single["sample"] / f["sample"])
            if "step_cpu" in f and "step_cpu" in single:
                steps.append(single["step_cpu"] / f["step_cpu"])
        if replicated:
            vs_replicated.append(replicated["sample"] / f["sample"])
    def span(v: List[float]) -> str:
        return f"{min(v):.2f}×" if min(v) == max(v) else f"{min(v):.2f}-{max(v):.2f}×"

    if cpu:
        out.append(f"- CPU per generated batch, one process's over the sharded busiest rank's: {span(cpu)} (above 1: "
                   "sharding saves CPU; prior: its teacher labels half of the candidates; dfad: half of the graphs, but "
                   "the decoder still runs on the whole batch on every rank)"
                   + (f"; per dfad generator step: {span(steps)}" if steps else "") + ". With replicated generation "
                   "every rank did all of it."
                   + (f" In wall time, 2 sharded processes generate {span(vs_replicated)} as fast as 2 replicated ones."
                      if vs_replicated else ""))
        out.append(f"- Against one process, 2 processes reached {span(vs_single)} its generation throughput in wall "
                   "time here; where that is below 2×, the two ranks did not get a core each or waited on each other "
                   "at every step.")
    for (name, mode, tag), f in sorted(dist_fig.items()):
        if mode != MODES[2] or (name, MODES[0], tag) not in dist_fig:
            continue
        single = dist_fig[(name, MODES[0], tag)]["loop_s"]
        before = dist_fig.get((name, MODES[1], tag), {}).get("loop_s")
        now = f["loop_s"]
        verdict = ("2 sharded processes were faster than one" if now < single else
                   "at this size (steps of a few ms, a small teacher) per-step collectives and the shared cores "
                   "outweigh the split work, so one process was faster here")
        out.append(f"- Whole {name} distillation{f' ({tag})' if tag else ''}: epoch loop {single:.1f} s in one "
                   "process, " + (f"{before:.1f} s replicated, " if before is not None else "")
                   + f"{now:.1f} s sharded; the sharded 2-process call took {f['wall_s'] - now:.0f} s beyond its loop "
                   f"(process start-up, build, final sample); {verdict}.")
    return out


if __name__ == "__main__":
    sys.exit(main())
