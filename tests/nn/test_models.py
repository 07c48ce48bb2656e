import pytest
import torch

from dfkd.config import ModelConfig
from dfkd.nn import GCNConv, GINConv, SAGEConv, build_model, list_models, parse_arch
from dfkd.nn.models import ModelOutput


@pytest.mark.parametrize("conv", [GINConv(4, 8), GCNConv(4, 8), SAGEConv(4, 8)])
def test_unit_edge_weights_equal_unweighted(conv, toy_graph):
    x, edge_index, _ = toy_graph
    conv.eval()
    ones = torch.ones(edge_index.size(1))
    assert torch.allclose(conv(x, edge_index), conv(x, edge_index, ones), atol=1e-6)


@pytest.mark.parametrize("arch", ["gin", "gcn", "sage", "mlp"])
def test_models_unit_weights_and_shapes(arch, toy_graph):
    x, edge_index, batch = toy_graph
    model = build_model(f"{arch}-3-16", in_channels=4, out_channels=3).eval()
    plain = model(x, edge_index, batch)
    weighted = model(x, edge_index, batch, edge_weight=torch.ones(edge_index.size(1)))
    assert plain.shape == (2, 3)
    assert torch.allclose(plain, weighted, atol=1e-6)


@pytest.mark.parametrize("arch", ["gin", "gcn", "sage"])
def test_zero_edge_weights_equal_no_edges(arch, toy_graph):
    x, edge_index, batch = toy_graph
    model = build_model(f"{arch}-2-8", in_channels=4, out_channels=2).eval()
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert torch.allclose(model(x, edge_index, batch, edge_weight=torch.zeros(edge_index.size(1))),
                          model(x, empty, batch), atol=1e-6)


@pytest.mark.parametrize("arch", ["gin", "gcn", "sage"])
def test_edge_weight_gradient(arch, toy_graph):
    x, edge_index, batch = toy_graph
    model = build_model(f"{arch}-2-8", in_channels=4, out_channels=2).eval()
    w = torch.full((edge_index.size(1),), 0.5, requires_grad=True)
    model(x, edge_index, batch, edge_weight=w).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_gin_aggregation_by_hand():
    conv = GINConv(1, 1, batch_norm=False)
    with torch.no_grad():
        conv.mlp[0].weight.fill_(1.0), conv.mlp[0].bias.zero_()
        conv.mlp[3].weight.fill_(1.0), conv.mlp[3].bias.zero_()
    x = torch.tensor([[1.0], [2.0], [4.0]])
    edge_index = torch.tensor([[1, 2], [0, 0]])  # 1 -> 0, 2 -> 0
    out = conv(x, edge_index, torch.tensor([0.5, 0.25]))
    # node 0: 1 + 0.5 * 2 + 0.25 * 4 = 3; nodes 1, 2 receive nothing.
    assert torch.allclose(out.view(-1), torch.tensor([3.0, 2.0, 4.0]))


def test_embeddings_exposed_in_one_pass(toy_graph):
    x, edge_index, batch = toy_graph
    model = build_model("gin-3-16", in_channels=4, out_channels=2).eval()
    out = model(x, edge_index, batch, return_embeddings=True)
    assert isinstance(out, ModelOutput)
    assert len(out.node_embeddings) == 3 and out.node_embeddings[-1].shape == (6, 16)
    assert out.graph_embedding.shape == (2, 4 + 3 * 16)  # jk=cat pools input + every layer
    assert torch.allclose(out.logits, model(x, edge_index, batch))


def test_registry_and_parse():
    assert set(list_models()) >= {"gin", "gcn", "sage", "mlp"}
    assert parse_arch("GIN-5-64") == {"arch": "gin", "num_layers": 5, "hidden": 64}
    model = build_model("gin", in_channels=7, out_channels=2, num_layers=5, hidden=64)
    assert model.config.short_name == "gin-5-64"
    with pytest.raises(ValueError, match="no architecture .transformer. registered"):
        build_model("transformer-2-8", in_channels=1, out_channels=2)
    with pytest.raises(ValueError, match="cannot parse"):
        parse_arch("gin_5x64!")
    with pytest.raises(ValueError, match="unknown pool"):
        ModelConfig(pool="median")


def test_config_round_trip():
    config = ModelConfig(arch="gcn", in_channels=3, out_channels=4, num_layers=2, hidden=8, residual=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        ModelConfig.from_dict({**config.to_dict(), "bogus": 1})
