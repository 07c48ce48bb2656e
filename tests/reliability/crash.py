"""Kill -9 a distillation at a chosen point, then ``resume``: the machinery of the crash-safety checks.

Shared by ``tests/reliability/test_crash_safety.py`` and ``benchmarks/reliability.py``. A run is
``dfkd.distill_student`` (what ``dfkd distill`` calls) on a tiny seeded problem: an untrained
``gin-2-8`` teacher of MUTAG's input width, 24 random graphs, a ``gin-1-8`` student, a resumable state
after every epoch. Run as a script, this module distils in a child process that ``SIGKILL``\\ s itself
at one *kill point*:

* ``step:K``: just before the K-th optimiser step (mid-epoch, between checkpoints);
* ``mid_write:J:F``: during the J-th file write, after a fraction ``F`` of its bytes reached the disk
  (synthetic set, periodic state, final state or the student checkpoint alike);
* ``before_rename:J``: after the J-th temporary file is complete and fsynced, before it replaces the
  old file (the report JSON is the last, ``RENAMES``-th);
* ``after_save:J``: right after the J-th file is in place (the existing CLI test's kill point).

The parent then checks that every file left behind is whole (loads; temporary files are ignored) and
resumes in its own process; the resumed student must equal the uninterrupted one bit for bit.
"""
from __future__ import annotations

import errno
import glob
import os
import random
import signal
import subprocess
import sys
from typing import Dict, List, Optional

import torch

HERE = os.path.abspath(__file__)
EPOCHS = 6
NUM_GRAPHS = 24
BATCH_SIZE = 8
STEPS = EPOCHS * NUM_GRAPHS // BATCH_SIZE  # optimiser steps of a whole run
# Files one run writes through atomic_save: synthetic set, a state after every epoch but the last, the
# final state, the student checkpoint; then the report JSON (temporary file + rename, as well).
WRITES = 1 + (EPOCHS - 1) + 1 + 1
RENAMES = WRITES + 1
KINDS = ("step", "mid_write", "before_rename", "after_save")

class FileProxy:
    """A file object that forwards everything to ``handle``; subclasses override ``write``."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, data):
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


class FullDisk(FileProxy):
    """A file whose writes stop with ENOSPC after ``budget`` bytes (a disk filling up mid-save)."""

    def __init__(self, handle, budget):
        super().__init__(handle)
        self.budget = budget

    def write(self, data):
        data = memoryview(data).cast("B")
        if len(data) > self.budget:
            self.handle.write(data[:self.budget])
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return self.handle.write(data)



def make_teacher(path: str) -> str:
    """A seeded, untrained teacher checkpoint (MUTAG's 7 one-hot features, 2 classes) at ``path``."""
    import dfkd

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    spec = dfkd.FeatureSpec(dim=7, encoding="one_hot", categories=list(range(7)))
    stats = dfkd.GraphSizeStats(min_nodes=6, max_nodes=14, mean_nodes=10.0, mean_degree=2.2, degree_var=0.6)
    dfkd.save_model(path, model.eval(), feature_spec=spec, label_values=[0, 1], size_stats=stats)
    return path


def distill(teacher: str, out: str, resume: bool = False, grad_clip: float = 0.0):
    """The run under test; returns the student's state_dict."""
    from dfkd.distill import DistillConfig, distill_student

    config = DistillConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, checkpoint_every=1, seed=3, lr=0.01,
                           grad_clip=grad_clip)
    result = distill_student(teacher, student="gin-1-8", generator="random", num_graphs=NUM_GRAPHS, config=config,
                             out=out, resume=resume, show_progress=False)
    return {k: v.detach().clone() for k, v in result.student.state_dict().items()}


def random_points(count: int, seed: int) -> List[str]:
    """``count`` seeded kill points, cycling through the kinds so every kind is drawn."""
    rng = random.Random(seed)
    points = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        if kind == "step":
            points.append(f"step:{rng.randint(1, STEPS)}")
        elif kind == "mid_write":
            points.append(f"mid_write:{rng.randint(1, WRITES)}:{rng.choice([0.0, 0.1, 0.5, 0.9, 0.999])}")
        else:
            points.append(f"{kind}:{rng.randint(1, RENAMES)}")
    return points


# --- the child ---------------------------------------------------------------------------------------
def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str) -> None:
    """Patch this (child) process so it SIGKILLs itself at ``point``."""
    import dfkd.checkpoint as checkpoint

    kind, *args = point.split(":")
    count = [0]
    if kind == "step":
        real_step = torch.optim.Adam.step

        def step(self, *a, **k):
            count[0] += 1
            if count[0] == int(args[0]):
                _die()
            return real_step(self, *a, **k)

        torch.optim.Adam.step = step
    elif kind == "mid_write":
        real_fdopen = os.fdopen

        class _Dying(FileProxy):
            def write(self, data):
                data = memoryview(data).cast("B")
                count[0] += 1
                if count[0] == int(args[0]):
                    self.handle.write(data[:int(len(data) * float(args[1]))])
                    self.handle.flush()
                    os.fsync(self.handle.fileno())
                    _die()
                return self.handle.write(data)

        checkpoint.os.fdopen = lambda fd, *a, **k: _Dying(real_fdopen(fd, *a, **k))
    elif kind in ("before_rename", "after_save"):
        real_replace = os.replace

        def replace(src, dst):
            count[0] += 1
            if kind == "before_rename" and count[0] == int(args[0]):
                _die()
            real_replace(src, dst)
            if kind == "after_save" and count[0] == int(args[0]):
                _die()

        checkpoint.os.replace = replace
    else:
        raise ValueError(f"unknown kill point {point!r}: kinds are {KINDS}")


def child(teacher: str, out: str, point: str) -> None:
    torch.set_num_threads(int(os.environ.get("DFKD_CRASH_THREADS", "1")))
    _arm(point)
    distill(teacher, out)


# --- the parent --------------------------------------------------------------------------------------
def run_killed(teacher: str, out: str, point: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the distillation in a fresh interpreter (``python crash.py ...``, as a user's ``dfkd distill``)
    that dies at ``point``, with this process's torch thread count."""
    env = dict(os.environ, DFKD_CRASH_THREADS=str(torch.get_num_threads()), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, HERE, teacher, out, point], env=env, capture_output=True, text=True,
                          timeout=timeout)


class Zygote:
    """A helper interpreter that imports dfkd once, then forks one child per kill trial.

    Seconds faster per trial than :func:`run_killed` (the imports dominate a tiny run). Forking the test
    process itself is not safe: once it has run torch's OpenMP thread pool, a forked child can hang.
    The zygote never computes anything, so its children start clean; each dies by a real ``SIGKILL``.
    Use as a context manager; :meth:`kill` returns the child's return code (``-9`` when killed).
    """

    def __init__(self, timeout: float = 300):
        env = dict(os.environ, DFKD_CRASH_THREADS=str(torch.get_num_threads()))
        self.timeout = timeout
        self.proc = subprocess.Popen([sys.executable, HERE, "--zygote"], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def kill(self, teacher: str, out: str, point: str) -> int:
        self.proc.stdin.write(f"{teacher}\t{out}\t{point}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the crash zygote died (return code {self.proc.poll()})")
        return int(line)

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=self.timeout)


def _zygote() -> None:
    import dfkd.distill  # noqa: F401 - imported once, inherited by every child
    import dfkd.generators  # noqa: F401

    for line in sys.stdin:
        teacher, out, point = line.rstrip("\n").split("\t")
        pid = os.fork()
        if pid == 0:  # the child: dies at the point; never returns into the loop
            code = 0
            try:
                child(teacher, out, point)
            except BaseException:  # noqa: BLE001
                code = 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(code, flush=True)


def files_left(out: str) -> Dict[str, str]:
    """Every non-temporary file the run left (student checkpoint, synthetic set, state) → how it loads:
    ``ok`` or the one-line error. Temporary ``.tmp-*`` files are listed as ``temporary``."""
    import dfkd
    from dfkd.checkpoint import safe_torch_load
    from dfkd.generators import SyntheticGraphSet

    found: Dict[str, str] = {}
    run = f"{out}.run"
    paths = ([out] + sorted(glob.glob(os.path.join(os.path.dirname(out), ".tmp-*")))
             + sorted(glob.glob(os.path.join(run, "*"))) + sorted(glob.glob(os.path.join(run, ".*"))))
    for path in paths:
        if not os.path.isfile(path):
            continue
        name = os.path.basename(path)
        try:
            if name.startswith(".tmp-"):
                found[name] = "temporary"
            elif path == out:
                dfkd.load_model(path)
                found[name] = "ok"
            elif name == "synthetic.pt":
                SyntheticGraphSet.load(path)
                found[name] = "ok"
            elif name.endswith(".json"):
                import json

                json.load(open(path))
                found[name] = "ok"
            else:
                state = safe_torch_load(path)
                found[name] = "ok" if isinstance(state, dict) and "student" in state else "not a state"
        except Exception as exc:  # noqa: BLE001 - reported, judged by the caller
            found[name] = f"{type(exc).__name__}: {exc}"
    return found


def trial(teacher: str, folder: str, point: str, reference: Dict[str, torch.Tensor],
          zygote: Optional[Zygote] = None) -> Dict[str, object]:
    """One kill/resume trial: kill at ``point`` (in a fork of ``zygote``, else a fresh interpreter), check
    the files, resume in this process, compare with ``reference``."""
    out = os.path.join(folder, "student.pt")
    if zygote is not None:
        proc = subprocess.CompletedProcess([point], zygote.kill(teacher, out, point), "", "")
    else:
        proc = run_killed(teacher, out, point)
    killed = proc.returncode == -signal.SIGKILL
    left = files_left(out)
    broken = {k: v for k, v in left.items() if v not in ("ok", "temporary")}
    resumed = distill(teacher, out, resume=True)
    equal = resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in reference)
    return {"point": point, "killed": killed, "returncode": proc.returncode, "stderr": proc.stderr[-500:],
            "files": left, "broken": broken, "equal": equal}


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        _zygote()
    else:
        child(*sys.argv[1:4])
