import math

import pytest
import torch
from torch_geometric.data import Batch

import dfkd
from dfkd.cli import main
from dfkd.distill import DistillConfig, Distiller, SyntheticSetSource, distill_student
from dfkd.distill.curriculum import CurriculumSource, complexity, difficulty
from dfkd.nn import select_graphs
from dfkd.generators import RandomGraphGenerator


@pytest.fixture(scope="module")
def synthetic(tiny_teacher):
    return RandomGraphGenerator.from_checkpoint(tiny_teacher).generate(12, seed=0, show_progress=False)


def test_select_graphs_equals_rebatching_the_kept_graphs(synthetic):
    batch = synthetic.batch(range(len(synthetic)))
    keep = torch.tensor([i % 3 != 1 for i in range(len(synthetic))])
    got = select_graphs(batch, keep)
    want = Batch.from_data_list([synthetic[i] for i in keep.nonzero().view(-1).tolist()])
    assert got.num_graphs == int(keep.sum())
    for key in ("x", "edge_index", "batch", "ptr"):
        assert torch.equal(getattr(got, key), getattr(want, key)), key
    assert torch.equal(got.teacher_logits, batch.teacher_logits[keep]) and torch.equal(got.y, batch.y[keep])


def test_difficulty_hand_computed():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    conf = difficulty("confidence", logits)
    assert conf.tolist() == pytest.approx([-math.exp(2) / (math.exp(2) + 1), -0.5])
    # KL(p_T || p_S) with p_T = (0.5, 0.5), p_S = softmax(2, 0): 0.5 ln(0.5/s0) + 0.5 ln(0.5/s1).
    s0 = math.exp(2) / (math.exp(2) + 1)
    kl = difficulty("disagreement", logits[[1]], logits[[0]])
    assert kl.item() == pytest.approx(0.5 * math.log(0.5 / s0) + 0.5 * math.log(0.5 / (1 - s0)), rel=1e-5)
    assert difficulty("disagreement", torch.tensor([[1.0]]), torch.tensor([[3.0]]), regression=True).item() == 4.0
    with pytest.raises(ValueError, match="curriculum=disagreement"):
        difficulty("confidence", logits, regression=True)


def test_curriculum_keeps_the_most_confident_graphs_then_widens(tiny_teacher, synthetic):
    source = CurriculumSource(SyntheticSetSource(synthetic, batch_size=12), tiny_teacher.build_model(), epochs=10,
                              start=0.5, ramp=0.5)
    assert [source.fraction(e) for e in (0, 2, 5, 9)] == pytest.approx([0.5, 0.7, 1.0, 1.0])
    (first,) = list(source.batches(0, torch.Generator().manual_seed(0)))
    confidence = torch.softmax(synthetic.teacher_logits, -1).max(-1).values
    assert first.num_graphs == 6 and source.epoch_stats()["curriculum_kept"] == 0.5
    assert sorted(torch.softmax(first.teacher_logits, -1).max(-1).values.tolist()) == pytest.approx(
        sorted(confidence.sort(descending=True).values[:6].tolist()))
    (late,) = list(source.batches(5, torch.Generator().manual_seed(0)))
    assert late.num_graphs == 12 and source.epoch_stats()["curriculum_kept"] == 1.0


def test_complexity_hand_computed(toy_graph):
    """A triangle (3 nodes, 6 directed edge entries) and a path of 3 nodes (4 entries)."""
    x, edge_index, graph_of = toy_graph
    batch = Batch(x=x, edge_index=edge_index, batch=graph_of)
    assert complexity("size", batch).tolist() == [3.0, 3.0]
    assert complexity("density", batch).tolist() == pytest.approx([2.0, 4 / 3])


@pytest.mark.parametrize("criterion", ["size", "density"])
def test_complexity_curriculum_keeps_the_smallest_or_sparsest_graphs_first(tiny_teacher, synthetic, criterion):
    source = CurriculumSource(SyntheticSetSource(synthetic, batch_size=12), tiny_teacher.build_model(), epochs=10,
                              criterion=criterion, start=0.5, ramp=0.5)
    whole = synthetic.batch(range(len(synthetic)))
    (first,) = list(source.batches(0, torch.Generator().manual_seed(0)))
    assert first.num_graphs == 6
    assert sorted(complexity(criterion, first).tolist()) == pytest.approx(
        complexity(criterion, whole).sort().values[:6].tolist())


def test_distiller_runs_a_curriculum_and_reports_it(tiny_teacher, synthetic):
    student = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    cfg = DistillConfig(epochs=4, curriculum="disagreement", curriculum_start=0.25, curriculum_ramp=0.5)
    report = Distiller(tiny_teacher.build_model(), student, SyntheticSetSource(synthetic, batch_size=12), cfg,
                       show_progress=False).fit()
    kept = [row["curriculum_kept"] for row in report.history]
    assert kept[0] < kept[1] < kept[2] == kept[3] == 1.0
    assert report.source["curriculum"]["criterion"] == "disagreement"


def test_bad_curriculum_options_fail_clearly(tiny_teacher, tmp_path, capsys):
    with pytest.raises(ValueError, match="confidence or disagreement"):
        DistillConfig(curriculum="hardest")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        DistillConfig(curriculum="confidence", curriculum_start=0.0)
    path = str(tmp_path / "t.pt")
    tiny_teacher.save(path)
    code = main(["distill", "--teacher", path, "--out", str(tmp_path / "s.pt"), "--curriculum", "confidence",
                 "--curriculum-ramp", "2", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "curriculum_ramp" in err and len(err.splitlines()) == 1


def test_end_to_end_with_curriculum(tiny_teacher):
    result = distill_student(tiny_teacher, "gin-2-8", generator="prior", num_graphs=16,
                             config=DistillConfig(epochs=3, curriculum="confidence"), show_progress=False)
    assert result.report.history[0]["curriculum_kept"] < 1.0 and result.report.config["curriculum"] == "confidence"
