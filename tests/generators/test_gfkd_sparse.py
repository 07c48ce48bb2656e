"""GFKD on sparse random candidate pairs (``candidates="random"``) for graphs too large for all O(n²) pairs."""
import pytest
import torch

from dfkd.checkpoint import Checkpoint
from dfkd.config import FeatureSpec, GraphSizeStats
from dfkd.generators import BernoulliGraphGenerator
from dfkd.generators.gfkd import GFKDConfig
from dfkd.generators.structure import (
    SPARSE_NODES, node_to_graph, random_candidate_pairs, sample_structure, sparse_erdos_renyi,
)
from dfkd.nn import build_model

SPEC = FeatureSpec(encoding="one_hot", dim=7)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return Checkpoint.from_model(build_model("gin-2-16", in_channels=7, out_channels=2).eval(), feature_spec=SPEC,
                                 label_values=[0, 1])


def _check_pairs(pairs, pair_graph, counts):
    graph_of = node_to_graph(counts)
    assert torch.all(pairs[0] < pairs[1])
    assert torch.equal(graph_of[pairs[0]], graph_of[pairs[1]]) and torch.equal(pair_graph, graph_of[pairs[0]])
    n = int(counts.sum())
    assert torch.unique(pairs[0] * n + pairs[1]).numel() == pairs.size(1)


def test_random_candidate_pairs_are_sparse_valid_and_include_given_pairs():
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([1, 2, 6, 40, 3000])
    include = torch.tensor([[0 + 1, 3 + 0], [0 + 2, 3 + 5]])  # pairs (1, 2) and (3, 8): graphs 1 and 2
    pairs, pair_graph = random_candidate_pairs(counts, 4, gen, include=include)
    _check_pairs(pairs, pair_graph, counts)
    keys = set((pairs[0] * 10_000 + pairs[1]).tolist())
    assert {1 * 10_000 + 2, 3 * 10_000 + 8} <= keys
    per_graph = torch.bincount(pair_graph, minlength=5)
    assert per_graph[0] == 0 and per_graph[1] == 1 and 12 <= per_graph[2] <= 15  # 4 of the 5 partners per node
    assert 3000 * 4 * 0.95 < per_graph[4] <= 3000 * 4  # ~k per node, not n(n-1)/2 = 4.5M
    with pytest.raises(ValueError, match="candidates_per_node"):
        random_candidate_pairs(counts, 0, gen)


def test_sparse_erdos_renyi_has_the_expected_edge_count():
    gen = torch.Generator().manual_seed(1)
    counts = torch.tensor([2000, 3000])
    pairs = sparse_erdos_renyi(counts, torch.tensor([2.0 / 1999, 4.0 / 2999]), gen)
    _check_pairs(pairs, node_to_graph(counts)[pairs[0]], counts)
    edges = torch.bincount(node_to_graph(counts)[pairs[0]], minlength=2).float()
    assert torch.allclose(edges, torch.tensor([2000.0, 6000.0]), rtol=0.1)  # n * d / 2
    # Large graphs take the sparse path in sample_structure too (dispersion >= 1).
    assert sample_structure(torch.tensor([SPARSE_NODES + 200]), 3.0, 2.0, gen).size(1) < 3 * (SPARSE_NODES + 200)


def test_auto_switches_to_random_candidates_above_the_threshold(teacher):
    small = BernoulliGraphGenerator.from_checkpoint(teacher, min_nodes=10, max_nodes=SPARSE_NODES)
    large = BernoulliGraphGenerator.from_checkpoint(teacher, min_nodes=10, max_nodes=SPARSE_NODES + 1)
    assert not small.sparse_candidates() and large.sparse_candidates()
    forced = BernoulliGraphGenerator.from_checkpoint(teacher, min_nodes=5, max_nodes=9, candidates="random")
    assert forced.sparse_candidates()
    with pytest.raises(ValueError, match="unknown candidates 'knn'"):
        GFKDConfig(candidates="knn")


@pytest.mark.parametrize("degree_law", [False, True])
def test_random_candidates_give_valid_graphs_and_refresh_rejected_pairs(teacher, check_valid_graphs, degree_law):
    stats = GraphSizeStats(min_nodes=10, max_nodes=20, mean_nodes=15.0, mean_degree=2.5,
                           degree_var=1.0) if degree_law else None
    ckpt = Checkpoint.from_model(build_model("gin-2-16", in_channels=7, out_channels=2).eval(), feature_spec=SPEC,
                                 label_values=[0, 1], size_stats=stats)
    gen = BernoulliGraphGenerator.from_checkpoint(
        ckpt, iterations=6, min_nodes=10, max_nodes=20, candidates="random", candidates_per_node=3,
        candidate_refresh_every=2, candidate_drop=1e-3, structure_lr=0.5)
    graphs = gen.generate(8, seed=0, show_progress=False)
    check_valid_graphs(graphs, SPEC, 10, 20)
    meta = graphs.meta
    assert meta["candidates"] == "random" and meta["candidates_refreshed"] > 0
    d = graphs.distribution
    counts = graphs.num_nodes
    _check_pairs(d["pair_index"], node_to_graph(counts)[d["pair_index"][0]], counts)
    assert d["pair_index"].size(1) == meta["candidate_pairs"] < int((counts * (counts - 1) // 2).sum())
    # Expected degree of the learnt structure stays in the teacher's range (not the density of all pairs).
    degree = 2 * torch.sigmoid(d["structure_logits"]).sum() / counts.sum()
    assert 0.5 < degree < 8
    again = graphs.resample(torch.Generator().manual_seed(1))
    check_valid_graphs(again, SPEC, 10, 20)


def test_a_thousand_node_graph_generates_on_random_candidates(teacher, check_valid_graphs):
    # The fixed fallback law (mean degree 2): an untrained teacher's statistics point nowhere in particular.
    gen = BernoulliGraphGenerator.from_checkpoint(teacher, iterations=2, min_nodes=1000, max_nodes=1200,
                                                  structure="checkpoint")
    graphs = gen.generate(2, seed=0, show_progress=False)
    assert graphs.meta["candidates"] == "random"
    assert graphs.meta["candidate_pairs"] < 2 * 1200 * (16 + 2)  # O(n (k + degree)), all pairs would be ~1.2M
    check_valid_graphs(graphs, SPEC, 1000, 1200)
