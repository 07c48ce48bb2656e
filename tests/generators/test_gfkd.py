import logging

import pytest
import torch

import dfkd
from dfkd.config import FeatureSpec
from dfkd.generators import BernoulliGraphGenerator, SyntheticGraphSet, get_generator_class, list_generators


def test_registry():
    assert {"gfkd", "random"} <= set(list_generators())
    assert get_generator_class("GFKD") is BernoulliGraphGenerator
    with pytest.raises(ValueError, match="no generator 'nope' registered: choose one of"):
        get_generator_class("nope")


def test_generates_valid_graphs_and_keeps_teacher_frozen(tiny_teacher, check_valid_graphs):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=20, min_nodes=5, max_nodes=9)
    assert repr(gen) == "BernoulliGraphGenerator(iterations=20, min_nodes=5, max_nodes=9)"
    before = {k: v.clone() for k, v in gen.teacher.state_dict().items()}
    graphs = gen.generate(12, seed=0, show_progress=False)
    check_valid_graphs(graphs, tiny_teacher.feature_spec, 5, 9)
    assert not gen.teacher.training
    assert all(torch.equal(before[k], v) for k, v in gen.teacher.state_dict().items())
    assert torch.bincount(graphs.target, minlength=2).tolist() == [6, 6]  # balanced targets
    assert graphs.teacher_logits.shape == (12, 2)


def test_one_batched_teacher_call_per_pass(tiny_teacher):
    def calls(num_graphs, **options):
        gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=5, **options)
        count = []
        handle = gen.teacher.register_forward_pre_hook(lambda module, args: count.append(1))
        gen.generate(num_graphs, show_progress=False)
        handle.remove()
        return len(count)

    # Two passes per iteration (ARM's antithetic pair) + one labelling pass, whatever the graph count.
    assert calls(40, type_prior=False) == calls(3, type_prior=False) == 2 * 5 + 1
    assert calls(40) == calls(3)  # the type-prior fit is batched too


def test_seeded_generation_is_deterministic(tiny_teacher):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=10)
    a, b = gen.generate(8, seed=3, show_progress=False), gen.generate(8, seed=3, show_progress=False)
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    c = gen.generate(8, seed=4, show_progress=False)
    assert not (torch.equal(a.x, c.x) and torch.equal(a.edge_index, c.edge_index))


def test_optimisation_fits_the_targets(tiny_teacher):
    # From the Erdős–Rényi start (the degree-law start is confident, so it moves less in 300 steps).
    untrained = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=0, degree_law=False).generate(64)
    graphs = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, degree_law=False).generate(64, show_progress=False)
    history = graphs.meta["history"]
    assert history[-1]["ce"] < 0.8 * history[0]["ce"]
    assert graphs.summary()["teacher_agreement"] >= untrained.summary()["teacher_agreement"] + 0.15
    default = BernoulliGraphGenerator.from_checkpoint(tiny_teacher).generate(64, show_progress=False)
    assert default.meta["history"][-1]["ce"] < default.meta["history"][0]["ce"]


def test_degree_law_start(tiny_teacher):
    def dispersion(graphs):
        degree = torch.bincount(graphs.edge_index[0], minlength=int(graphs.num_nodes.sum())).float()
        return (degree.var() / degree.mean()).item()

    law = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=0).generate(128, show_progress=False)
    er = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=0, degree_law=False).generate(128)
    # MUTAG's molecules: dispersion ~0.25; the resampled Bernoulli structure keeps it well below ER's.
    assert dispersion(law) < 0.6 < 0.8 < dispersion(er)


@pytest.mark.parametrize("estimator", ["concrete", "straight_through"])
def test_relaxed_estimators(tiny_teacher, estimator, check_valid_graphs):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=10, estimator=estimator)
    graphs = gen.generate(6, show_progress=False)
    check_valid_graphs(graphs, tiny_teacher.feature_spec, 10, 28)


def test_degree_encoded_teacher(check_valid_graphs):
    spec = FeatureSpec(dim=6, encoding="degree", max_degree=5)
    teacher = dfkd.build_model("gin-2-8", in_channels=6, out_channels=3)
    gen = BernoulliGraphGenerator(teacher, spec, 3, iterations=5, min_nodes=4, max_nodes=8)
    graphs = gen.generate(9, show_progress=False)
    check_valid_graphs(graphs, spec, 4, 8)
    for g in range(len(graphs)):  # features are the one-hot degree of the structure
        data = graphs[g]
        deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes).clamp(max=5)
        assert torch.equal(data.x.argmax(-1), deg)


def test_teacher_without_batchnorm_or_edge_weight(caplog):
    spec = FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2])

    class BlackBox(torch.nn.Module):  # a user's model: no BatchNorm, no edge_weight argument
        def __init__(self):
            super().__init__()
            self.net = dfkd.build_model("gcn-2-8", in_channels=3, out_channels=2, batch_norm=False)

        def forward(self, x, edge_index, batch):
            return self.net(x, edge_index, batch)

    with caplog.at_level(logging.WARNING):
        graphs = BernoulliGraphGenerator(BlackBox(), spec, 2, iterations=3).generate(4, show_progress=False)
    assert "no BatchNorm layers" in caplog.text and len(graphs) == 4
    with pytest.raises(ValueError, match="takes no edge_weight"):
        BernoulliGraphGenerator(BlackBox(), spec, 2, iterations=1, estimator="concrete").generate(2, show_progress=False)


def test_config_errors(tiny_teacher):
    with pytest.raises(ValueError, match="unknown estimator"):
        BernoulliGraphGenerator.from_checkpoint(tiny_teacher, estimator="reinforce")
    with pytest.raises(ValueError, match="invalid node range"):
        BernoulliGraphGenerator.from_checkpoint(tiny_teacher, min_nodes=9, max_nodes=3).generate(2)


def test_save_load_resample_and_export(tiny_teacher, tmp_path, check_valid_graphs):
    graphs = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=5).generate(6, show_progress=False)
    path = str(tmp_path / "synth.pt")
    graphs.save(path)
    loaded = SyntheticGraphSet.load(path)
    assert torch.equal(loaded.x, graphs.x) and torch.equal(loaded.edge_index, graphs.edge_index)
    assert torch.equal(loaded.teacher_logits, graphs.teacher_logits) and loaded.meta["generator"] == "gfkd"
    fresh = loaded.resample(torch.Generator().manual_seed(0))
    check_valid_graphs(fresh, tiny_teacher.feature_spec, 10, 28)
    assert torch.equal(fresh.num_nodes, graphs.num_nodes) and fresh.teacher_logits is None
    nx_graph = loaded.to_networkx(0)
    assert nx_graph.number_of_nodes() == int(graphs.num_nodes[0])
    assert nx_graph.number_of_edges() == int(graphs.num_edges[0])
    files = loaded.export_graphml(str(tmp_path / "graphml"))
    assert len(files) == 6
    with pytest.raises(ValueError, match="not a dfkd synthetic graph set"):
        torch.save({"x": 1}, str(tmp_path / "other.pt"))
        SyntheticGraphSet.load(str(tmp_path / "other.pt"))


def test_soft_targets_cover_confidence_range(tiny_teacher):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=3, target_confidence=(0.6, 0.9))
    targets = torch.tensor([0, 1, 1, 0])
    probs = gen.soft_targets(targets, torch.Generator().manual_seed(0))
    assert torch.allclose(probs.sum(-1), torch.ones(4))
    top = probs[torch.arange(4), targets]
    assert torch.all((top >= 0.6) & (top <= 0.9))
    assert len(gen.generate(4, show_progress=False)) == 4
    with pytest.raises(ValueError, match="target_confidence"):
        BernoulliGraphGenerator.from_checkpoint(tiny_teacher, target_confidence=(0.2, 0.9)).soft_targets(
            targets, torch.Generator())


def test_initial_structure_matches_teacher_degree(tiny_teacher):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=0)
    graphs = gen.generate(200, show_progress=False)
    degree = 2 * graphs.num_edges.sum() / graphs.num_nodes.sum()
    assert abs(float(degree) - tiny_teacher.size_stats.mean_degree) < 0.3


def test_batch_slices_equal_from_data_list(tiny_teacher):
    from torch_geometric.data import Batch

    graphs = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, iterations=2).generate(9, show_progress=False)
    order = [7, 0, 3, 3, 8]
    fast, slow = graphs.batch(order), Batch.from_data_list([graphs[g] for g in order])
    assert fast.num_graphs == slow.num_graphs == 5
    for key in ("x", "edge_index", "batch", "ptr", "y", "teacher_logits"):
        assert torch.equal(getattr(fast, key), getattr(slow, key)), key


# --- the paper preset: each equation on a hand-computed case ------------------------------------------------
def _paper_generator(teacher, **options):
    return BernoulliGraphGenerator.from_checkpoint(teacher, preset="paper", min_nodes=4, max_nodes=7, **options)


def _hand_objective(gen, state, mask, feat):
    """GFKD Eq. 10 written out: per-graph CE (uniform targets), the l2 BatchNorm prior of the pass (every layer's
    ``‖μ_b − μ_r‖ + ‖σ²_b − σ²_r‖`` on its input, summed) and the mean row entropy of ``softmax(F)``."""
    from torch_geometric.utils import to_undirected

    inputs = []
    layers = [m for m in gen.teacher.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    handles = [m.register_forward_hook(lambda m, i, o: inputs.append((m, i[0]))) for m in layers]
    pairs = state.pairs[:, mask]
    edge_index = to_undirected(pairs, num_nodes=state.node_graph.numel())
    x = torch.softmax(feat, -1)
    logits = gen.teacher(x, edge_index, state.node_graph)
    for h in handles:
        h.remove()
    ce = torch.nn.functional.cross_entropy(logits, state.targets, reduction="none")
    bn = sum(torch.linalg.vector_norm(a.mean(0) - m.running_mean) +
             torch.linalg.vector_norm(a.var(0, unbiased=False) - m.running_var) for m, a in inputs)
    probs = torch.softmax(feat, -1)
    entropy = -(probs * torch.log(probs + 1e-12)).sum(-1).mean()
    return ce, bn, entropy


def test_paper_preset_values_and_overrides(tiny_teacher):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, preset="paper", iterations=7)
    cfg = gen.config
    assert cfg.iterations == 7  # an explicit option wins over the preset
    assert (cfg.structure_lr, cfg.feature_lr, cfg.lr_decay_every) == (1.0, 0.01, 1000)
    assert (cfg.bn_loss, cfg.bn_weight, cfg.entropy_weight, cfg.hard_features) == ("l2", 0.01, 1e-6, False)
    assert (cfg.arm_objective, cfg.feature_structure, cfg.keep_best, cfg.init_structure, cfg.targets) == \
        ("full", "mode", True, "uniform", "random")
    assert gen.node_range() == (10, 29)
    with pytest.raises(ValueError, match="generator 'gfkd' has no preset 'nope': choose one of \\['paper'\\]"):
        BernoulliGraphGenerator.from_checkpoint(tiny_teacher, preset="nope")
    with pytest.raises(ValueError, match="unknown arm_objective 'x'"):
        BernoulliGraphGenerator.from_checkpoint(tiny_teacher, arm_objective="x")


def test_paper_step_matches_the_hand_computed_arm_estimate_and_feature_gradient(tiny_teacher):
    from dfkd.generators.estimators import arm_samples

    gen = _paper_generator(tiny_teacher)
    rng = torch.Generator().manual_seed(0)
    state = gen.initial_state(6, 0, rng)
    p = torch.sigmoid(state.phi.detach())
    assert 0.3 < float(p.mean()) < 0.7 and float(p.std()) > 0.2  # φ = logit(U(0, 1))
    opt = torch.optim.SGD([state.phi, state.feat], lr=0.0)  # lr 0: read the gradients, keep the parameters
    replay = torch.Generator().manual_seed(0)
    replay.set_state(rng.get_state())
    gen.step(state, opt, rng, 0)
    u, z1, z2 = arm_samples(state.phi, replay)
    feat = state.feat.detach()
    with torch.no_grad():
        (c1, b1, _), (c2, b2, _) = (_hand_objective(gen, state, z, feat) for z in (z1, z2))
        f1, f2 = c1 + 0.01 * b1, c2 + 0.01 * b2
    # Eq. 12 on the full per-graph objective: the BatchNorm prior enters both passes.
    expected = (f1 - f2)[state.pair_graph] * (u - 0.5)
    torch.testing.assert_close(state.phi.grad, expected, rtol=1e-4, atol=1e-6)
    # Features: Eq. 10 back-propagated on the deterministic structure 1[σ(φ) ≥ ½].
    leaf = feat.clone().requires_grad_(True)
    ce, bn, entropy = _hand_objective(gen, state, state.phi.detach() >= 0, leaf)
    (ce.mean() + 0.01 * bn + 1e-6 * entropy).backward()
    torch.testing.assert_close(state.feat.grad, leaf.grad, rtol=1e-4, atol=1e-7)


def test_arm_on_the_cross_entropy_alone_leaves_the_prior_out(tiny_teacher):
    from dfkd.generators.estimators import arm_samples

    gen = _paper_generator(tiny_teacher, arm_objective="ce", feature_structure="sample")
    rng = torch.Generator().manual_seed(1)
    state = gen.initial_state(5, 0, rng)
    opt = torch.optim.SGD([state.phi, state.feat], lr=0.0)
    replay = torch.Generator()
    replay.set_state(rng.get_state())
    gen.step(state, opt, rng, 0)
    u, z1, z2 = arm_samples(state.phi, replay)
    with torch.no_grad():
        (c1, b1, _), (c2, b2, _) = (_hand_objective(gen, state, z, state.feat) for z in (z1, z2))
    assert float((b1 - b2).abs()) > 1e-3  # the two structures' priors differ, so leaving them out shows
    torch.testing.assert_close(state.phi.grad, (c1 - c2)[state.pair_graph] * (u - 0.5), rtol=1e-4, atol=1e-6)


def test_paper_preset_passes_and_keeps_every_graphs_lowest_loss_structure(tiny_teacher):
    gen = _paper_generator(tiny_teacher, iterations=4)
    calls = []
    handle = gen.teacher.register_forward_pre_hook(lambda module, args: calls.append(1))
    graphs = gen.generate(10, seed=0, show_progress=False)
    handle.remove()
    assert len(calls) == 3 * 4 + 1  # mode (features), z1 and z2 (ARM) per step, then labelling
    assert graphs.meta["config"]["keep_best"] and graphs.num_nodes.min() >= 4


def test_best_graphs_keep_each_graphs_lowest_score():
    from dfkd.generators.gfkd import BernoulliGraphs, _BestGraphs

    # Two graphs of two nodes: one candidate pair each, nodes 0-1 in graph 0 and 2-3 in graph 1.
    state = BernoulliGraphs(counts=torch.tensor([2, 2]), node_graph=torch.tensor([0, 0, 1, 1]),
                            pairs=torch.tensor([[0, 2], [1, 3]]), pair_graph=torch.tensor([0, 1]),
                            phi=torch.zeros(2), feat=None, targets=torch.tensor([0, 1]))
    best = _BestGraphs(state)
    best.update(torch.tensor([1.0, 2.0]), torch.tensor([True, False]), torch.full((4, 1), 1.0))
    best.update(torch.tensor([3.0, 0.5]), torch.tensor([False, True]), torch.full((4, 1), 2.0))
    assert best.score.tolist() == [1.0, 0.5]
    assert best.mask.tolist() == [True, True]  # graph 0 from the first step, graph 1 from the second
    assert best.x.view(-1).tolist() == [1.0, 1.0, 2.0, 2.0]


def test_random_targets_are_uniform_draws(tiny_teacher):
    gen = BernoulliGraphGenerator.from_checkpoint(tiny_teacher, targets="random", iterations=0)
    targets = gen.class_targets(400, torch.Generator().manual_seed(0))
    counts = torch.bincount(targets, minlength=2)
    assert counts.sum() == 400 and 150 < int(counts[0]) < 250
    assert not torch.equal(targets, gen.class_targets(400, torch.Generator().manual_seed(1)))
