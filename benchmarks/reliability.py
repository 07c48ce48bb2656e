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

    OMP_NUM_THREADS=1 python benchmarks/reliability.py --results benchmarks/results/archive/reliability.md
"""
from __future__ import annotations

import argparse
import collections
import errno
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, command, machine, table  # noqa: E402

TESTS = os.path.join(HERE, "..", "tests", "reliability")


def _helper(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"dfkd_reliability_{name}", os.path.join(TESTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fuzz(corpus, per_kind: int, seed: int):
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        results = corpus.run_corpus(folder, per_kind, seed=seed)
        seconds = time.perf_counter() - start
        markers = [p for p in _walk(folder) if p.endswith(".ran")]
    return results, seconds, markers


def _walk(folder):
    for root, _, names in os.walk(folder):
        for name in names:
            yield os.path.join(root, name)


def kill_trials(crash, teacher: str, reference, trials: int, seed: int):
    rows = []
    for i, point in enumerate(crash.random_points(trials, seed)):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            result = crash.trial(teacher, folder, point, reference)
            result["seconds"] = time.perf_counter() - start
        print(f"  kill {i + 1}/{trials} at {point}: killed={result['killed']} files={result['files']} "
              f"equal={result['equal']}", flush=True)
        rows.append(result)
    return rows




def disk_full_trials(crash, teacher: str, reference):
    import dfkd.checkpoint as checkpoint

    rows = []
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
        rows.append({"write": write, "error": str(error), "one_line": one_line, "broken": broken,
                     "temporary": temporary, "equal": equal})
        print(f"  disk full at write {write}: one-line ENOSPC={one_line} broken={broken} "
              f"temporaries={temporary} equal={equal}", flush=True)
    return rows


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
    p.add_argument("--results", default=None, help="write the markdown results here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    corpus, crash = _helper("corpus"), _helper("crash")
    started = time.perf_counter()

    print(f"fuzz: {args.per_kind} cases per kind ...", flush=True)
    results, fuzz_seconds, markers = fuzz(corpus, args.per_kind, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        teacher = crash.make_teacher(os.path.join(folder, "teacher.pt"))
        reference = crash.distill(teacher, os.path.join(folder, "reference", "student.pt"))
        print(f"kill/resume: {args.trials} trials ...", flush=True)
        kills = kill_trials(crash, teacher, reference, args.trials, args.seed)
        print(f"disk full: {crash.WRITES} trials ...", flush=True)
        full = disk_full_trials(crash, teacher, reference)
    total = time.perf_counter() - started

    tried = sum(r["tried"] for r in results.values())
    refused = sum(r["refused"] for r in results.values())
    accepted = sum(r["accepted"] for r in results.values())
    lost = sum(r["lost"] for r in results.values())
    kinds = collections.Counter(k["point"].split(":")[0] for k in kills)
    kill_ok = sum(k["killed"] and not k["broken"] and k["equal"] for k in kills)
    full_ok = sum(f["one_line"] and not f["broken"] and f["equal"] for f in full)
    lines = [
        "# Reliability", "",
        f"Machine: {machine()}.  ",
        f"Command: `OMP_NUM_THREADS=1 {command()}` ({total:.0f} s in all).", "",
        "Checkpoint fuzz corpus, kill -9 / resume trials and disk-full trials (`benchmarks/reliability.py`; "
        "the same machinery, at smaller counts, runs in `tests/reliability/`).", "",
        "## Checkpoint fuzz corpus", "",
        f"{tried} seeded cases ({args.per_kind} per kind, seed {args.seed}), each loaded as the CLI does "
        f"(`load_checkpoint`, `build_model`, one forward pass), in {fuzz_seconds:.1f} s: **{refused} refused** with a "
        f"one-line error naming the file, {accepted} accepted (the mutation left a valid checkpoint whose model "
        f"runs), **{lost} lost**. Pickled payloads that ran: **{len(markers)}**.", "",
    ]
    rows = [[kind, str(r["tried"]), str(r["refused"]), str(r["accepted"]), str(r["lost"]),
             (r["examples"][0] if r["examples"] else "-").replace("|", "\\|"),
             _accepted_summary(r["accepted_mutations"])]
            for kind, r in results.items()]
    lines += table(["kind", "tried", "refused", "accepted", "lost", "a refusal (FILE = the case's path)",
                    "accepted mutations"], rows)
    lines += ["", "Accepted cases left a checkpoint that loads and runs: a flipped bit in a weight, an optional or "
              "unknown entry removed or added, a free-form provenance value changed. The accepted `huge_sizes` cases "
              "are node-count statistics (`max_nodes` 10^12): they load, and every generator refuses such a node "
              "range in one line before allocating anything (`tests/reliability/test_checkpoint_fuzz.py`)."]
    lost_cases = [f"- {kind}: {name}: {detail}" for kind, r in results.items() for name, detail in r["lost_cases"]]
    lines += [""] + (["Lost cases:", ""] + lost_cases + [""] if lost_cases else [])
    lines += [
        "## Kill -9 and resume", "",
        f"A `distill_student` run (untrained gin-2-8 teacher, 24 random graphs, gin-1-8 student, {crash.EPOCHS} "
        f"epochs, {crash.STEPS} optimiser steps, a resumable state every epoch) in a fresh interpreter that "
        f"SIGKILLs itself at a seeded random point, then `resume=True`: **{kill_ok} of {len(kills)}** trials "
        f"killed, left only whole files (temporary `.tmp-*` files aside) and resumed to a student equal bit for "
        f"bit to the uninterrupted one. Kill points: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ".", "",
    ]
    rows = [[k["point"], "yes" if k["killed"] else f"no ({k['returncode']})",
             ", ".join(f"{n}: {v}" for n, v in sorted(k["files"].items())) or "none",
             "yes" if k["equal"] else "**no**", f"{k['seconds']:.1f}"] for k in kills]
    lines += table(["kill point", "killed", "files left (how they load)", "resumed = uninterrupted", "s"], rows)
    lines += [
        "", "## Disk full while saving", "",
        f"The disk fills up (writes raise `ENOSPC` after 64 bytes) during each of the run's {crash.WRITES} file "
        f"writes in turn: **{full_ok} of {len(full)}** runs stopped with a one-line `OSError` naming the file, "
        "left every earlier file loadable (and no temporary file), and resumed, space freed, to the "
        "uninterrupted student.", "",
    ]
    rows = [[str(f["write"]), "yes" if f["one_line"] else "**no**", ", ".join(f["broken"]) or "none",
             ", ".join(f["temporary"]) or "none", "yes" if f["equal"] else "**no**"] for f in full]
    lines += table(["write", "one-line ENOSPC error", "broken files", "temporary files left", "resumed = uninterrupted"],
                   rows)
    example = next((f["error"] for f in full if f["one_line"]), "")
    lines += ["", f"Example error: `{example}`", ""]
    nothing_lost = lost == 0 and not markers and kill_ok == len(kills) and full_ok == len(full)
    lines += [f"**Nothing lost: {'yes' if nothing_lost else 'NO'}.**", ""]
    text = "\n".join(lines)
    print(text)
    if args.results:
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0 if nothing_lost else 1


if __name__ == "__main__":
    sys.exit(main())
