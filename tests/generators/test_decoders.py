import pytest
import torch

from dfkd.config import FeatureSpec
from dfkd.generators.decoders import GraphDecoder, _pair_position, decode_graphs, soft_degree_features


def test_pair_position_matches_triu_order():
    n = 7
    i, j = torch.triu_indices(n, n, 1)
    assert torch.equal(_pair_position(i, j, n), torch.arange(i.numel()))


def test_soft_degree_features_exact_on_integers_and_differentiable():
    degree = torch.tensor([0.0, 2.0, 7.0], requires_grad=True)
    x = soft_degree_features(degree, 5)
    assert torch.equal(x, torch.eye(5)[[0, 2, 4]])  # clipped at dim - 1
    (x * torch.arange(5.0)).sum().backward()
    assert degree.grad.tolist() == [1.0, 1.0, 0.0]  # d(column index)/d(degree); flat where clipped
    half = soft_degree_features(torch.tensor([1.5]), 4)
    assert torch.allclose(half, torch.tensor([[0.0, 0.5, 0.5, 0.0]]))


def test_decoded_graphs_cut_to_their_node_counts():
    torch.manual_seed(0)
    decoder = GraphDecoder(4, max_nodes=6, feature_dim=3, hidden=[8], edge_bias=5.0)  # nearly complete graphs
    nodes, pairs = decoder(torch.randn(3, 4))
    counts = torch.tensor([2, 6, 4])
    graphs = decode_graphs(nodes, pairs, counts, FeatureSpec(dim=3), generator=torch.Generator().manual_seed(0))
    assert graphs.x.shape == (12, 3) and graphs.pairs.shape == (2, 1 + 15 + 6)
    assert set(graphs.weight.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(graphs.node_graph[graphs.pairs[0]], graphs.node_graph[graphs.pairs[1]])
    batch = graphs.hard_batch(FeatureSpec(dim=3))
    assert batch.num_graphs == 3 and batch.edge_index.size(1) == 2 * int(graphs.weight.sum())
    with pytest.raises(ValueError, match="unknown edge relaxation"):
        decode_graphs(nodes, pairs, counts, FeatureSpec(dim=3), relaxation="magic")
