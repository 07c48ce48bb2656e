import functools

import pytest
import torch
from torch import nn
from torch_geometric.utils import to_undirected

import dfkd
from dfkd.config import FeatureSpec
from dfkd.generators import PriorGraphGenerator
from dfkd.generators import prior as prior_module
from dfkd.generators.structure import node_to_graph, sample_structure, undirected
from dfkd.generators.type_pairs import (
    GibbsNoise, TypePairModel, _pack_couplings, fit_type_pairs, gibbs_types, same_type_share,
)


def _path(n: int) -> torch.Tensor:
    return to_undirected(torch.stack([torch.arange(n - 1), torch.arange(1, n)]))


def test_one_sweep_draws_each_node_from_its_conditional_given_its_neighbours():
    """Star 0-1, 0-2; types (1, 0, 0) to start; every node updated with zero Gumbel noise: the centre scores
    h + Θ[:, 0] · 2 = (10, -10), a leaf h + Θ[:, 1] = (-5, 5), so the sweep gives (0, 1, 1)."""
    edge_index = to_undirected(torch.tensor([[0, 0], [1, 2]]))
    theta = torch.tensor([[5.0, -5.0], [-5.0, 5.0]])
    gumbel = torch.zeros(2, 3, 2)
    gumbel[0, 0, 1] = 1.0  # the initial draw: centre of type 1, leaves of type 0 (argmax ties go to type 0)
    noise = GibbsNoise(gumbel, torch.zeros(1, 3))  # update uniforms 0 < 0.5: every node redrawn
    assert gibbs_types(torch.zeros(2), theta, edge_index, noise).tolist() == [0, 1, 1]
    no_update = GibbsNoise(gumbel, torch.ones(1, 3))
    assert gibbs_types(torch.zeros(2), theta, edge_index, no_update).tolist() == [1, 0, 0]


def test_couplings_set_how_often_neighbours_share_a_type():
    edge_index, gen = _path(4000), torch.Generator().manual_seed(0)
    h = torch.zeros(2)
    like = TypePairModel(h, torch.tensor([[2.0, -2.0], [-2.0, 2.0]])).sample(edge_index, 4000, gen)
    unlike = TypePairModel(h, torch.tensor([[-2.0, 2.0], [2.0, -2.0]])).sample(edge_index, 4000, gen)
    independent = TypePairModel(h, torch.zeros(2, 2)).sample(edge_index, 4000, gen)
    assert same_type_share(like, edge_index) > 0.85 and same_type_share(unlike, edge_index) < 0.15
    assert abs(same_type_share(independent, edge_index) - 0.5) < 0.05
    # without couplings the types are independent draws from softmax(h)
    skewed = TypePairModel(torch.tensor([0.0, 1.0, 2.0]), torch.zeros(3, 3)).sample(edge_index, 4000, gen)
    share = torch.bincount(skewed, minlength=3).float() / 4000
    assert torch.allclose(share, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), atol=0.03)


def test_couplings_are_symmetric_and_only_among_the_kept_types():
    # the upper triangle of [[1, 2], [2, 3]] over types 3 and 1
    theta = _pack_couplings(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3, 1]), 4)
    expected = torch.zeros(4, 4)
    expected[3, 3], expected[1, 1], expected[3, 1], expected[1, 3] = 1.0, 3.0, 2.0, 2.0
    assert torch.equal(theta, expected)


class NeighbourTeacher(nn.Module):
    """``BatchNorm(W [x_i, Σ_j x_j])`` pooled: its first BatchNorm layer sees each node's type and its
    neighbours', so its variance depends on how types pair across edges."""

    def __init__(self, dim: int):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(2 * dim, 16)
        self.norm = nn.BatchNorm1d(16)
        self.head = nn.Linear(16, 2)

    def forward(self, x, edge_index, batch):
        agg = torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]])
        h = self.norm(self.lin(torch.cat([x, agg], -1)))
        return self.head(torch.zeros(int(batch.max()) + 1, 16).index_add_(0, batch, h))


def _structure(num_graphs: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(10, 31, (num_graphs,), generator=gen)
    return undirected(sample_structure(counts, 2.2, 0.3, gen)), counts


def test_fit_recovers_how_types_pair_from_the_first_batchnorm_layer():
    """The teacher's running statistics are those of types from a known model with like-type pairs (89% of edges);
    fitted on other structures from the independent marginal, the model finds the pairing back."""
    teacher = NeighbourTeacher(2).eval()
    truth = TypePairModel(torch.tensor([0.3, 0.0]), torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    edges, counts = _structure(200, 0)
    types = truth.sample(edges, int(counts.sum()), torch.Generator().manual_seed(1))
    x = torch.eye(2)[types]
    with torch.no_grad():
        z = teacher.lin(torch.cat([x, torch.zeros_like(x).index_add_(0, edges[1], x[edges[0]])], -1))
    teacher.norm.running_mean.copy_(z.mean(0))
    teacher.norm.running_var.copy_(z.var(0, unbiased=False))
    true_same = same_type_share(types, edges)
    marginal = torch.bincount(types, minlength=2).float() / types.numel()

    edges, counts = _structure(32, 2)
    model, before, after = fit_type_pairs(teacher, marginal, edges, node_to_graph(counts), counts.numel(),
                                          torch.Generator().manual_seed(3), population=16, iterations=10)
    drawn = model.sample(edges, int(counts.sum()), torch.Generator().manual_seed(4))
    independent = model.independent().sample(edges, int(counts.sum()), torch.Generator().manual_seed(4))
    assert after < 0.5 * before  # measured 0.49 -> 0.07
    # measured: 0.92 fitted, 0.89 true, 0.47 independent
    assert abs(same_type_share(drawn, edges) - true_same) < 0.08 < true_same - same_type_share(independent, edges)


def test_fit_needs_batchnorm_statistics():
    teacher = dfkd.build_model("gin-2-8", in_channels=3, out_channels=2, batch_norm=False)
    edges, counts = _structure(4, 0)
    assert fit_type_pairs(teacher, torch.full((3,), 1 / 3), edges, node_to_graph(counts), 4,
                          torch.Generator()) is None


@pytest.fixture
def small_fit(monkeypatch):
    """The generator's fit on a smaller search budget: the search itself is tested above."""
    monkeypatch.setattr(prior_module, "fit_type_pairs", functools.partial(fit_type_pairs, population=16, iterations=4))


def test_prior_generator_draws_paired_types_and_keeps_them_on_resume(tiny_teacher, caplog, small_fit):
    stats = tiny_teacher.size_stats.replace(type_frequencies=None)
    model, spec = tiny_teacher.build_model(), tiny_teacher.feature_spec
    with caplog.at_level("INFO"):
        gen = PriorGraphGenerator(model, spec, 2, stats, balance=1, type_pairs=True).build(0)
    assert gen.type_pairs is not None and "type pairs" in caplog.text and "edges join one type" in caplog.text
    assert torch.allclose(gen.type_pairs.theta, gen.type_pairs.theta.t())
    again = PriorGraphGenerator(model, spec, 2, stats, balance=1, type_pairs=True).build(0)
    assert torch.equal(gen.type_pairs.theta, again.type_pairs.theta)  # deterministic with the seed

    restored = PriorGraphGenerator(model, spec, 2, stats, balance=1, type_pairs=True)
    restored.load_state_dict(gen.state_dict())
    restored._built = True
    first, second = (g.sample(16, torch.Generator().manual_seed(5)) for g in (gen, restored))
    assert torch.equal(first.x, second.x) and torch.equal(first.edge_index, second.edge_index)
    plain = PriorGraphGenerator(model, spec, 2, stats, balance=1).build(0)
    assert plain.type_pairs is None and plain.state_dict()["type_pairs"] is None
    plain.load_state_dict({"type_probs": plain.type_probs})  # a state saved before the option existed
    assert plain.type_pairs is None


def test_prior_generator_type_pairs_fall_back_without_batchnorm_and_refuse_type_spread(tiny_teacher, caplog, small_fit):
    teacher = dfkd.build_model("gin-2-8", in_channels=4, out_channels=2, batch_norm=False)
    with caplog.at_level("INFO"):
        gen = PriorGraphGenerator(teacher, FeatureSpec(dim=4, encoding="one_hot"), 2, type_pairs=True).build(0)
    assert gen.type_pairs is None and "independent (the teacher has no BatchNorm statistics" in caplog.text
    assert gen.sample(4, torch.Generator()).x.shape[1] == 4
    with pytest.raises(ValueError, match="type_pairs and type_spread"):
        PriorGraphGenerator.from_checkpoint(tiny_teacher, type_pairs=True, type_spread=1.0)
