"""Regression teachers (issue 6): synthetic tasks, teacher training, data-free distillation, metrics, CLI."""
import math

import networkx as nx
import pytest
import torch

import dfkd
from dfkd.data import graph_target, load_dataset, make_regression_dataset, split_from_record, triangle_count
from dfkd.data.synthetic_tasks import graph_to_data, quantile_strata
from dfkd.distill import DistillConfig, distill_student, make_generator
from dfkd.evaluate import compare_regression, evaluate, predict, regression_metrics, targets_of
from dfkd.generators.prior import PriorGraphGenerator
from dfkd.train import TrainConfig


@pytest.fixture(scope="module")
def triangles():
    return make_regression_dataset("TRIANGLES", num_graphs=300, seed=0)


@pytest.fixture(scope="module")
def teacher(triangles):
    """A small GIN regression teacher (holdout 0.3) and its test graphs."""
    result = dfkd.train_teacher(triangles, "gin-3-32", holdout=0.3, config=TrainConfig(epochs=40, seed=0),
                                show_progress=False, dropout=0.0)
    _, test_idx = split_from_record(triangles, result.checkpoint.provenance["split"])
    return result, [triangles[i] for i in test_idx]


# --- the synthetic task -------------------------------------------------------------------------------------

def test_targets_hand_checked_on_tiny_graphs():
    assert triangle_count(nx.complete_graph(3)) == 1
    assert triangle_count(nx.complete_graph(4)) == 4
    assert triangle_count(nx.path_graph(5)) == 0 and triangle_count(nx.cycle_graph(4)) == 0
    assert graph_target(nx.complete_graph(3), "TRIANGLES") == pytest.approx(1 / 3)
    assert graph_target(nx.complete_graph(4), "TRIANGLES") == pytest.approx(1.0)  # 4 triangles / 4 nodes
    assert graph_target(nx.complete_graph(4), "CLUSTERING") == pytest.approx(1.0)
    assert graph_target(nx.star_graph(4), "CLUSTERING") == 0.0
    # A triangle with a pendant node: clustering (1 + 1 + 1/3 + 0) / 4.
    g = nx.Graph([(0, 1), (1, 2), (0, 2), (2, 3)])
    assert graph_target(g, "CLUSTERING") == pytest.approx((1 + 1 + 1 / 3) / 4)
    data = graph_to_data(nx.complete_graph(4), [0, 1, 2, 0], 3, graph_target(nx.complete_graph(4), "TRIANGLES"))
    assert data.x.shape == (4, 3) and data.edge_index.shape == (2, 12) and data.y.dtype == torch.float32
    with pytest.raises(ValueError, match="TRIANGLES, CLUSTERING"):
        graph_target(g, "DIAMETER")


def test_dataset_is_deterministic_exact_and_loadable(triangles):
    again = make_regression_dataset("TRIANGLES", num_graphs=300, seed=0)
    assert torch.equal(triangles.targets, again.targets) and torch.equal(triangles.x, again.x)
    assert not torch.equal(make_regression_dataset("TRIANGLES", 300, seed=1).targets, triangles.targets)
    loaded = load_dataset("synth:triangles:300:0")
    assert loaded.name == "SYNTH:TRIANGLES:300:0" and torch.equal(loaded.targets, triangles.targets)
    assert load_dataset("SYNTH:CLUSTERING:20").targets.max() <= 1.0
    # Every target equals the networkx count on the stored structure.
    for g in range(0, 300, 37):
        data = triangles[g]
        graph = nx.Graph()
        graph.add_nodes_from(range(data.num_nodes))
        graph.add_edges_from(data.edge_index.t().tolist())
        assert float(data.y) == pytest.approx(triangle_count(graph) / data.num_nodes)
    assert triangles.task == "regression" and triangles.label_values == [] and triangles.num_classes == 1
    assert triangles.num_features == 3 and triangles.feature_spec.encoding == "one_hot"
    assert len(set(triangles.families)) == 5 and triangles.targets.std() > 0.3
    with pytest.raises(ValueError, match="SYNTH:TASK"):
        load_dataset("SYNTH:TRIANGLES:many")


def test_splits_cover_the_target_range(triangles):
    train, test, split = dfkd.data.split_indices(triangles, holdout=0.3, seed=0)
    assert split["kind"] == "holdout" and len(test) == 90 and not set(train) & set(test)
    strata = triangles.labels
    assert {strata[i] for i in test} == set(range(10)) == {strata[i] for i in train}
    fold_train, fold_test = triangles.fold(3)
    assert len(fold_test) == 30 and sorted(fold_train + fold_test) == list(range(300))
    assert quantile_strata(torch.tensor([5.0, 1.0, 3.0, 2.0]), 2) == [1, 0, 1, 0]


# --- metrics ------------------------------------------------------------------------------------------------

def test_regression_metrics_by_hand():
    pred, target = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [2.0], [4.0]])
    m = regression_metrics(pred, target)
    ss_tot = sum((t - 7 / 3) ** 2 for t in (1, 2, 4))
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["r2"] == pytest.approx(1 - 1 / ss_tot)
    assert math.isnan(regression_metrics(pred, torch.ones(3, 1))["r2"])  # constant targets
    c = compare_regression(pred, target, target)
    assert c["teacher_r2"] == 1.0 and c["relative_r2"] == pytest.approx(m["r2"])
    assert c["agreement_r2"] == pytest.approx(m["r2"]) and c["agreement_mae"] == pytest.approx(1 / 3)


# --- teacher ------------------------------------------------------------------------------------------------

def test_teacher_beats_the_mean_and_round_trips(teacher, tmp_path):
    result, test = teacher
    y = targets_of(test)
    mean_mse = float(((y - result.checkpoint.provenance["target_mean"]) ** 2).mean())
    assert result.task == "regression" and math.isnan(result.test_accuracy)
    assert result.test_metrics["rmse"] ** 2 < 0.6 * mean_mse and result.test_metrics["r2"] > 0.4
    assert result.train_result.best_val_metrics["r2"] > 0.4
    ckpt = result.checkpoint
    assert ckpt.task == "regression" and ckpt.label_values == [] and ckpt.num_classes == 1
    path = str(tmp_path / "teacher.pt")
    ckpt.save(path)
    back = dfkd.load_checkpoint(path)
    assert back.task == "regression" and back.label_values == [] and back.model_config.out_channels == 1
    assert back.provenance["test_r2"] == pytest.approx(result.test_metrics["r2"])
    assert torch.allclose(predict(back.build_model(), test), predict(result.model, test))
    # A checkpoint written before regression support (no "task" key) still loads as classification.
    raw = torch.load(path, weights_only=True)
    del raw["task"]
    torch.save(raw, str(tmp_path / "old.pt"))
    assert dfkd.load_checkpoint(str(tmp_path / "old.pt")).task == "classification"


def test_evaluate_reports_regression_scores(teacher):
    result, test = teacher
    report = evaluate(result.model, test, teacher=result.model, measure_latency=False)
    assert report.task == "regression" and report.accuracy is None
    assert report.r2 == pytest.approx(result.test_metrics["r2"], abs=1e-5)
    assert report.agreement_r2 == 1.0 and report.agreement_mae == 0.0 and report.relative_r2 == pytest.approx(1.0)
    assert set(report.metrics()) == {"r2", "mae", "rmse", "teacher_r2", "teacher_mae", "teacher_rmse",
                                     "agreement_r2", "agreement_mae", "relative_r2"}


# --- distillation -------------------------------------------------------------------------------------------

def test_data_free_prior_distillation_gives_a_useful_student(teacher):
    result, test = teacher
    out = distill_student(result.checkpoint, "gin-2-32", generator="prior", num_graphs=128,
                          config=DistillConfig(epochs=40, seed=0, eval_every=20), eval_graphs=test,
                          show_progress=False)
    final = out.report.final
    assert out.report.config["loss"] == "mse"
    assert final["r2"] > 0.3 and final["agreement_r2"] > 0.4, final
    assert final["relative_r2"] == pytest.approx(final["r2"] / final["teacher_r2"])
    row = out.report.history[-1]
    assert "class_histogram" not in row and "collapsed" not in row and row["teacher_output_max"] > row["teacher_output_min"]
    assert out.checkpoint.task == "regression" and out.checkpoint.label_values == []
    assert out.graphs.target.shape == (len(out.graphs), 1) and out.graphs.target.is_floating_point()


def test_prior_pools_are_stratified_over_the_output_range(teacher):
    result, _ = teacher
    gen = PriorGraphGenerator.from_checkpoint(result.checkpoint).build(0)
    strata = gen.output_strata(torch.cat([torch.linspace(0, 1, 98), torch.tensor([-50.0, 100.0])]).unsqueeze(1))
    assert strata[-1] == strata[-2] == 8  # far outliers only top up
    inside = strata[:98][strata[:98] < 8]
    assert inside.tolist() == sorted(inside.tolist())
    assert set(strata[5:93].tolist()) == set(range(8))  # equal-width bins over the robust range
    plain = PriorGraphGenerator.from_checkpoint(result.checkpoint, balance=1).build(0)
    draw = lambda g: torch.cat([g.sample(64, torch.Generator().manual_seed(s)).teacher_logits for s in range(4)])
    balanced, unbalanced = draw(gen), draw(plain)
    # The same robust range, but the balanced draw spreads over it: a wider interquartile range.
    iqr = lambda v: float(torch.quantile(v, 0.75) - torch.quantile(v, 0.25))
    assert iqr(balanced) > iqr(unbalanced)
    assert balanced.shape == (256, 1) and gen.sample(8, torch.Generator()).y.shape == (8, 1)


def test_random_and_gfkd_generators_serve_regression(teacher):
    result, test = teacher
    rand = make_generator("random", result.checkpoint).generate(32, seed=0, show_progress=False)
    assert rand.target.shape == (32, 1) and torch.equal(rand.target, rand.teacher_logits)
    gfkd = make_generator("gfkd", result.checkpoint, iterations=5).generate(24, seed=0, show_progress=False)
    assert gfkd.target.shape == (24, 1) and gfkd.target.is_floating_point()
    assert len(set(gfkd.target.view(-1).tolist())) == 24  # targets spread over the teacher's range
    assert "target_mae" in gfkd.meta["history"][-1]
    with pytest.raises(ValueError, match="target_confidence"):
        make_generator("gfkd", result.checkpoint, target_confidence=(0.6, 0.9)).generate(4, show_progress=False)
    out = distill_student(result.checkpoint, "gin-2-8", generator="random", num_graphs=32,
                          config=DistillConfig(epochs=2), eval_graphs=test[:20], show_progress=False)
    assert set(out.report.final) >= {"r2", "teacher_r2", "agreement_r2", "relative_r2"}


def test_dfad_uses_l1_and_conditional_is_refused(teacher):
    result, _ = teacher
    assert make_generator("dfad", result.checkpoint).config.discrepancy == "mae"
    with pytest.raises(ValueError, match="discrepancy=mae"):
        make_generator("dfad", result.checkpoint, discrepancy="prob_mae")
    with pytest.raises(ValueError, match="prior, random, gfkd or dfad"):
        make_generator("conditional", result.checkpoint)
    out = distill_student(result.checkpoint, "gin-2-8", generator="dfad", num_graphs=16,
                          config=DistillConfig(epochs=1), show_progress=False)
    assert "teacher_output_mean" in out.report.history[-1]


def test_dfad_game_is_bounded_to_the_teachers_output_range(teacher):
    result, _ = teacher
    gen = make_generator("dfad", result.checkpoint).build(0)
    low, high = gen.output_range
    assert gen.output_range.shape == (2, 1) and bool((low < high).all())
    # The range is the teacher's on the generator's starting graphs: most of them fall inside it.
    batch = gen.sample(200, torch.Generator().manual_seed(1))
    inside = ((batch.teacher_logits >= low) & (batch.teacher_logits <= high)).float().mean()
    assert 0.7 <= float(inside) <= 1.0
    width = float(high - low)
    teacher_out = torch.tensor([[float(low) - width], [float(high)], [float(low) + width / 2]])
    student_out = torch.tensor([[float(low)], [float(high) + 5 * width], [float(low)]])
    terms = gen.adversarial_terms(student_out, teacher_out)
    # Clipped and scaled: |0 - 0|, |1 - 1|, |0 - 0.5| -> mean 1/6; beyond the range: 1 width, 0, 0 -> mean 1/3.
    assert terms["adversarial"].item() == pytest.approx(-1 / 6, abs=1e-5)
    assert terms["range"].item() == pytest.approx(1 / 3, abs=1e-5)
    unbounded = make_generator("dfad", result.checkpoint, output_bound=False).build(0)
    assert unbounded.output_range is None
    plain = unbounded.adversarial_terms(student_out, teacher_out)
    assert set(plain) == {"adversarial"} and plain["adversarial"].item() == pytest.approx(
        -(student_out - teacher_out).abs().mean().item())
    with pytest.raises(ValueError, match="output_quantile"):
        make_generator("dfad", result.checkpoint, output_quantile=0.5)


@pytest.mark.parametrize("loss", ["kl", "prob_mae", "dynamic_kl", "mse,kl=0.5", "label_ce"])
def test_class_losses_refused_for_regression(teacher, loss):
    result, _ = teacher
    with pytest.raises(ValueError, match="use --loss mse .* or mae"):
        distill_student(result.checkpoint, "gin-2-8", config=DistillConfig(epochs=1, loss=loss), show_progress=False)


def test_mae_loss_and_real_graph_kd_work(teacher, triangles):
    result, test = teacher
    train_idx, _ = split_from_record(triangles, result.checkpoint.provenance["split"])
    out = distill_student(result.checkpoint, "gin-2-8", config=DistillConfig(epochs=2, loss="mae"),
                          real_graphs=[triangles[i] for i in train_idx[:64]], eval_graphs=test[:20], show_progress=False)
    assert out.report.config["loss"] == "mae" and "r2" in out.report.final


# --- command line -------------------------------------------------------------------------------------------

def test_cli_regression_round_trip(tmp_path, capsys):
    from dfkd.cli import main

    teacher, student = str(tmp_path / "t.pt"), str(tmp_path / "s.pt")
    data = ["--dataset", "SYNTH:TRIANGLES:120:0"]
    assert main(["train-teacher", *data, "--arch", "gin-2-16", "--epochs", "3", "--holdout", "0.3",
                 "--out", teacher, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "regression: val R²" in out and "test R²" in out and "MAE" in out
    assert main(["distill", "--teacher", teacher, "--student", "gin-2-8", "--epochs", "2", "--num-graphs", "16",
                 "--eval-dataset", "SYNTH:TRIANGLES:120:0", "--out", student, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "student R²" in out and "relative R²" in out and "agreement R²" in out
    assert main(["evaluate", "--model", student, "--teacher", teacher, *data, "--quiet"]) == 0
    out = capsys.readouterr().out
    from dfkd.data import load_dataset, split_indices
    _, test_idx, _ = split_indices(load_dataset("SYNTH:TRIANGLES:120:0"), holdout=0.3)
    assert f"{len(test_idx)} graphs" in out and "teacher  R²" in out and "relative R²" in out
    assert main(["distill", "--teacher", teacher, "--loss", "kl", "--out", student, "--quiet"]) == 2
    assert "use --loss mse" in capsys.readouterr().err
    assert main(["generate", "--teacher", teacher, "--num-graphs", "8", "--out", str(tmp_path / "g.pt"), "--quiet"]) == 0
    assert "teacher outputs" in capsys.readouterr().out
