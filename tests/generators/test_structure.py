import math

import pytest
import torch

from torch_geometric.utils import to_dense_adj

from dfkd.generators.structure import (
    add_hubs, clique_unions, configuration_model, conway_maxwell_poisson, node_to_graph, sample_node_counts,
    sample_structure, undirected,
)


def _moments(law):
    k = torch.arange(law.numel(), dtype=torch.float64)
    law = law.double()
    mean = float((law * k).sum())
    return mean, float((law * (k - mean) ** 2).sum())


def test_conway_maxwell_poisson_is_poisson_at_dispersion_one():
    law = conway_maxwell_poisson(2.5, 1.0, 40)
    poisson = torch.tensor([math.exp(-2.5) * 2.5 ** k / math.factorial(k) for k in range(41)])
    assert torch.allclose(law, poisson.float(), atol=1e-4)


@pytest.mark.parametrize("mean,dispersion", [(2.2, 0.25), (3.7, 0.35), (2.0, 0.66)])
def test_conway_maxwell_poisson_matches_mean_and_dispersion(mean, dispersion):
    law = conway_maxwell_poisson(mean, dispersion, 60)
    assert law.sum().item() == pytest.approx(1.0, abs=1e-5)
    got_mean, got_var = _moments(law)
    assert got_mean == pytest.approx(mean, rel=1e-3)
    assert got_var / got_mean == pytest.approx(dispersion, rel=1e-2)
    with pytest.raises(ValueError, match="dispersion <= 1"):
        conway_maxwell_poisson(mean, 1.5, 60)


def test_configuration_model_wires_the_wanted_degrees_inside_each_graph():
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([6, 1, 9, 12])
    graph_of = node_to_graph(counts)
    wanted = torch.minimum(torch.randint(0, 4, (int(counts.sum()),), generator=gen), (counts - 1)[graph_of])
    pairs = configuration_model(counts, wanted, gen)
    assert torch.all(pairs[0] < pairs[1]), "self-loop or unordered pair"
    assert torch.unique(pairs, dim=1).size(1) == pairs.size(1), "repeated pair"
    assert torch.equal(graph_of[pairs[0]], graph_of[pairs[1]]), "edge between graphs"
    got = torch.bincount(undirected(pairs)[0], minlength=graph_of.numel())
    assert torch.all(got <= wanted)  # erased stubs only ever lower a degree
    assert got.sum() >= 0.8 * wanted.sum()


@pytest.mark.parametrize("dispersion", [0.3, 1.0, 5.0])
def test_sample_structure_has_the_asked_degree_moments(dispersion):
    gen = torch.Generator().manual_seed(1)
    counts = sample_node_counts(400, 15, 35, gen)
    pairs = sample_structure(counts, 3.0, dispersion, gen)
    degree = torch.bincount(undirected(pairs)[0], minlength=int(counts.sum())).float()
    # The erased configuration model loses a few percent of the edges.
    assert degree.mean().item() == pytest.approx(3.0, rel=0.1)
    assert (degree.var() / degree.mean()).item() == pytest.approx(dispersion, rel=0.25)


def test_sample_structure_rejects_bad_laws():
    with pytest.raises(ValueError, match="dispersion > 0"):
        sample_structure(torch.tensor([5]), 2.0, 0.0, torch.Generator())


def _transitivity(pairs, counts):
    """``[G]`` closed share of every graph's wedges (paths of two edges): 3 · triangles / wedges."""
    adj = to_dense_adj(undirected(pairs), node_to_graph(counts), max_num_nodes=int(counts.max()))
    degree = adj.sum(-1)
    return torch.einsum("gij,gjk,gki->g", adj, adj, adj) / (degree * (degree - 1)).sum(-1).clamp(min=1)


@pytest.mark.parametrize("mean", [2.0, 6.0])
def test_clique_unions_keep_the_mean_degree_and_close_triangles(mean):
    gen = torch.Generator().manual_seed(0)
    counts = sample_node_counts(300, 10, 30, gen)
    graph_of = node_to_graph(counts)
    pairs = clique_unions(counts, mean, gen)
    assert torch.all(pairs[0] < pairs[1]) and torch.unique(pairs, dim=1).size(1) == pairs.size(1)
    assert torch.equal(graph_of[pairs[0]], graph_of[pairs[1]]), "edge between graphs"
    degree = torch.bincount(undirected(pairs)[0], minlength=graph_of.numel()).float()
    assert degree.mean().item() == pytest.approx(mean, rel=0.1)  # the overlap correction
    # Erdős–Rényi at the same density closes about p = mean / (n - 1) of its wedges; clique unions far more.
    er = sample_structure(counts, mean, 1.0, gen)
    assert _transitivity(pairs, counts).mean() > 1.5 * _transitivity(er, counts).mean()
    assert clique_unions(counts, 0.0, gen).size(1) == 0
    with pytest.raises(ValueError, match="mean_degree >= 0"):
        clique_unions(counts, -1.0, gen)


def test_add_hubs_joins_each_chosen_graphs_first_node_to_all_others():
    # Graphs of 3, 4 and 2 nodes (nodes 0-2, 3-6, 7-8); the first has edge (1, 2), the second (3, 4) and (5, 6).
    counts = torch.tensor([3, 4, 2])
    pairs = torch.tensor([[1, 3, 5], [2, 4, 6]])
    out = add_hubs(pairs, counts, torch.tensor([True, True, False]))
    # By hand: hub 0 gains (0, 1), (0, 2); hub 3 gains (3, 5), (3, 6), its (3, 4) already there; graph 3 untouched.
    assert out.tolist() == [[0, 0, 1, 3, 3, 3, 5], [1, 2, 2, 4, 5, 6, 6]]
    assert torch.equal(add_hubs(pairs, counts, torch.zeros(3, dtype=torch.bool)), pairs)
    one = add_hubs(torch.zeros(2, 0, dtype=torch.long), torch.tensor([1]), torch.tensor([True]))
    assert one.size(1) == 0  # a one-node graph has nothing to join
