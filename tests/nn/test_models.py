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


# --- mlp_pe: MLP over node features + structural encodings (GLNN / NOSMOG idea) -------------------

def _pe_batch():
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import erdos_renyi_graph, to_undirected

    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    graphs = []
    for n in (5, 9, 7, 12):
        x = torch.nn.functional.one_hot(torch.randint(0, 4, (n,), generator=gen), 4).float()
        graphs.append(Data(x=x, edge_index=to_undirected(erdos_renyi_graph(n, 0.35)), y=torch.tensor([n % 2])))
    return graphs, Batch.from_data_list(graphs)


def test_mlp_pe_builds_runs_and_exposes_embeddings():
    from dfkd.nn import MLPWithEncodings, forward_batch, structural_encoding_dim

    graphs, batch = _pe_batch()
    model = build_model("mlp_pe-2-16", in_channels=4, out_channels=3)
    assert isinstance(model, MLPWithEncodings) and model.config.short_name == "mlp_pe-2-16"
    assert model.config.in_channels == 4 and model.rw_steps == 8
    assert model.convs[0].in_channels == 4 + structural_encoding_dim() == 4 + 18
    model.train()
    assert forward_batch(model, batch).shape == (4, 3)  # training mode (BatchNorm on the batch)
    model.eval()
    out = forward_batch(model, batch, return_embeddings=True)
    assert isinstance(out, ModelOutput) and out.logits.shape == (4, 3)
    assert len(out.node_embeddings) == 2 and out.node_embeddings[-1].shape == (batch.num_nodes, 16)
    assert out.graph_embedding.shape == (4, 4 + 18 + 2 * 16)
    assert torch.allclose(out.logits, model(batch.x, batch.edge_index, batch.batch))
    # Graph-less inference on precomputed encodings gives the same logits.
    features = model.encode(batch.x, batch.edge_index, batch.batch)
    assert torch.allclose(model.forward_features(features, batch.batch, 4), out.logits)
    # Unit edge weights change nothing; soft ones get gradients; batch=None means one graph.
    ones = torch.ones(batch.edge_index.size(1))
    assert torch.allclose(model(batch.x, batch.edge_index, batch.batch, edge_weight=ones), out.logits, atol=1e-6)
    w = torch.full((batch.edge_index.size(1),), 0.5, requires_grad=True)
    model(batch.x, batch.edge_index, batch.batch, edge_weight=w).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
    single = graphs[1]
    assert torch.allclose(model(single.x, single.edge_index), out.logits[1:2], atol=1e-5)


def test_mlp_pe_is_permutation_invariant():
    graphs, _ = _pe_batch()
    model = build_model("mlp_pe-2-16", in_channels=4, out_channels=2).eval()
    g = graphs[3]
    perm = torch.randperm(g.num_nodes, generator=torch.Generator().manual_seed(3))  # new node k = old perm[k]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(g.num_nodes)
    before = model(g.x, g.edge_index)
    after = model(g.x[perm], inv[g.edge_index])
    assert torch.allclose(before, after, atol=1e-5)


def test_mlp_pe_checkpoint_round_trip(tmp_path):
    from dfkd import load_checkpoint, load_model, save_model

    _, batch = _pe_batch()
    model = build_model("mlp_pe-2-16", in_channels=4, out_channels=2)
    model.train()
    model(batch.x, batch.edge_index, batch.batch)  # move the BatchNorm running stats off their init
    model.eval()
    path = str(tmp_path / "mlp_pe.pt")
    save_model(path, model)
    assert load_checkpoint(path).model_config == model.config
    rebuilt = load_model(path)
    assert type(rebuilt) is type(model) and not rebuilt.training
    assert torch.equal(rebuilt(batch.x, batch.edge_index, batch.batch), model(batch.x, batch.edge_index, batch.batch))


def test_mlp_pe_distils_as_student(tiny_teacher):
    import dfkd
    from dfkd.nn import MLPWithEncodings

    result = dfkd.distill_student(tiny_teacher, "mlp_pe-2-16", generator="prior", num_graphs=32,
                                  config=dfkd.DistillConfig(epochs=2), show_progress=False)
    assert isinstance(result.student, MLPWithEncodings) and result.checkpoint.model_config.arch == "mlp_pe"
    assert result.report.epochs_run == 2 and len(result.report.history) == 2
    assert all(torch.isfinite(torch.tensor(float(h["loss"]))) for h in result.report.history if "loss" in h)
    rebuilt = result.checkpoint.build_model()
    _, batch = _pe_batch()
    x = torch.zeros(batch.num_nodes, tiny_teacher.model_config.in_channels)
    x[:, 0] = 1.0
    assert torch.allclose(rebuilt(x, batch.edge_index, batch.batch), result.student(x, batch.edge_index, batch.batch))
