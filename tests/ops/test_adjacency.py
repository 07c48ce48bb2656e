"""Sparse and dense neighbourhood aggregation agree; the automatic choice follows the measured crossover."""
import pytest
import torch

from dfkd.nn import build_model
from dfkd.nn.conv import GCNConv, GINConv, SAGEConv
from dfkd.ops import (DenseBlockAdjacency, SparseAdjacency, build_adjacency, get_propagation, prefers_dense,
                      set_propagation, use_propagation)


def _batch(sizes, density, seed=0, weighted=True):
    """Random graphs of the given sizes (sorted batch vector), each ordered pair an edge with prob. ``density``."""
    gen = torch.Generator().manual_seed(seed)
    edges, batch, offset = [], [], 0
    for g, n in enumerate(sizes):
        pairs = torch.cartesian_prod(torch.arange(n), torch.arange(n)).t()
        pairs = pairs[:, (pairs[0] != pairs[1]) & (torch.rand(pairs.size(1), generator=gen) < density)]
        edges.append(pairs + offset)
        batch += [g] * n
        offset += n
    edge_index = torch.cat(edges, 1)
    weight = torch.rand(edge_index.size(1), generator=gen) if weighted else None
    x = torch.randn(offset, 5, generator=gen)
    return x, edge_index, weight, torch.tensor(batch)


@pytest.mark.parametrize("layer_cls", [GINConv, GCNConv, SAGEConv])
def test_layers_give_the_same_values_and_gradients_on_both_paths(layer_cls):
    torch.manual_seed(0)
    layer = layer_cls(5, 8).eval()
    x, edge_index, weight, batch = _batch([3, 7, 1, 5], 0.6)
    results = []
    for adj_cls in ("sparse", "dense"):
        xs, ws = x.clone().requires_grad_(), weight.clone().requires_grad_()
        adj = build_adjacency(edge_index, ws, batch, 4, mode=adj_cls)
        assert isinstance(adj, SparseAdjacency if adj_cls == "sparse" else DenseBlockAdjacency)
        out = layer(xs, adj)
        grads = torch.autograd.grad(out.square().sum(), [xs, ws])
        results.append((out, *grads))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    # An edge list given straight to the layer is the sparse path.
    assert torch.allclose(layer(x, edge_index, weight), results[0][0], atol=1e-6)


@pytest.mark.parametrize("arch", ["gin-3-16", "gcn-2-16", "sage-2-16"])
def test_models_agree_across_propagation_modes(arch):
    torch.manual_seed(0)
    model = build_model(arch, in_channels=5, out_channels=3).eval()
    x, edge_index, weight, batch = _batch([4, 9, 6], 0.9, seed=1)
    outs = {}
    for mode in ("sparse", "dense", "auto"):
        with use_propagation(mode):
            outs[mode] = model(x, edge_index, batch, weight)
    assert get_propagation() == "auto"  # restored
    assert torch.allclose(outs["sparse"], outs["dense"], atol=1e-5)
    assert torch.allclose(outs["auto"], outs["dense"], atol=1e-6)


def test_duplicate_edges_and_unweighted_graphs_add_up_alike():
    x, edge_index, _, batch = _batch([4, 4], 0.5, seed=2)
    edge_index = torch.cat([edge_index, edge_index[:, :3]], 1)  # three edges twice
    sparse = build_adjacency(edge_index, None, batch, 2, mode="sparse")
    dense = build_adjacency(edge_index, None, batch, 2, mode="dense")
    assert torch.allclose(sparse.propagate(x), dense.propagate(x), atol=1e-6)
    assert torch.equal(sparse.in_degree(x), dense.in_degree(x))
    assert dense.in_degree(x).sum() == edge_index.size(1)


def test_the_automatic_choice_follows_the_measured_crossover():
    # kernels.md: dense is faster from density 0.5 at 10 nodes, 0.1 at 50, 0.05 at 100.
    assert prefers_dense(int(0.5 * 90) * 40, 40, 10) and not prefers_dense(int(0.2 * 90) * 40, 40, 10)
    assert prefers_dense(int(0.1 * 2450) * 8, 8, 50) and not prefers_dense(int(0.05 * 2450) * 8, 8, 50)
    assert prefers_dense(int(0.05 * 9900) * 4, 4, 100)
    assert not prefers_dense(10 ** 9, 10 ** 4, 200)  # blocks beyond the memory cap
    all_pairs = _batch([12, 15, 9], 1.0)
    molecules = _batch([12, 15, 9], 0.15)
    assert isinstance(build_adjacency(*all_pairs[1:], 3), DenseBlockAdjacency)
    assert isinstance(build_adjacency(*molecules[1:], 3), SparseAdjacency)
    x, edge_index, weight, batch = all_pairs
    assert isinstance(build_adjacency(edge_index, weight, batch.flip(0), 3), SparseAdjacency)  # unsorted: sparse


def test_invalid_modes_and_misplaced_weights_are_refused():
    x, edge_index, weight, batch = _batch([3, 3], 1.0)
    with pytest.raises(ValueError, match="propagation mode"):
        set_propagation("fast")
    with pytest.raises(ValueError, match="propagation mode"):
        build_adjacency(edge_index, weight, batch, 2, mode="fast")
    adj = build_adjacency(edge_index, weight, batch, 2)
    with pytest.raises(ValueError, match="prepared adjacency"):
        GINConv(5, 4)(x, adj, weight)
