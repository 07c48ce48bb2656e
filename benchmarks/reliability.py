"""Reliability figures: the checkpoint fuzz corpus at scale, kill -9 / resume trials, disk-full trials.

* **Fuzz**: ``--per-kind`` seeded cases of every corpus kind (``tests/reliability/corpus.py``: truncated
  files, random bytes, flipped bits, wrong keys / types / shapes, pickles carrying code, huge declared
  sizes, non-dict payloads, other files, non-finite weights), each loaded as the CLI does. Counted:
  refused with a one-line error naming the file, accepted (a mutation that left a valid, runnable
  checkpoint) and *lost* (anything else: another exception, a multi-line message, a model that cannot
  run, a pickled payload that ran).
* **Kill / resume**: ``--trials`` distillations, each in a fresh interpreter that ``SIGKILL``\\ s itself at
  a seeded random point (mid-epoch, mid-write, before or after a rename; ``tests/reliability/crash.py``),
  then resumed; every file left must load, and the resumed student must equal the uninterrupted one bit
  for bit.
* **Disk full**: the disk "fills up" (writes raise ``ENOSPC``) during each file write of a run in turn;
  the error must be one line, every file already there must still load, and ``resume`` after space is
  freed must give the uninterrupted student.

Every fuzz kind, trial and disk-full write (``kind``: ``fuzz``, ``kill``, ``disk_full``) is appended as one
JSON line to ``--raw`` (default ``runs/reliability.jsonl``, committed); ``python benchmarks/regenerate.py``
writes ``results/reliability.md`` from them (:func:`render`).

    OMP_NUM_THREADS=1 python benchmarks/reliability.py --per-kind 50 --trials 24
"""
from __future__ import annotations

import argparse
import collections
import errno
import os
import sys
import json
import tempfile
import time
from typing import Dict, List

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, RUNS, append_run, header_lines, provenance, table  # noqa: E402

RAW = os.path.join(RUNS, "reliability.jsonl")
TESTS = os.path.join(HERE, "..", "tests", "reliability")


def _helper(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"dfkd_reliability_{name}", os.path.join(TESTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fuzz(corpus, kind: str, per_kind: int, seed: int):
    """``per_kind`` cases of one corpus kind: their verdicts, the seconds they took, the pickled payloads that ran."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = corpus.run_corpus(folder, per_kind, seed=seed, kinds=(kind,))
        seconds = time.perf_counter() - start
        markers = [p for p in _walk(folder) if p.endswith(".ran")]
    return results[kind], seconds, markers


def _walk(folder):
    for root, _, names in os.walk(folder):
        for name in names:
            yield os.path.join(root, name)


def kill_trials(crash, teacher: str, reference, trials: int, seed: int, record) -> None:
    for i, point in enumerate(crash.random_points(trials, seed)):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            result = crash.trial(teacher, folder, point, reference)
            result["seconds"] = time.perf_counter() - start
        print(f"  kill {i + 1}/{trials} at {point}: killed={result['killed']} files={result['files']} "
              f"equal={result['equal']}", flush=True)
        record("kill", dict(trial=i, **{k: result[k] for k in ("point", "killed", "returncode", "files", "broken",
                                                                 "equal", "seconds")}))




def disk_full_trials(crash, teacher: str, reference, record) -> None:
    import dfkd.checkpoint as checkpoint

    real = os.fdopen
    for write in range(1, crash.WRITES + 1):
        with tempfile.TemporaryDirectory() as folder:
            out = os.path.join(folder, "student.pt")
            count = [0]

            def fdopen(fd, *args, **kwargs):
                count[0] += 1
                return crash.FullDisk(real(fd, *args, **kwargs), 64 if count[0] == write else 10 ** 12)

            checkpoint.os.fdopen = fdopen
            try:
                crash.distill(teacher, out)
                error = None
            except OSError as exc:
                error = exc
            finally:
                checkpoint.os.fdopen = real
            left = crash.files_left(out)
            temporary = [k for k, v in left.items() if v == "temporary"]
            broken = {k: v for k, v in left.items() if v not in ("ok", "temporary")}
            resumed = crash.distill(teacher, out, resume=True)
            equal = all(torch.equal(resumed[k], reference[k]) for k in reference)
        one_line = error is not None and error.errno == errno.ENOSPC and "\n" not in str(error)
        record("disk_full", {"write": write, "error": str(error), "one_line": one_line, "broken": broken,
                             "temporary": temporary, "equal": equal})
        print(f"  disk full at write {write}: one-line ENOSPC={one_line} broken={broken} "
              f"temporaries={temporary} equal={equal}", flush=True)


def _accepted_summary(mutations, limit: int = 4) -> str:
    """The distinct accepted mutations of a kind, in short (they left a valid checkpoint)."""
    if not mutations:
        return "-"
    shown = "; ".join(m.replace("|", "\\|")[:40] for m in mutations[:limit])
    return shown + (f"; ... ({len(mutations)} distinct)" if len(mutations) > limit else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-kind", type=int, default=50, help="fuzz cases per corpus kind")
    p.add_argument("--trials", type=int, default=16, help="kill -9 / resume trials (fresh interpreters)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--raw", default=RAW, help="JSON lines file the results are appended to (default: "
                                              "runs/reliability.jsonl)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    corpus, crash = _helper("corpus"), _helper("crash")
    base = dict(benchmark="reliability", seed=args.seed, omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    lost = []

    def record(kind: str, figures: dict) -> None:
        append_run(args.raw, dict(base, kind=kind, **figures, **provenance()))
        if kind == "fuzz":
            lost.append(figures["lost"] or figures["payloads_ran"])
        elif kind == "kill":
            lost.append(not (figures["killed"] and not figures["broken"] and figures["equal"]))
        else:
            lost.append(not (figures["one_line"] and not figures["broken"] and figures["equal"]))

    print(f"fuzz: {args.per_kind} cases per kind ...", flush=True)
    for order, kind in enumerate(corpus.KINDS):
        result, seconds, markers = fuzz(corpus, kind, args.per_kind, args.seed)
        record("fuzz", dict(corpus_kind=kind, order=order, per_kind=args.per_kind, seconds=seconds,
                            payloads_ran=len(markers), **{k: result[k] for k in (
                                "tried", "refused", "accepted", "lost", "lost_cases", "examples", "accepted_mutations")}))
        print(f"  {kind}: {result['refused']} refused, {result['accepted']} accepted, {result['lost']} lost", flush=True)
    trial = dict(epochs=crash.EPOCHS, steps=crash.STEPS, num_graphs=crash.NUM_GRAPHS, writes=crash.WRITES)
    with tempfile.TemporaryDirectory() as folder:
        teacher = crash.make_teacher(os.path.join(folder, "teacher.pt"))
        reference = crash.distill(teacher, os.path.join(folder, "reference", "student.pt"))
        print(f"kill/resume: {args.trials} trials ...", flush=True)
        kill_trials(crash, teacher, reference, args.trials, args.seed,
                    lambda kind, figures: record(kind, dict(figures, trials=args.trials, **trial)))
        print(f"disk full: {crash.WRITES} trials ...", flush=True)
        disk_full_trials(crash, teacher, reference, lambda kind, figures: record(kind, dict(figures, **trial)))
    print(f"runs in {args.raw}; tables: python benchmarks/regenerate.py")
    return 1 if any(lost) else 0


# ---------------------------------------------------------------------------------------------------------------
# results/reliability.md, rendered by benchmarks/regenerate.py from the raw runs


def _canonical(runs: List[Dict]) -> List[Dict]:
    """``runs`` in an order that does not depend on the order of the raw file."""
    return sorted(runs, key=lambda r: json.dumps(r, sort_keys=True))


def _seeds(runs: List[Dict]) -> str:
    return ", ".join(map(str, sorted({r["seed"] for r in runs})))


def render(runs: List[Dict]) -> str:
    """``results/reliability.md``: fuzz verdicts per corpus kind (summed over runs), every kill -9 / resume
    trial and every disk-full write, and whether anything was lost. A pure function of ``runs`` (sorted; no
    clock, no machine)."""
    runs = [r for r in runs if r.get("benchmark") == "reliability"]
    fuzz_runs = [r for r in runs if r["kind"] == "fuzz"]
    kills = sorted([r for r in runs if r["kind"] == "kill"],
                   key=lambda r: (r["seed"], r["trial"], json.dumps(r, sort_keys=True)))
    full = sorted([r for r in runs if r["kind"] == "disk_full"], key=lambda r: (r["write"], json.dumps(r, sort_keys=True)))
    threads = sorted({str(r.get("omp_num_threads")) for r in runs})
    lines = ["# Reliability", "", *header_lines(runs, ["reliability.jsonl"]),
             f"- `OMP_NUM_THREADS` of the runs: {', '.join(threads)}", "",
             "Checkpoint fuzz corpus, kill -9 / resume trials and disk-full trials (`benchmarks/reliability.py`; "
             "the same machinery, at smaller counts, runs in `tests/reliability/`).", ""]
    lost_cases: List[str] = []
    payloads = sum(r["payloads_ran"] for r in fuzz_runs)
    lost = sum(r["lost"] for r in fuzz_runs)
    if fuzz_runs:
        by_kind: Dict[str, List[Dict]] = {}
        for r in sorted(_canonical(fuzz_runs), key=lambda r: r["order"]):
            by_kind.setdefault(r["corpus_kind"], []).append(r)
        rows = []
        for kind, items in by_kind.items():
            examples = sorted({e for r in items for e in r["examples"]})
            accepted = sorted({m for r in items for m in r["accepted_mutations"]})
            rows.append([kind, *(str(sum(r[f] for r in items)) for f in ("tried", "refused", "accepted", "lost")),
                         (examples[0] if examples else "-").replace("|", "\\|"), _accepted_summary(accepted)])
            lost_cases += [f"- {kind} (seed {r['seed']}): {name}: {detail}" for r in items for name, detail in r["lost_cases"]]
        tried = sum(r["tried"] for r in fuzz_runs)
        lines += ["## Checkpoint fuzz corpus", "",
                  f"{tried} seeded cases ({', '.join(map(str, sorted({r['per_kind'] for r in fuzz_runs})))} per kind "
                  f"and run, seeds {_seeds(fuzz_runs)}), each loaded as the CLI does (`load_checkpoint`, `build_model`, "
                  f"one forward pass), in {sum(r['seconds'] for r in fuzz_runs):.1f} s: "
                  f"**{sum(r['refused'] for r in fuzz_runs)} refused** with a one-line error naming the file, "
                  f"{sum(r['accepted'] for r in fuzz_runs)} accepted (the mutation left a valid checkpoint whose model "
                  f"runs), **{lost} lost**. Pickled payloads that ran: **{payloads}**.", "",
                  *table(["kind", "tried", "refused", "accepted", "lost", "a refusal (FILE = the case's path)",
                          "accepted mutations"], rows), "",
                  "Accepted cases left a checkpoint that loads and runs: a flipped bit in a weight, an optional or "
                  "unknown entry removed or added, a free-form provenance value changed. The accepted `huge_sizes` "
                  "cases are node-count statistics (`max_nodes` 10^12): they load, and every generator refuses such a "
                  "node range in one line before allocating anything (`tests/reliability/test_checkpoint_fuzz.py`).", ""]
        lines += ["Lost cases:", "", *lost_cases, ""] if lost_cases else []
    kill_ok = sum(k["killed"] and not k["broken"] and k["equal"] for k in kills)
    if kills:
        points = collections.Counter(k["point"].split(":")[0] for k in kills)
        setting = kills[0]
        rows = [[k["point"], "yes" if k["killed"] else f"no ({k['returncode']})",
                 ", ".join(f"{n}: {v}" for n, v in sorted(k["files"].items())) or "none",
                 "yes" if k["equal"] else "**no**", f"{k['seconds']:.1f}"] for k in kills]
        lines += ["## Kill -9 and resume", "",
                  f"A `distill_student` run (untrained gin-2-8 teacher, {setting['num_graphs']} random graphs, gin-1-8 "
                  f"student, {setting['epochs']} epochs, {setting['steps']} optimiser steps, a resumable state every "
                  "epoch) in a fresh interpreter that SIGKILLs itself at a seeded random point (seeds "
                  f"{_seeds(kills)}), then `resume=True`: **{kill_ok} of {len(kills)}** trials killed, left only whole "
                  "files (temporary `.tmp-*` files aside) and resumed to a student equal bit for bit to the "
                  "uninterrupted one. Kill points: " + ", ".join(f"{n} {k}" for k, n in sorted(points.items())) + ".", "",
                  *table(["kill point", "killed", "files left (how they load)", "resumed = uninterrupted", "s"], rows), ""]
    full_ok = sum(f["one_line"] and not f["broken"] and f["equal"] for f in full)
    if full:
        rows = [[str(f["write"]), "yes" if f["one_line"] else "**no**", ", ".join(sorted(f["broken"])) or "none",
                 ", ".join(sorted(f["temporary"])) or "none", "yes" if f["equal"] else "**no**"] for f in full]
        examples = sorted(f["error"] for f in full if f["one_line"])
        lines += ["## Disk full while saving", "",
                  "The disk fills up (writes raise `ENOSPC` after 64 bytes) during each of a run's "
                  f"{', '.join(map(str, sorted({f['writes'] for f in full})))} file writes in turn: **{full_ok} of "
                  f"{len(full)}** runs stopped with a one-line `OSError` naming the file, left every earlier file "
                  "loadable (and no temporary file), and resumed, space freed, to the uninterrupted student.", "",
                  *table(["write", "one-line ENOSPC error", "broken files", "temporary files left",
                          "resumed = uninterrupted"], rows), "",
                  f"Example error: `{examples[0] if examples else ''}`", ""]
    nothing_lost = lost == 0 and not payloads and kill_ok == len(kills) and full_ok == len(full)
    lines += [f"**Nothing lost: {'yes' if nothing_lost else 'NO'}.**", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
