import math

import pytest
import torch

from dfkd.nn import degree_encoding, random_walk_pe, structural_encoding, structural_encoding_dim


def _undirected(pairs, offset=0):
    src = [a + offset for a, b in pairs] + [b + offset for a, b in pairs]
    dst = [b + offset for a, b in pairs] + [a + offset for a, b in pairs]
    return torch.tensor([src, dst], dtype=torch.long).view(2, -1)


TRIANGLE = [(0, 1), (1, 2), (0, 2)]
PATH3 = [(0, 1), (1, 2)]


def test_rwpe_triangle():
    pe = random_walk_pe(_undirected(TRIANGLE), torch.zeros(3, dtype=torch.long), steps=3)
    # P = (J - I) / 2: P_ii = 0, (P^2)_ii = 1/2, (P^3)_ii = 1/4.
    assert torch.allclose(pe, torch.tensor([[0.0, 0.5, 0.25]] * 3), atol=1e-6)


def test_rwpe_path_of_three():
    pe = random_walk_pe(_undirected(PATH3), steps=4)
    # Ends: 0, 1/2, 0, 1/2; middle: 0, 1, 0, 1 (every 2-walk from the middle returns).
    expected = torch.tensor([[0.0, 0.5, 0.0, 0.5], [0.0, 1.0, 0.0, 1.0], [0.0, 0.5, 0.0, 0.5]])
    assert torch.allclose(pe, expected, atol=1e-6)


def test_isolated_node_gives_zeros():
    # Path 0-1 plus an isolated node 2; and a graph with no edges at all.
    pe = random_walk_pe(_undirected([(0, 1)]), torch.zeros(3, dtype=torch.long), steps=4)
    assert torch.isfinite(pe).all()
    assert torch.equal(pe[2], torch.zeros(4))
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    empty = random_walk_pe(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, dtype=torch.long), steps=3)
    assert torch.equal(empty, torch.zeros(2, 3))
    enc = structural_encoding(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    assert torch.isfinite(enc).all() and enc.shape == (2, structural_encoding_dim())


def test_batch_equals_each_graph_alone():
    tri, path = _undirected(TRIANGLE), _undirected(PATH3)
    edge_index = torch.cat([tri, _undirected(PATH3, offset=3), _undirected([(0, 1)], offset=6)], dim=1)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])  # graph 2: edge 6-7, isolated 8 and 9
    together = random_walk_pe(edge_index, batch, steps=5)
    alone = [random_walk_pe(tri, steps=5), random_walk_pe(path, steps=5),
             random_walk_pe(_undirected([(0, 1)]), torch.zeros(4, dtype=torch.long), steps=5)]
    assert torch.allclose(together, torch.cat(alone), atol=1e-6)
    # Chunked path (tiny block budget) and an unsorted batch vector give the same result.
    assert torch.allclose(random_walk_pe(edge_index, batch, steps=5, max_block=20), together, atol=1e-6)
    perm = torch.tensor([9, 3, 0, 7, 4, 1, 8, 2, 6, 5])  # new node k is old node perm[k]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(10)
    shuffled = random_walk_pe(inv[edge_index], batch[perm], steps=5)
    assert torch.allclose(shuffled, together[perm], atol=1e-6)


def test_rwpe_matches_pyg_transform():
    transforms = pytest.importorskip("torch_geometric.transforms")
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import erdos_renyi_graph

    torch.manual_seed(0)
    graphs = [Data(edge_index=erdos_renyi_graph(n, 0.3), num_nodes=n) for n in (5, 12, 9, 17)]
    batch = Batch.from_data_list(graphs)
    ours = random_walk_pe(batch.edge_index, batch.batch, steps=6)
    ref = torch.cat([transforms.AddRandomWalkPE(6, attr_name="pe")(g.clone()).pe for g in graphs])
    assert torch.allclose(ours, ref, atol=1e-5)


def test_edge_weights():
    edge_index = _undirected(TRIANGLE)
    batch = torch.zeros(3, dtype=torch.long)
    ones = torch.ones(edge_index.size(1))
    assert torch.allclose(structural_encoding(edge_index, batch, edge_weight=ones),
                          structural_encoding(edge_index, batch), atol=1e-6)
    # Zero weights equal no edges.
    zeros = torch.zeros(edge_index.size(1))
    assert torch.allclose(structural_encoding(edge_index, batch, edge_weight=zeros),
                          structural_encoding(torch.zeros(2, 0, dtype=torch.long), batch), atol=1e-6)
    # Differentiable in soft weights.
    w = torch.full((edge_index.size(1),), 0.5, requires_grad=True)
    w2 = torch.tensor([1.0, 0.5, 0.25, 1.0, 0.5, 0.25], requires_grad=True)
    structural_encoding(edge_index, batch, edge_weight=w2).sum().backward()
    assert w2.grad is not None and torch.isfinite(w2.grad).all() and w2.grad.abs().sum() > 0
    # Uniform weights do not change the walk probabilities.
    assert torch.allclose(random_walk_pe(edge_index, batch, edge_weight=w.detach()), random_walk_pe(edge_index, batch))


def test_degree_encoding_values():
    # Star with centre 0 and 3 leaves, plus an isolated node 4.
    edge_index = _undirected([(0, 1), (0, 2), (0, 3)])
    enc = degree_encoding(edge_index, 5, max_degree=2)
    assert enc.shape == (5, 4)
    assert torch.allclose(enc[:, 0], torch.tensor([math.log(4), math.log(2), math.log(2), math.log(2), 0.0]))
    expected_onehot = torch.tensor([[0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]], dtype=torch.float)
    assert torch.equal(enc[:, 1:], expected_onehot)  # degree 3 clipped to 2
    # Soft degree 1.25 splits between columns 1 and 2.
    soft = degree_encoding(torch.tensor([[1, 2], [0, 0]]), 3, edge_weight=torch.tensor([1.0, 0.25]), max_degree=4)
    assert torch.allclose(soft[0], torch.tensor([math.log(2.25), 0.0, 0.75, 0.25, 0.0, 0.0]))


def test_structural_encoding_layout():
    edge_index = _undirected(TRIANGLE)
    batch = torch.zeros(3, dtype=torch.long)
    enc = structural_encoding(edge_index, batch, rw_steps=3, max_degree=4)
    assert enc.shape == (3, structural_encoding_dim(3, 4)) == (3, 1 + 5 + 3)
    assert torch.allclose(enc[0], torch.tensor([math.log(3), 0, 0, 1, 0, 0, 0.0, 0.5, 0.25]), atol=1e-6)
