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
from dfkd.config import FeatureSpec, GraphSizeStats

# No BatchNorm, no dropout: then the 2-process student equals the single-process one up to float order.
EXACT_STUDENT = {"batch_norm": False, "dropout": 0.0}
TOL = 1e-5


def _save_teacher(path, **meta):
    from dfkd.checkpoint import Checkpoint
    from dfkd.nn import build_model

    torch.manual_seed(0)
    model = build_model("gin-2-16", in_channels=7, out_channels=2)
    Checkpoint.from_model(model.eval(), feature_spec=FeatureSpec(encoding="one_hot", dim=7), label_values=[0, 1],
                          **meta).save(path)
    return path


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """An untrained GIN teacher (its outputs are all the test needs), saved as a checkpoint."""
    return _save_teacher(str(tmp_path_factory.mktemp("ddp-teacher") / "teacher.pt"))


@pytest.fixture(scope="module")
def sized_teacher_path(tmp_path_factory):
    """The same teacher with size statistics (small graphs; a degree variance, so the conditional generator's
    degree term has its spread part too)."""
    stats = GraphSizeStats(min_nodes=6, max_nodes=14, mean_nodes=10.0, mean_degree=2.2, degree_var=0.6)
    return _save_teacher(str(tmp_path_factory.mktemp("ddp-sized-teacher") / "teacher.pt"), size_stats=stats)


@pytest.fixture(scope="module")
def regression_teacher_path(tmp_path_factory):
    """An untrained GIN regression teacher (one output), saved as a checkpoint."""
    from dfkd.checkpoint import Checkpoint
    from dfkd.nn import build_model

    torch.manual_seed(1)
    model = build_model("gin-2-16", in_channels=7, out_channels=1)
    path = str(tmp_path_factory.mktemp("ddp-regression-teacher") / "teacher.pt")
    Checkpoint.from_model(model.eval(), feature_spec=FeatureSpec(encoding="one_hot", dim=7), task="regression",
                          label_values=[]).save(path)
    return path


def _options(generator):
    # conditional: its default terms (label CE, the batch-coupled degree and node-type terms, the size law and
    # fidelity learnt from generator batches), a short warm-up, and a generator step after every student step.
    return {"gfkd": {"iterations": 3}, "dfad": {"student_steps": 1},
            "conditional": {"student_steps": 1, "warmup_steps": 2}}.get(generator, {})


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
    import copy

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

            def save_then_stop(self, epoch, *rest):
                save(self, epoch, *rest)
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


    ROWS = [0]
    COUNTING = [False]


    def _count_rows(module, inputs, output):
        if COUNTING[0]:
            ROWS[0] += int(getattr(output, "logits", output).size(0))


    def teacher_rows(kwargs, out):
        """Graphs the generator's teacher labels (forward rows) while the student trains, in this process."""
        import dfkd.generators.base as base

        prepare, fit = base.prepare_teacher, Distiller.fit

        def counted_prepare(*args, **kw):
            model = prepare(*args, **kw)
            model.register_forward_hook(_count_rows)
            return model

        def counted_fit(self, *args, **kw):
            COUNTING[0] = True
            try:
                return fit(self, *args, **kw)
            finally:
                COUNTING[0] = False

        base.prepare_teacher, Distiller.fit, ROWS[0] = counted_prepare, counted_fit, 0
        try:
            distill_student(out=out, **kwargs)
        finally:
            base.prepare_teacher, Distiller.fit = prepare, fit
        return ROWS[0]


    def count(jobs):
        """Every job's teacher rows on this rank, written to OUT.rowsRANK."""
        import torch.distributed as dist

        for job in jobs:
            rows = teacher_rows(dict(job["kwargs"]), job["out"])
            with open(f"{job['out']}.rows{dist.get_rank()}", "w") as handle:
                handle.write(str(rows))


    def recorded_gradients(gen):
        """The generator's gradients at every optimiser step (after the ranks' gradients are summed), recorded."""
        steps, step = [], gen.optimizer.step

        def recording(*args, **kwargs):
            steps.append([None if p.grad is None else p.grad.clone() for p in gen.parameters()])
            return step(*args, **kwargs)

        gen.optimizer.step = recording
        return steps


    def relative_difference(grads, expected):
        assert [g is None for g in grads] == [e is None for e in expected]
        num = sum(float((g - e).pow(2).sum()) for g, e in zip(grads, expected) if e is not None)
        den = sum(float(e.pow(2).sum()) for e in expected if e is not None)
        return (num / den) ** 0.5


    def statistic_gradients(gen, ctx):
        """float64: a per-graph mean plus the conditional generator's degree and node-type terms, computed on each
        rank's share with the statistics reduced by ``reduce_over_shards(differentiable=True)``, weighted n_r / n
        and summed over the ranks as generator_step does (``average_gradients``), give the single-process
        gradient of the whole batch (shares of 4 and 3 graphs, and 1 and a placeholder)."""
        from torch_geometric.data import Batch

        from dfkd.parallel import average_gradients, rank_share, slice_graphs

        gen = copy.deepcopy(gen)
        rand = torch.Generator().manual_seed(0)
        counts = torch.tensor([3, 5, 2, 4, 6, 3, 2])
        ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        pairs = [(i, j) for g in range(7) for i in range(int(ptr[g]), int(ptr[g + 1]))
                 for j in range(int(ptr[g]), int(ptr[g + 1])) if i != j]
        edges = torch.tensor(pairs).t()
        edge_logits = torch.randn(edges.size(1), dtype=torch.float64, generator=rand).requires_grad_()
        type_logits = torch.randn(int(ptr[-1]), 7, dtype=torch.float64, generator=rand).requires_grad_()
        labels = torch.tensor([0, 1, 1, 0, 1, 0, 0])
        for size in (7, 1):
            keep = edges[0] < ptr[size]
            graph = torch.repeat_interleave(torch.arange(size), counts[:size])

            def batch():
                return Batch(x=torch.softmax(type_logits[:int(ptr[size])], -1), edge_index=edges[:, keep],
                             edge_weight=torch.sigmoid(edge_logits[keep]), batch=graph, ptr=ptr[:size + 1],
                             y=labels[:size])

            def loss(part, stats):
                per_graph = torch.zeros(part.num_graphs, dtype=torch.float64).index_add(0, part.batch, part.x[:, 0])
                return per_graph.mean() + gen.degree_mismatch(part, stats) + gen.type_mismatch(part, stats)

            assert not gen.sharded_step
            expected = torch.autograd.grad(loss(batch(), None), [edge_logits, type_logits])
            lo, hi, counted = rank_share(size, ctx)
            gen._step_share = (ctx, counted, size)  # what generator_step sets during a sharded step
            try:
                part = slice_graphs(batch(), lo, hi)
                grads = torch.autograd.grad(loss(part, gen.batch_statistics(part)), [edge_logits, type_logits])
            finally:
                gen._step_share = None
            for param, grad in zip((edge_logits, type_logits), grads):
                param.grad = grad
            average_gradients([edge_logits, type_logits], counted / size)
            for param, want in zip((edge_logits, type_logits), expected):
                assert torch.allclose(param.grad, want, rtol=1e-10, atol=1e-14), (size, float((param.grad - want).abs().max()))
                param.grad = None


    def shard_checks(teacher_path, sized_teacher_path):
        """In the process group: prior's sample_shard (class balancing over gathered candidate outputs, with the
        student's disagreement, its embeddings' diversity and type switches, and a batch smaller than the
        world) equals slicing a single process's sample(), with the same random state after; dfad's and conditional's sharded generator steps (conditional with its default batch-coupled
        terms and running statistics, with and without the adversarial term) equal a single process's step:
        the terms, the summed gradients (conditional), the running per-(class, size) CE and fidelity; and the
        gradient of terms computed from reduced statistics is the single-process one (float64)."""
        from dfkd.checkpoint import load_checkpoint
        from dfkd.distill import distributed, make_generator
        from dfkd.nn import build_model

        ctx = distributed.context()
        ckpt, sized = load_checkpoint(teacher_path), load_checkpoint(sized_teacher_path)
        torch.manual_seed(0)
        mined_by = build_model("gin-2-16", in_channels=7, out_channels=2)
        for options in ({"balance": 3}, {"balance": 1}, {"balance": 3, "diversity": 0.5, "perturb": 0.5},
                        {"balance": 1, "perturb": 1.0}):
            gen = make_generator("prior", ckpt, **options).build(0)
            if "perturb" in options:  # the student-aware choice and type switches, shard by shard
                gen.attach_student(mined_by)
            for size in (7, 1):
                lo, hi, counted = distributed.rank_share(size, ctx)
                single, shared = torch.Generator().manual_seed(size), torch.Generator().manual_seed(size)
                whole = gen.sample(size, single)
                part = gen.sample_shard(size, shared, lo, hi, ctx=ctx)
                assert torch.equal(single.get_state(), shared.get_state())
                expected = distributed.slice_graphs(whole, lo, hi)
                for key in ("x", "edge_index", "batch", "ptr", "y"):
                    assert torch.equal(part[key], expected[key]), (options, size, key)
                assert torch.allclose(part.teacher_logits, expected.teacher_logits, atol=1e-6)
        torch.manual_seed(0)
        student = build_model("gin-2-16", in_channels=7, out_channels=2, batch_norm=False, dropout=0.0)
        # Each sequence of steps starts from the same built generator; 1: rank 1 holds a placeholder graph that
        # counts 0. conditional: several steps in a row, its running statistics carried from step to step.
        # dfad keeps the fallback structure: a teacher-only law gives denser graphs whose float32 gradients
        # cancel even more, and this checks sharding, not structure.
        fallback = {"structure": "checkpoint"}
        for name, options, sizes in (("dfad", fallback, (7,)), ("dfad", fallback, (1,)),
                                     ("conditional", {"warmup_steps": 0}, (7, 1, 7)),
                                     ("conditional", {"warmup_steps": 0, "adversarial_weight": 1.0}, (7, 1, 7))):
            built = make_generator(name, sized if name == "conditional" else ckpt, **options).build(0)
            if name == "conditional":
                assert built.type_prior is not None and built.size_stats.degree_var  # both terms, with the spread
                statistic_gradients(built, ctx)
            sharded, single = copy.deepcopy(built), copy.deepcopy(built)
            sharded_grads, single_grads = recorded_gradients(sharded), recorded_gradients(single)
            for size in sizes:
                terms = sharded.generator_step_shard(student, size, torch.Generator().manual_seed(size), ctx)
                expected = single.generator_step(student, size, torch.Generator().manual_seed(size))
                assert terms.keys() == expected.keys()
                assert all(abs(terms[k] - expected[k]) < 1e-5 for k in terms), (name, size, terms, expected)
                if name == "conditional":
                    assert {"degree", "types"} <= set(terms)
                    # The degree and type terms dominate the gradient: it agrees closely (the label-CE and
                    # adversarial parts alone nearly cancel in float32, see the module docstring).
                    assert relative_difference(sharded_grads[-1], single_grads[-1]) < 1e-4, (options, size)
                    # Running statistics: summed over the shares, then updated, as one process does.
                    assert torch.allclose(sharded.size_ce, single.size_ce, atol=1e-6), (options, size)
                    assert sharded._observed == single._observed
                    assert abs(sharded.fidelity - single.fidelity) < 1e-6
                for a, b in zip(sharded.parameters(), single.parameters()):
                    # float32 gradients here are ~1e-8 with heavy cancellation (2% apart between shard sums and
                    # the whole batch, 1e-10 in float64): Adam's steps agree to a few % of the lr.
                    assert torch.allclose(a, b, atol=0.1 * built.config.lr), (name, size, float((a - b).abs().max()))
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


@pytest.mark.parametrize("name, options", [("prior", {"balance": 3}), ("prior", {"balance": 1}), ("dfad", {}),
                                           ("conditional", {"warmup_steps": 0})])
def test_sample_shards_concatenate_to_the_single_process_sample(teacher_path, name, options):
    """sample_shard(lo, hi) for every shard of 2 and 3 ranks is the slice lo:hi of sample() (teacher outputs to
    float tolerance) and leaves the random stream where sample() leaves it, so the next draw is the same too."""
    from dfkd.checkpoint import load_checkpoint
    from dfkd.distill import make_generator

    gen = make_generator(name, load_checkpoint(teacher_path), **options).build(0)
    single = torch.Generator().manual_seed(5)
    whole, states = [], []
    for _ in range(2):  # two draws in a row: the second starts where the first left the stream
        whole.append(gen.sample(9, single))
        states.append(single.get_state())
    for world in (2, 3):
        shared = [torch.Generator().manual_seed(5) for _ in range(world)]
        for draw in range(2):
            parts = []
            for rank in range(world):
                lo, hi = shard_bounds(9, rank, world)
                parts.append(gen.sample_shard(9, shared[rank], lo, hi))
                expected = slice_graphs(whole[draw], lo, hi)
                for key in ("x", "edge_index", "batch", "ptr", "y"):
                    assert torch.equal(parts[-1][key], expected[key]), (world, rank, key)
                assert torch.allclose(parts[-1].teacher_logits, expected.teacher_logits, atol=1e-6)
            assert sum(int(p.num_graphs) for p in parts) == 9
            assert all(torch.equal(g.get_state(), states[draw]) for g in shared)


@pytest.mark.slow
def test_two_gloo_processes_match_a_single_process(teacher_path, sized_teacher_path, regression_teacher_path, tmp_path,
                                                   monkeypatch):
    """Fixed set with resampling (gfkd), fresh graphs (prior), adversarial generators (dfad, conditional), the
    online ones generated in shards, a run interrupted after epoch 1 and resumed, replay memory (resumed), a
    curriculum over sharded batches and a regression teacher: each 2-process student equals the single-process
    one, and so do the reports' per-epoch losses and statistics of the generated graphs (global, not rank 0's
    share). The conditional generator runs with its default terms: the batch-coupled degree and node-type terms
    are computed from statistics summed over the ranks, and its size law from running statistics updated with
    the whole batch's sums."""
    from dfkd.checkpoint import load_checkpoint
    from dfkd.distill.distributed import launch

    (tmp_path / "ddp_worker.py").write_text(_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ddp_worker

    jobs = [{"out": str(tmp_path / f"{g}.pt"), "kwargs": _kwargs(teacher_path, g)} for g in ("gfkd", "prior", "dfad")]
    jobs.append({"out": str(tmp_path / "conditional.pt"), "kwargs": _kwargs(sized_teacher_path, "conditional")})
    jobs.append({"out": str(tmp_path / "resumed.pt"), "interrupt_at": 1,
                 "kwargs": _kwargs(teacher_path, "prior", epochs=3, checkpoint_every=1)})
    # Replay memory (global batches gathered from the ranks' shares), interrupted and resumed.
    replay = _kwargs(teacher_path, "dfad", epochs=3, checkpoint_every=1)
    replay["generator_options"] = {**replay["generator_options"], "replay": 2}
    jobs.append({"out": str(tmp_path / "replay.pt"), "interrupt_at": 2, "kwargs": replay})
    # A curriculum over sharded batches (scores gathered, the global batch's easiest graphs kept).
    curriculum = _kwargs(teacher_path, "prior")
    curriculum["config"] = curriculum["config"].replace(curriculum="confidence", curriculum_start=0.4)
    jobs.append({"out": str(tmp_path / "curriculum.pt"), "kwargs": curriculum})
    # Student-aware selection: the student's outputs on the ranks' shares of the pool gathered; resumed.
    mining = _kwargs(teacher_path, "prior", epochs=3, checkpoint_every=1)
    mining["generator_options"] = {**mining["generator_options"], "disagreement": 0.5}
    jobs.append({"out": str(tmp_path / "disagreement.pt"), "interrupt_at": 1, "kwargs": mining})
    # A regression teacher: prior stratifies gathered candidate outputs; the output range is the global one.
    jobs.append({"out": str(tmp_path / "regression.pt"), "kwargs": _kwargs(regression_teacher_path, "prior")})
    launch(ddp_worker.run, 2, jobs)

    resumed = {}
    for job in jobs:
        single = distill_student(**job["kwargs"])
        multi_state = load_checkpoint(job["out"]).build_model().state_dict()
        assert _max_diff(single.student.state_dict(), multi_state) < TOL, job["out"]
        with open(job["out"].replace(".pt", ".report.json"), encoding="utf-8") as handle:
            report = json.load(handle)
        # The per-epoch losses are means over both ranks' graphs: the single process's numbers.
        assert [round(r["loss"], 4) for r in report["history"]] == [round(r["loss"], 4) for r in single.report.history]
        for key in ("class_histogram", "curriculum_kept"):
            assert [r.get(key) for r in report["history"]] == [r.get(key) for r in single.report.history], key
        for key in ("generator_loss", "generator_teacher_logit_max", "teacher_output_mean", "teacher_output_std",
                    "teacher_output_max"):
            assert ([round(r.get(key, 0.0), 4) for r in report["history"]]
                    == [round(r.get(key, 0.0), 4) for r in single.report.history]), key
        resumed[job["out"]] = report["resumed_from_epoch"]
    assert resumed[str(tmp_path / "resumed.pt")] == 1 and resumed[str(tmp_path / "replay.pt")] == 2
    assert resumed[str(tmp_path / "disagreement.pt")] == 1


@pytest.mark.slow
def test_generation_is_sharded_across_two_processes(teacher_path, sized_teacher_path, tmp_path, monkeypatch):
    """In a 2-process run each rank's teacher labels about half of the graphs a single process labels while
    the student trains (prior: half of every candidate pool; dfad: half of every batch and generator step),
    the two halves adding up to the single process's count; and the sharded draws and generator steps in a
    live process group equal a single process's (``shard_checks`` in the worker)."""
    from dfkd.distill.distributed import launch

    (tmp_path / "ddp_worker.py").write_text(_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ddp_worker

    launch(ddp_worker.shard_checks, 2, teacher_path, sized_teacher_path)
    jobs = [{"out": str(tmp_path / f"{g}.pt"), "kwargs": _kwargs(teacher_path, g)} for g in ("prior", "dfad")]
    launch(ddp_worker.count, 2, jobs)
    for job in jobs:
        single = ddp_worker.teacher_rows(dict(job["kwargs"]), str(tmp_path / "single.pt"))
        ranks = [int(open(f"{job['out']}.rows{r}", encoding="utf-8").read()) for r in range(2)]
        assert sum(ranks) == single, (job["out"], ranks, single)
        assert max(ranks) <= 0.6 * single, (job["out"], ranks, single)


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
