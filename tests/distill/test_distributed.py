"""Multi-process distillation (DDP over gloo, 2 CPU processes on loopback) against a single process."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch_geometric.data import Batch

from dfkd.distill import DistillConfig, distill_student
from dfkd.distill.distributed import shard_bounds, slice_graphs
from dfkd.generators import SyntheticGraphSet
from dfkd.config import FeatureSpec

# No BatchNorm, no dropout: then the 2-process student equals the single-process one up to float order.
EXACT_STUDENT = {"batch_norm": False, "dropout": 0.0}
TOL = 1e-5


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """An untrained GIN teacher (its outputs are all the test needs), saved as a checkpoint."""
    from dfkd.checkpoint import Checkpoint
    from dfkd.nn import build_model

    torch.manual_seed(0)
    model = build_model("gin-2-16", in_channels=7, out_channels=2)
    path = str(tmp_path_factory.mktemp("ddp-teacher") / "teacher.pt")
    Checkpoint.from_model(model.eval(), feature_spec=FeatureSpec(encoding="one_hot", dim=7),
                          label_values=[0, 1]).save(path)
    return path


def _options(generator):
    return {"gfkd": {"iterations": 3}, "dfad": {"student_steps": 1}}.get(generator, {})


def _kwargs(teacher_path, generator, epochs=2, checkpoint_every=0):
    # 15 graphs in batches of 7: two batches split 4/3 between the ranks, the last (1 graph) 1/0.
    return dict(teacher=teacher_path, student="gin-2-16", generator=generator, num_graphs=15,
                generator_options=_options(generator), show_progress=False, student_options=EXACT_STUDENT,
                config=DistillConfig(epochs=epochs, batch_size=7, seed=3, checkpoint_every=checkpoint_every))


def _max_diff(a, b):
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


# Spawned processes unpickle the worker by module name, and the tests import in importlib mode:
# the worker lives in a module written next to the outputs and put on sys.path (children inherit it).
_WORKER = textwrap.dedent('''
    import torch
    from dfkd.distill import distill_student
    from dfkd.distill.distiller import Distiller


    class Interrupted(Exception):
        pass


    def run(jobs):
        """Every job on every rank; a job with "interrupt_at" stops after the resumable state of that
        epoch is written (all ranks together), then a fresh call resumes from the files alone."""
        for job in jobs:
            kwargs = dict(job["kwargs"])
            stop = job.get("interrupt_at")
            if stop is None:
                distill_student(out=job["out"], **kwargs)
                continue
            save = Distiller._save_state

            def save_then_stop(self, epoch, opt, report):
                save(self, epoch, opt, report)
                if epoch == stop:
                    raise Interrupted(epoch)

            Distiller._save_state = save_then_stop
            try:
                distill_student(out=job["out"], **kwargs)
                raise AssertionError("the run was not interrupted")
            except Interrupted:
                pass
            finally:
                Distiller._save_state = save
            distill_student(out=job["out"], resume=True, **kwargs)
''')


def test_shard_bounds_cover_the_batch_in_order():
    for n in range(1, 12):
        for world in (1, 2, 3, 5):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_slice_graphs_equals_batching_the_slice():
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([3, 1, 4, 2, 5])
    node_graph = torch.repeat_interleave(torch.arange(5), counts)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    src = torch.cat([torch.randint(int(ptr[g]), int(ptr[g + 1]), (4,), generator=gen) for g in range(5)])
    dst = torch.cat([torch.randint(int(ptr[g]), int(ptr[g + 1]), (4,), generator=gen) for g in range(5)])
    spec = FeatureSpec(encoding="continuous", dim=3)
    graphs = SyntheticGraphSet.from_edges(torch.randn(15, 3, generator=gen), torch.stack([src, dst]), node_graph, 5,
                                          torch.arange(5), spec, teacher_logits=torch.randn(5, 2, generator=gen))
    whole = graphs.batch(range(5))
    whole.edge_weight = torch.rand(whole.edge_index.size(1), generator=gen)
    for lo, hi in [(0, 5), (0, 2), (2, 5), (4, 5), (1, 2)]:
        part = slice_graphs(whole, lo, hi)
        expected = graphs.batch(range(lo, hi))
        assert isinstance(part, Batch) and part.num_graphs == hi - lo
        for key in ("x", "edge_index", "y", "batch", "ptr", "teacher_logits"):
            assert torch.equal(part[key], expected[key]), key
        keep = (whole.edge_index[0] >= whole.ptr[lo]) & (whole.edge_index[0] < whole.ptr[hi])
        assert torch.equal(part.edge_weight, whole.edge_weight[keep])
    with pytest.raises(ValueError, match="outside a batch"):
        slice_graphs(whole, 3, 7)


@pytest.mark.slow
def test_two_gloo_processes_match_a_single_process(teacher_path, tmp_path, monkeypatch):
    """Fixed set with resampling (gfkd), fresh graphs (prior), an adversarial generator (dfad), and a run
    interrupted after epoch 2 and resumed: each 2-process student equals the single-process one."""
    from dfkd.checkpoint import load_checkpoint
    from dfkd.distill.distributed import launch

    (tmp_path / "ddp_worker.py").write_text(_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ddp_worker

    jobs = [{"out": str(tmp_path / f"{g}.pt"), "kwargs": _kwargs(teacher_path, g)} for g in ("gfkd", "prior", "dfad")]
    jobs.append({"out": str(tmp_path / "resumed.pt"), "interrupt_at": 1,
                 "kwargs": _kwargs(teacher_path, "prior", epochs=3, checkpoint_every=1)})
    launch(ddp_worker.run, 2, jobs)

    for job in jobs:
        single = distill_student(**job["kwargs"])
        multi_state = load_checkpoint(job["out"]).build_model().state_dict()
        assert _max_diff(single.student.state_dict(), multi_state) < TOL, job["out"]
        with open(job["out"].replace(".pt", ".report.json"), encoding="utf-8") as handle:
            report = json.load(handle)
        # The per-epoch losses are means over both ranks' graphs: the single process's numbers.
        assert [round(r["loss"], 4) for r in report["history"]] == [round(r["loss"], 4) for r in single.report.history]
    assert report["resumed_from_epoch"] == 1


@pytest.mark.slow
def test_cli_nproc_and_torchrun_match_a_single_process(teacher_path, tmp_path):
    """``dfkd distill --nproc 2`` and ``torchrun --nproc_per_node=2 -m dfkd distill`` (fixed random set)."""
    from dfkd.checkpoint import load_checkpoint
    from dfkd.cli import main

    common = ["distill", "--teacher", teacher_path, "--student", "gin-2-16", "--generator", "random",
              "--num-graphs", "15", "--epochs", "2", "--batch-size", "7", "--seed", "3", "--student-batch-norm", "off",
              "--student-dropout", "0", "--quiet"]
    single = str(tmp_path / "single.pt")
    assert main(common + ["--out", single]) == 0
    spawned = str(tmp_path / "spawned.pt")
    assert main(common + ["--out", spawned, "--nproc", "2"]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ran = str(tmp_path / "torchrun.pt")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "dfkd"] + common + ["--out", ran], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("saved ") == 1  # rank 0 reports
    reference = load_checkpoint(single).build_model().state_dict()
    for path in (spawned, ran):
        assert _max_diff(reference, load_checkpoint(path).build_model().state_dict()) < TOL, path


def test_nproc_errors_in_one_line(teacher_path, tmp_path, capsys, monkeypatch):
    from dfkd.cli import main

    args = ["distill", "--teacher", teacher_path, "--out", str(tmp_path / "s.pt"), "--quiet"]
    assert main(args + ["--nproc", "0"]) != 0
    assert "--nproc must be >= 1" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(args + ["--nproc", "2"]) != 0
    assert "under torchrun" in capsys.readouterr().err
