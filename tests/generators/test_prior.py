import dataclasses

import pytest
import torch
import torch_geometric
from torch import nn

import dfkd
from dfkd.config import FeatureSpec, GraphSizeStats
from dfkd.distill.sources import OnlineSource
from dfkd.evaluate import predict
import dfkd.generators.base as generator_base
from dfkd.generators import OnlineGraphGenerator, PriorGraphGenerator, get_generator_class
from dfkd.generators.prior import PriorConfig, flip_types, hotflip_gain, isolation_rank


class SizeTeacher(nn.Module):
    """Class 0 for graphs of more than ``cut`` nodes, else class 1: a lopsided toy teacher."""

    def __init__(self, cut: int = 12, scale: float = 1.0):
        super().__init__()
        self.cut, self.scale = cut, scale

    def forward(self, x, edge_index, batch):
        size = torch.bincount(batch).float()
        return torch.stack([(size - self.cut - 0.5) * self.scale, torch.zeros_like(size)], -1)


def _degree_dispersion(graphs):
    degree = torch.bincount(graphs.edge_index[0], minlength=int(graphs.num_nodes.sum())).float()
    return (degree.var() / degree.mean()).item(), degree.mean().item()


def test_registry_options_and_errors(tiny_teacher):
    assert get_generator_class("prior") is PriorGraphGenerator
    gen = PriorGraphGenerator.from_checkpoint(tiny_teacher)
    assert isinstance(gen, OnlineGraphGenerator) and gen.generator_steps == 0
    with pytest.raises(RuntimeError, match="build"):
        gen.sample(4, torch.Generator())
    with pytest.raises(ValueError, match="degree_dispersion must be > 0"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, degree_dispersion=0)
    with pytest.raises(ValueError, match="balance must be >= 1"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, balance=0)


def test_graphs_are_valid_and_labelled_by_the_teacher(tiny_teacher, check_valid_graphs):
    graphs = PriorGraphGenerator.from_checkpoint(tiny_teacher, min_nodes=6, max_nodes=15).generate(40, seed=0)
    check_valid_graphs(graphs, tiny_teacher.feature_spec, 6, 15)
    assert torch.equal(graphs.target, graphs.teacher_logits.argmax(-1))
    again = PriorGraphGenerator.from_checkpoint(tiny_teacher, min_nodes=6, max_nodes=15).generate(40, seed=0)
    assert torch.equal(graphs.edge_index, again.edge_index) and torch.equal(graphs.x, again.x)


def test_degree_law_follows_the_checkpoint_statistics(tiny_teacher):
    stats = tiny_teacher.size_stats
    assert stats.degree_dispersion < 0.5  # MUTAG's molecules are much more regular than Erdős–Rényi
    molecules = PriorGraphGenerator.from_checkpoint(tiny_teacher, balance=1).generate(200, seed=0)
    dispersion, mean = _degree_dispersion(molecules)
    assert dispersion < 0.5 and mean == pytest.approx(stats.mean_degree, rel=0.15)
    erdos_renyi = PriorGraphGenerator.from_checkpoint(tiny_teacher, balance=1, degree_dispersion=1.0).generate(200, 0)
    assert 0.8 < _degree_dispersion(erdos_renyi)[0] < 1.2


def test_node_types_follow_the_inverted_prior(tiny_teacher):
    stats = tiny_teacher.size_stats.replace(type_frequencies=None)  # a checkpoint without node-type shares
    gen = PriorGraphGenerator(tiny_teacher.build_model(), tiny_teacher.feature_spec, 2, stats, balance=1).build(0)
    graphs = gen.generate(300, seed=3)
    freq = graphs.x.mean(0)
    assert torch.allclose(freq, gen.type_probs, atol=0.03)
    uniform = PriorGraphGenerator.from_checkpoint(tiny_teacher, type_prior=False).build(0)
    assert torch.allclose(uniform.type_probs, torch.full_like(uniform.type_probs, 1 / 7))


def test_type_spread_gives_each_graph_its_own_composition_around_the_prior(tiny_teacher):
    """Logistic-normal spread: per-graph type shares vary with σ, their pooled mean stays near the prior."""
    def shares(spread, **options):
        gen = PriorGraphGenerator.from_checkpoint(tiny_teacher, balance=1, type_spread=spread, **options).build(0)
        graphs = gen.generate(300, seed=1)
        return gen.type_probs, torch.stack([graphs[g].x.mean(0) for g in range(len(graphs))])  # [G, F]

    # uniform prior over 7 types: a graph's commonest type holds ~1/3 of its nodes by sampling noise alone,
    # most of them once every graph draws its own composition
    assert shares(0.0, type_prior=False)[1].max(-1).values.mean() < 0.4
    assert shares(2.0, type_prior=False)[1].max(-1).values.mean() > 0.5  # measured 0.28 and 0.61
    prior, pooled = shares(0.0)
    _, spread = shares(2.0)
    assert spread.std(0).sum() > 2.5 * pooled.std(0).sum()  # measured 1.01 against 0.27
    assert spread.mean(0).argmax() == prior.argmax()  # the prior's commonest type stays the commonest
    with pytest.raises(ValueError, match="type_spread must be >= 0"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, type_spread=-1.0)


def test_balance_evens_out_a_lopsided_teacher():
    spec = FeatureSpec(dim=3, encoding="one_hot")
    stats = GraphSizeStats(min_nodes=5, max_nodes=40, mean_nodes=22.0, mean_degree=2.0, degree_var=2.0)
    plain = PriorGraphGenerator(SizeTeacher(), spec, 2, stats, balance=1).generate(400, seed=0)
    assert torch.bincount(plain.target, minlength=2)[0] > 300  # ~80% class 0
    balanced = PriorGraphGenerator(SizeTeacher(), spec, 2, stats, balance=4).generate(400, seed=0)
    assert torch.bincount(balanced.target, minlength=2).tolist() == [200, 200]
    for g in range(len(balanced)):  # the selected graphs keep their own teacher outputs
        assert (balanced.num_nodes[g] > 12) == (balanced.target[g] == 0)


def test_boundary_picks_the_candidates_the_teacher_is_least_sure_of():
    """SizeTeacher's margin grows with |size - 12.5|: with boundary=1 each class's quota takes the sizes
    nearest the cut, still 200 graphs per class."""
    spec = FeatureSpec(dim=3, encoding="one_hot")
    stats = GraphSizeStats(min_nodes=5, max_nodes=40, mean_nodes=22.0, mean_degree=2.0, degree_var=2.0)

    def picked(boundary):
        graphs = PriorGraphGenerator(SizeTeacher(), spec, 2, stats, boundary=boundary).generate(400, seed=0)
        assert torch.bincount(graphs.target, minlength=2).tolist() == [200, 200]
        return graphs.num_nodes.float(), graphs.target

    sizes, target = picked(1.0)
    # 1600 candidates, sizes uniform on 5..40: ~45 per size, so 200 of class 0 fill sizes 13-17 and
    # 200 of class 1 sizes 12 down to 8
    assert sizes[target == 0].max() <= 18 and sizes[target == 1].min() >= 7
    random_sizes, random_target = picked(0.0)
    assert random_sizes[random_target == 0].max() > 30
    assert (sizes - 12.5).abs().mean() < 0.5 * (random_sizes - 12.5).abs().mean()
    with pytest.raises(ValueError, match="boundary must be in"):
        PriorGraphGenerator(SizeTeacher(), spec, 2, stats, boundary=1.5)


class UniformStudent(nn.Module):
    """Predicts both classes equally likely: its KL from a teacher grows with the teacher's confidence."""

    def forward(self, x, edge_index, batch):
        return torch.zeros(int(batch.max()) + 1, 2)


def test_disagreement_picks_the_candidates_the_student_gets_most_wrong():
    """Against a uniform student, KL(teacher || student) = log 2 - H(teacher), largest where SizeTeacher is surest
    (sizes far from 12.5; scaled down so that float32 does not saturate): with disagreement=1 each quota takes the
    extreme sizes, the opposite of boundary."""
    spec = FeatureSpec(dim=3, encoding="one_hot")
    stats = GraphSizeStats(min_nodes=5, max_nodes=40, mean_nodes=22.0, mean_degree=2.0, degree_var=2.0)
    gen = PriorGraphGenerator(SizeTeacher(scale=0.1), spec, 2, stats, disagreement=1.0).build(0)
    random_pick = gen.sample(400, torch.Generator().manual_seed(0))  # no student attached: at random
    gen.attach_student(UniformStudent())
    graphs = gen.sample(400, torch.Generator().manual_seed(0))
    sizes = torch.bincount(graphs.batch).float()
    assert torch.bincount(graphs.y, minlength=2).tolist() == [200, 200]
    # 1600 candidates, ~45 per size on 5..40: class 0's 200 fill sizes 40 down to 36, class 1's sizes 5 to 9
    assert sizes[graphs.y == 0].min() >= 35 and sizes[graphs.y == 1].max() <= 10
    random_sizes = torch.bincount(random_pick.batch).float()
    assert (sizes - 12.5).abs().mean() > 1.5 * (random_sizes - 12.5).abs().mean()
    with pytest.raises(ValueError, match="disagreement must be in"):
        PriorGraphGenerator(SizeTeacher(), spec, 2, stats, disagreement=-0.1)


def test_disagreement_runs_the_student_in_eval_mode_and_leaves_it_as_it_was(tiny_teacher):
    gen = PriorGraphGenerator.from_checkpoint(tiny_teacher, disagreement=0.5).build(0)
    student = dfkd.build_model("gin-2-8", in_channels=tiny_teacher.feature_spec.dim, out_channels=2).train()
    norms = [m for m in student.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms
    before = [m.running_mean.clone() for m in norms]
    source = OnlineSource(gen, 32, batch_size=16)
    source.attach_student(student)
    assert gen.student is student
    list(source.batches(0, torch.Generator().manual_seed(0)))
    assert student.training and all(torch.equal(a, m.running_mean) for a, m in zip(before, norms))


def test_clique_share_draws_that_share_as_clique_unions(tiny_teacher, check_valid_graphs):
    """clique_share=0.5: about half the graphs come from clique_unions (far more triangles), the rest from the
    degree law; the mean degree is kept and the graphs are valid."""
    def draw(share):
        gen = PriorGraphGenerator.from_checkpoint(tiny_teacher, balance=1, clique_share=share).build(0)
        return gen.generate(200, seed=0)

    mixed, plain = draw(0.5), draw(0.0)
    check_valid_graphs(mixed, tiny_teacher.feature_spec, tiny_teacher.size_stats.min_nodes,
                       tiny_teacher.size_stats.max_nodes)
    assert _degree_dispersion(mixed)[1] == pytest.approx(_degree_dispersion(plain)[1], rel=0.15)
    def closed(graphs):  # [G] triangles (times 6) of every graph
        batch = graphs.batch(list(range(len(graphs))))
        adj = torch_geometric.utils.to_dense_adj(batch.edge_index, batch.batch)
        return torch.einsum("gij,gjk,gki->g", adj, adj, adj)

    # MUTAG's degree law (regular, mean 2.2) draws few triangles; clique unions at that degree many.
    assert closed(mixed).mean() > 3 * closed(plain).mean()
    with pytest.raises(ValueError, match="clique_share must be in"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, clique_share=2.0)


def test_hub_share_gives_that_share_of_graphs_a_node_joined_to_all_others(check_valid_graphs):
    """hub_share=1: every graph's first node has degree n - 1 (and its degree feature says so); 0.5: about half
    the graphs; 0 draws exactly what the default draws (no random numbers taken)."""
    stats = GraphSizeStats(min_nodes=8, max_nodes=20, mean_nodes=14.0, mean_degree=3.0, degree_var=3.0)
    spec = FeatureSpec(dim=20, encoding="degree", max_degree=19)
    teacher = dfkd.build_model("gin-2-8", in_channels=20, out_channels=2)

    def draw(share):
        gen = PriorGraphGenerator(teacher, spec, 2, stats, PriorConfig(balance=1, hub_share=share)).build(0)
        graphs = gen.generate(200, seed=0)
        batch = graphs.batch(list(range(len(graphs))))
        counts = torch.bincount(batch.batch)
        first = batch.ptr[:-1]
        degree = torch.bincount(batch.edge_index[0], minlength=batch.num_nodes)[first]
        return graphs, batch, degree == counts - 1, first

    graphs, batch, is_hub, first = draw(1.0)
    check_valid_graphs(graphs, spec, 8, 20)
    assert is_hub.all()
    assert torch.equal(batch.x[first].argmax(-1), torch.bincount(batch.batch) - 1)
    assert 0.35 < draw(0.5)[2].float().mean() < 0.65
    assert draw(0.0)[2].float().mean() < 0.05  # the degree law at mean 3 rarely draws one
    plain = PriorGraphGenerator(teacher, spec, 2, stats, PriorConfig(balance=1)).build(0).generate(200, seed=0)
    assert torch.equal(draw(0.0)[0].edge_index, plain.edge_index)
    with pytest.raises(ValueError, match="hub_share must be in"):
        PriorConfig(hub_share=-0.1)


def test_law_mean_from_reaches_the_inference(tiny_teacher, monkeypatch):
    """law_mean_from (default first-layer) is handed to infer_degree_law when the law is inferred; a bad value is
    refused."""
    seen = []
    infer = generator_base.infer_degree_law

    def spy(*args, **kwargs):
        seen.append(kwargs.get("mean_from"))
        return infer(*args, **kwargs)

    monkeypatch.setattr(generator_base, "infer_degree_law", spy)
    stripped = dataclasses.replace(tiny_teacher, size_stats=None)
    PriorGraphGenerator.from_checkpoint(stripped).build(0)
    PriorGraphGenerator.from_checkpoint(stripped, law_mean_from="all-layers").build(0)
    assert seen == ["first-layer", "all-layers"]
    with pytest.raises(ValueError, match="law_mean_from must be one of"):
        PriorConfig(law_mean_from="deepest")


def test_degree_encoded_and_continuous_features(check_valid_graphs):
    stats = GraphSizeStats(min_nodes=8, max_nodes=20, mean_nodes=14.0, mean_degree=5.0, degree_var=20.0)
    spec = FeatureSpec(dim=12, encoding="degree", max_degree=11)
    teacher = dfkd.build_model("gin-2-8", in_channels=12, out_channels=3)
    graphs = PriorGraphGenerator(teacher, spec, 3, stats).generate(30, seed=0)
    check_valid_graphs(graphs, spec, 8, 20)
    degree = torch.bincount(graphs.edge_index[0], minlength=graphs.x.size(0)).clamp(max=11)
    assert torch.equal(graphs.x.argmax(-1), degree)
    spec = FeatureSpec(dim=5, encoding="continuous")
    teacher = dfkd.build_model("gcn-2-8", in_channels=5, out_channels=2)
    graphs = PriorGraphGenerator(teacher, spec, 2).generate(10, seed=0)  # no statistics: 10-30 nodes, ER
    assert graphs.x.shape[1] == 5 and torch.all((graphs.num_nodes >= 10) & (graphs.num_nodes <= 30))


def test_online_source_gives_fresh_graphs_and_resumes(tiny_teacher):
    source = OnlineSource(PriorGraphGenerator.from_checkpoint(tiny_teacher).build(0), 64, batch_size=16)
    epoch = lambda seed: list(source.batches(0, torch.Generator().manual_seed(seed)))
    first, second = epoch(1), epoch(2)
    assert len(first) == 4 and not torch.equal(first[0].x, second[0].x)
    state = source.state_dict()
    fresh = OnlineSource(PriorGraphGenerator.from_checkpoint(tiny_teacher).build(5), 64, batch_size=16)
    fresh.load_state_dict(state)
    replay = list(fresh.batches(0, torch.Generator().manual_seed(1)))
    assert all(torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x) for a, b in zip(first, replay))
    assert source.epoch_stats()["class_histogram"] and "generator_loss" not in source.epoch_stats()


def test_distill_end_to_end(tiny_teacher, mutag, tmp_path):
    graphs = list(mutag)  # all 188: MUTAG's first graphs share one label, too easy for a constant student
    result = dfkd.distill_student(tiny_teacher, "gin-2-16", generator="prior", num_graphs=128,
                                  config=dfkd.DistillConfig(epochs=20, seed=0), eval_graphs=graphs,
                                  out=str(tmp_path / "s.pt"), show_progress=False)
    assert result.graphs is not None and len(result.graphs) == 128
    assert (tmp_path / "s.report.json").exists()
    # Knowledge transferred: the student agrees with the teacher far more often than a constant student
    # predicting the teacher's most frequent class (0.62-0.65 here, the teacher depends on the thread count).
    # This recipe's margin over it is 0.22-0.30 over seeds 0-4 (1 and 2 threads); with the teacher's outputs
    # shuffled within each batch it falls to 0.06-0.11, with a constant teacher to 0.
    teacher_pred = predict(tiny_teacher.build_model(), graphs).argmax(-1)
    constant = torch.bincount(teacher_pred).max().item() / len(graphs)
    agreement = (predict(result.student, graphs).argmax(-1) == teacher_pred).float().mean().item()
    assert agreement == pytest.approx(result.report.final["agreement"])
    assert agreement >= constant + 0.15, (agreement, constant)


def test_teacher_without_batchnorm_gets_uniform_types_with_a_warning(caplog):
    spec = FeatureSpec(dim=4, encoding="one_hot")
    teacher = dfkd.build_model("gin-2-8", in_channels=4, out_channels=2, batch_norm=False)
    with caplog.at_level("WARNING"):
        gen = PriorGraphGenerator(teacher, spec, 2).build(0)
    assert torch.allclose(gen.type_probs, torch.full((4,), 0.25))
    assert "no BatchNorm running statistics" in caplog.text


def test_node_types_follow_given_frequencies_from_the_option_or_the_checkpoint(tiny_teacher):
    model, spec = tiny_teacher.build_model(), tiny_teacher.feature_spec
    shares = [0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 1.0]  # normalised: 0.75 and 0.25
    by_option = PriorGraphGenerator(model, spec, 2, balance=1, type_frequencies=shares).build(0)
    expected = torch.tensor([0, 0, 0.75, 0, 0, 0, 0.25])
    assert torch.allclose(by_option.type_probs, expected)
    x = by_option.generate(200, seed=1, show_progress=False).x
    assert x[:, [0, 1, 3, 4, 5]].sum() == 0 and abs(float(x[:, 2].mean()) - 0.75) < 0.03
    # The checkpoint's training shares are used when no option is set; the option wins over them.
    stats = tiny_teacher.size_stats
    assert stats.type_frequencies is not None and len(stats.type_frequencies) == spec.dim
    from_stats = PriorGraphGenerator.from_checkpoint(tiny_teacher).build(0)
    assert torch.allclose(from_stats.type_probs, torch.tensor(stats.type_frequencies) / sum(stats.type_frequencies))
    both = PriorGraphGenerator.from_checkpoint(tiny_teacher, type_frequencies=shares).build(0)
    assert torch.allclose(both.type_probs, expected)


def test_column_ranges_by_hand():
    from dfkd.generators.base import column_ranges

    mask = torch.zeros(12, dtype=torch.bool)
    mask[[0, 1, 2, 3, 5, 7, 8, 9, 11]] = True
    assert column_ranges(mask) == "0-3, 5, 7-9, 11"
    assert column_ranges(torch.zeros(3, dtype=torch.bool)) == ""


def test_known_shares_replace_theirs_and_scale_the_rest_by_hand():
    from dfkd.generators.base import with_known_shares

    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    # Column 3 set to 0.5; the other 0.5 follows 0.1 : 0.2 : 0.3.
    assert torch.allclose(with_known_shares({3: 0.5}, probs, 4), torch.tensor([1 / 12, 2 / 12, 3 / 12, 0.5]))
    assert torch.allclose(with_known_shares({0: 0.7, 2: 0.1}, None, 4), torch.tensor([0.7, 0.1, 0.1, 0.1]))
    # Nothing left in the others' columns: the rest is spread evenly over them.
    assert torch.allclose(with_known_shares({0: 0.4}, torch.tensor([1.0, 0, 0]), 3), torch.tensor([0.4, 0.3, 0.3]))
    # Every column named: shares summing to less than 1 are normalised.
    assert torch.allclose(with_known_shares({0: 0.2, 1: 0.2}, probs[:2], 2), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="every column a zero share"):
        with_known_shares({0: 0.0, 1: 0.0}, None, 2)


def test_known_shares_of_a_few_types_on_a_teacher_without_batchnorm(caplog):
    spec = FeatureSpec(dim=5, encoding="one_hot")
    teacher = dfkd.build_model("gin-2-8", in_channels=5, out_channels=2, batch_norm=False)
    with caplog.at_level("INFO"):
        gen = PriorGraphGenerator(teacher, spec, 2, balance=1, type_frequencies={"3": 0.6, 1: 0.2}).build(0)
    assert gen.config.type_frequencies == {3: 0.6, 1: 0.2}
    assert torch.allclose(gen.type_probs, torch.tensor([0.2 / 3, 0.2, 0.2 / 3, 0.6, 0.2 / 3]))
    assert "2 shares as set, the other 20.0% of the nodes uniform" in caplog.text
    x = gen.generate(300, seed=1, show_progress=False).x
    assert abs(float(x[:, 3].mean()) - 0.6) < 0.03
    # The config round-trips (a checkpoint's generator section) with its shares.
    assert PriorGraphGenerator(teacher, spec, 2, **gen.config.to_dict()).config.type_frequencies == {3: 0.6, 1: 0.2}


@pytest.mark.parametrize("shares, message", [
    ({0: 0.7, 1: 0.5}, "summing to at most 1"), ({0: -0.1}, "summing to at most 1"), ({-1: 0.1}, "indices >= 0"),
    ({"carbon": 0.7}, "map feature columns to shares"), ({9: 0.5}, r"names column\(s\) \[9\], but the one-hot node "
                                                                     r"feature has 7 columns"),
])
def test_known_shares_that_are_not_shares_of_columns_are_refused(tiny_teacher, shares, message):
    with pytest.raises(ValueError, match=message):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, type_frequencies=shares).build(0)


def test_given_type_frequencies_of_the_wrong_width_or_sign_are_refused(tiny_teacher):
    with pytest.raises(ValueError, match="3 entries for a 7-wide one-hot node feature"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, type_frequencies=[0.5, 0.3, 0.2]).build(0)
    with pytest.raises(ValueError, match="type_frequencies must be non-negative"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, type_frequencies=[1.0, -0.5] + [0.0] * 5)
    with pytest.raises(ValueError, match="one per node type"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, type_frequencies="carbon")
    degree = dfkd.build_model("gin-2-8", in_channels=5, out_channels=2)
    with pytest.raises(ValueError, match="degree-encoded: drop the option"):
        PriorGraphGenerator(degree, FeatureSpec(dim=5, encoding="degree"), 2, type_frequencies=[1.0] * 5).build(0)


def test_isolation_rank_by_hand():
    """Directions at angles 0, 0.0997, 0.2915 and pi/2 (after L2 normalisation): nearest-other distances
    0.0997, 0.0997, 0.1915 and 1.194, so the lone point ranks first and the third second."""
    points = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, 0.3], [0.0, 2.0]])
    rank = isolation_rank(points, k=1)
    assert rank[3] == 0.0 and rank[2] == 0.25
    assert sorted(rank[:2].tolist()) == [0.5, 0.75]
    # k beyond the other points: the farthest other point (distances 1.414, 1.342, 1.194, 1.414)
    assert isolation_rank(points, k=8)[2] == 0.75


def test_flip_types_by_hand():
    types = torch.tensor([0, 0, 1, 2, 1, 1])
    graph_of = torch.tensor([0, 0, 0, 0, 1, 1])
    inf = float("inf")
    gain = torch.tensor([[-inf, 0.1, 0.5], [-inf, 0.9, 0.2], [0.3, -inf, 0.2], [0.7, 0.8, -inf],
                         [5.0, -inf, 1.0], [4.0, -inf, 3.0]])
    # graph 0 picked, ceil(0.5 * 4) = 2 switches: node 1 (best 0.9 -> type 1) and node 3 (0.8 -> type 1)
    out = flip_types(types, gain, graph_of, torch.tensor([True, False]), 0.5)
    assert out.tolist() == [0, 1, 1, 1, 1, 1]
    # every node of both graphs, but a node whose every other type is ruled out (-inf) keeps its own
    gain[2] = torch.tensor([-inf, -inf, -inf])
    out = flip_types(types, gain, graph_of, torch.tensor([True, True]), 1.0)
    assert out.tolist() == [2, 1, 1, 1, 0, 0]


def test_hotflip_gain_is_the_gradient_of_the_disagreement(tiny_teacher):
    """Central finite differences of the summed KL(teacher || student) in each feature entry give the
    gradient; the gain of type f at node v is its difference from the entry of v's own type."""
    from dfkd.losses import per_graph_disagreement
    from dfkd.nn import call_model

    gen = PriorGraphGenerator.from_checkpoint(tiny_teacher).build(0)
    batch = gen.sample(3, torch.Generator().manual_seed(0))
    teacher = tiny_teacher.build_model().eval().double()
    student = dfkd.build_model("gcn-2-8", in_channels=tiny_teacher.feature_spec.dim, out_channels=2).eval().double()
    batch.x = batch.x.double()
    gain = hotflip_gain(teacher, student, batch)

    def kl(x):
        g = int(batch.num_graphs)
        return per_graph_disagreement(call_model(student, x, batch.edge_index, batch.batch, g),
                                      call_model(teacher, x, batch.edge_index, batch.batch, g)).sum()

    own = batch.x.argmax(-1)
    for v, f in ((0, 1), (5, 0), (int(batch.x.size(0)) - 1, 3)):
        if f == int(own[v]):
            continue
        grad = []
        for col in (f, int(own[v])):
            step = torch.zeros_like(batch.x)
            step[v, col] = 1e-5
            grad.append((kl(batch.x + step) - kl(batch.x - step)) / 2e-5)
        assert gain[v, f].item() == pytest.approx((grad[0] - grad[1]).item(), rel=1e-4, abs=1e-7)
    assert torch.isinf(gain[torch.arange(own.numel()), own]).all()


def test_perturb_moves_node_types_towards_the_students_disagreement(tiny_teacher):
    from dfkd.losses import per_graph_disagreement

    student = dfkd.build_model("gin-2-8", in_channels=tiny_teacher.feature_spec.dim, out_channels=2).train()

    def draw(perturb, attach=True):
        gen = PriorGraphGenerator.from_checkpoint(tiny_teacher, perturb=perturb, perturb_nodes=0.2).build(0)
        if attach:
            gen.attach_student(student)
        return gen, gen.sample(64, torch.Generator().manual_seed(3))

    _, clean = draw(0.0)
    gen, moved = draw(1.0)
    assert student.training  # put back as it was
    assert torch.equal(clean.edge_index, moved.edge_index)  # same selection and structures
    changed = (clean.x.argmax(-1) != moved.x.argmax(-1))
    counts = torch.bincount(moved.batch)
    per_graph = torch.zeros(64, dtype=torch.long).index_add_(0, moved.batch, changed.long())
    assert (per_graph <= (0.2 * counts).ceil().long()).all() and (per_graph > 0).float().mean() > 0.9
    assert (gen.type_probs[moved.x.argmax(-1)] > 0).all()  # only types the prior draws
    # relabelled by the teacher, and the student disagrees with it more than on the clean graphs
    teacher = tiny_teacher.build_model().eval()
    student.eval()
    with torch.no_grad():
        assert torch.equal(moved.y, teacher(moved.x, moved.edge_index, moved.batch).argmax(-1))

        def gap(b):
            return per_graph_disagreement(student(b.x, b.edge_index, b.batch), teacher(b.x, b.edge_index, b.batch))
        assert gap(moved).mean() > gap(clean).mean()
    student.train()
    # nothing to perturb against without a student
    assert torch.equal(draw(1.0, attach=False)[1].x, draw(0.0, attach=False)[1].x)


def test_perturb_options_are_checked(tiny_teacher):
    with pytest.raises(ValueError, match="perturb must be in"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, perturb=1.5)
    with pytest.raises(ValueError, match="perturb_nodes must be in"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, perturb=0.5, perturb_nodes=0.0)
    spec = FeatureSpec(dim=8, encoding="degree")
    stats = GraphSizeStats(min_nodes=5, max_nodes=10, mean_nodes=7.0, mean_degree=2.0, degree_var=2.0)
    with pytest.raises(ValueError, match="perturb switches one-hot node types"):
        PriorGraphGenerator(SizeTeacher(), spec, 2, stats, perturb=0.5).build(0)


def test_diversity_spreads_the_choice_over_the_students_embeddings(tiny_teacher):
    """With diversity=1 (no mining) each class's quota takes the candidates most isolated in the student's
    graph-embedding space, so the chosen graphs lie farther apart there than a random choice (mean pairwise
    distance 0.29 against 0.22 when written)."""
    from dfkd.nn import call_model

    student = dfkd.build_model("gin-2-8", in_channels=tiny_teacher.feature_spec.dim, out_channels=2).eval()

    def spread(diversity):
        gen = PriorGraphGenerator.from_checkpoint(tiny_teacher, diversity=diversity, disagreement=0.0).build(0)
        gen.attach_student(student)
        b = gen.sample(64, torch.Generator().manual_seed(0))
        with torch.no_grad():
            z = call_model(student, b.x, b.edge_index, b.batch, 64, return_embeddings=True).graph_embedding
        z = torch.nn.functional.normalize(z, dim=-1)
        return torch.cdist(z, z).mean()

    assert spread(1.0) > 1.15 * spread(0.0)
    gen = PriorGraphGenerator.from_checkpoint(tiny_teacher, diversity=0.5).build(0)
    gen.attach_student(UniformStudent())
    with pytest.raises(ValueError, match="does not expose embeddings"):
        gen.sample(8, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="diversity must be in"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, diversity=2.0)
