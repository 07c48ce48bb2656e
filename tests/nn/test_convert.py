import pytest
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv, global_add_pool, global_max_pool, global_mean_pool

import dfkd
from dfkd.distill import build_student
from dfkd.distill.inherit import why_not_inheritable
from dfkd.nn.convert import zoo_equivalent

POOLS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


class PygStack(nn.Module):
    """A user's plain PyG classifier: GIN, GraphSAGE or GCN layers, [BatchNorm], ReLU, a readout, a linear head."""

    def __init__(self, conv="gin", norm=True, pool="sum", jk="last", in_channels=7, hidden=8, layers=2, act=torch.relu):
        super().__init__()
        widths = [in_channels] + [hidden] * layers

        def make(i, o):
            if conv == "sage":
                return SAGEConv(i, o)
            if conv == "gcn":
                return GCNConv(i, o)
            if conv == "gat":
                return GATConv(i, o)
            inner = [nn.Linear(i, o), nn.BatchNorm1d(o)] if norm else [nn.Linear(i, o)]
            return GINConv(nn.Sequential(*inner, nn.ReLU(), nn.Linear(o, o)), train_eps=True)

        self.convs = nn.ModuleList([make(i, o) for i, o in zip(widths[:-1], widths[1:])])
        self.norms = nn.ModuleList([nn.BatchNorm1d(hidden) for _ in range(layers)] if norm else [])
        self.pool, self.jk, self.act = POOLS[pool], jk, act
        self.head = nn.Linear(in_channels + layers * hidden if jk == "cat" else hidden, 2)

    def forward(self, x, edge_index, batch):
        pooled = [self.pool(x, batch)]
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = self.act(self.norms[i](x) if len(self.norms) else x)
            pooled.append(self.pool(x, batch))
        return self.head(torch.cat(pooled, -1) if self.jk == "cat" else pooled[-1])


def _trained_like(model, seed=0):
    """Non-trivial BatchNorm statistics and GIN eps, as training leaves them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            if isinstance(m, GINConv):
                m.eps.fill_(0.3)
            if isinstance(m, GCNConv):  # PyG starts its bias at zero, where before and after propagation agree
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    return model.eval()


@pytest.mark.parametrize("conv, norm, pool, jk", [
    ("gin", True, "sum", "last"), ("gin", False, "sum", "last"), ("gin", True, "max", "cat"),
    ("sage", True, "mean", "last"), ("sage", False, "sum", "cat"), ("gcn", True, "sum", "last"),
    ("gcn", False, "mean", "cat"),
])
def test_a_plain_pyg_stack_becomes_the_zoo_model_it_computes(mutag, conv, norm, pool, jk):
    torch.manual_seed(0)
    module = _trained_like(PygStack(conv, norm, pool, jk))
    zoo, description = zoo_equivalent(module, 7, 2)
    assert zoo is not None, description
    c = zoo.config
    assert (c.arch, c.num_layers, c.hidden, c.batch_norm, c.pool, c.jk) == (conv, 2, 8, norm, pool, jk)
    assert description.startswith(f"{conv}-2-8 (pool={pool}, jk={jk}")
    batch = Batch.from_data_list(list(mutag)[:20])  # real graphs, not the probes it was checked on
    with torch.no_grad():
        torch.testing.assert_close(zoo(batch.x, batch.edge_index, batch.batch),
                                   module(batch.x, batch.edge_index, batch.batch), rtol=1e-4, atol=1e-4)
    assert not module.training and all(p.requires_grad for p in module.parameters())  # left as it was


@pytest.mark.parametrize("module, reason", [
    (PygStack("gat"), "its layers (GATConv) have no zoo equivalent"),
    (PygStack("gin", act=torch.tanh), "no zoo model of its layers and widths gives its outputs"),
    (nn.Sequential(nn.Linear(7, 2)), "no PyTorch Geometric message-passing layers"),
])
def test_other_modules_stay_modules_and_say_why(module, reason):
    zoo, why = zoo_equivalent(_trained_like(module), 7, 2)
    assert zoo is None and reason in why


def test_layer_norm_or_a_second_head_layer_is_not_a_zoo_model():
    module = PygStack("sage")
    module.extra = nn.LayerNorm(8)
    assert "other than one BatchNorm1d per layer and one Linear head" in zoo_equivalent(module, 7, 2)[1]
    untracked = PygStack("gin")
    untracked.norms[0] = nn.BatchNorm1d(8, track_running_stats=False)
    assert "BatchNorm without running statistics" in zoo_equivalent(untracked, 7, 2)[1]


def test_from_module_recognises_and_a_student_of_its_family_inherits(mutag, tmp_path):
    torch.manual_seed(0)
    module = _trained_like(PygStack("gin", norm=False, pool="sum", jk="last", hidden=16, layers=3))
    ckpt = dfkd.Checkpoint.from_module(module, feature_spec=mutag.feature_spec, num_classes=2)
    assert ckpt.module is None and ckpt.model_config.short_name == "gin-3-16"
    assert ckpt.provenance["recognised_as"] == "gin-3-16 (pool=sum, jk=last, no normalisation)"
    ckpt.save(str(tmp_path / "teacher.pt"))  # a zoo model now: dfkd's safe format
    assert dfkd.load_checkpoint(str(tmp_path / "teacher.pt")).model_config == ckpt.model_config
    kept = dfkd.Checkpoint.from_module(module, feature_spec=mutag.feature_spec, num_classes=2, recognise=False)
    assert kept.module is module and kept.model_config is None

    # A student of its family takes its readout and normalisation (explicit options win); another family not.
    student = build_student("gin-2-8", ckpt)
    assert (student.config.pool, student.config.jk, student.config.batch_norm) == ("sum", "last", False)
    assert build_student("gin-2-8", ckpt, jk="cat").config.jk == "cat"
    assert build_student("gcn-2-8", ckpt).config.jk == "cat"
    result = dfkd.distill_student(ckpt, "gin-2-8", num_graphs=16, config=dfkd.DistillConfig(epochs=1, seed=0),
                                  show_progress=False)
    assert result.report.config["student_init"] == "teacher"


def test_a_pyg_gcn_teacher_adds_its_bias_after_propagation_and_its_gcn_student_too(mutag):
    torch.manual_seed(0)
    ckpt = dfkd.Checkpoint.from_module(_trained_like(PygStack("gcn", hidden=16, layers=3)),
                                       feature_spec=mutag.feature_spec, num_classes=2)
    assert ckpt.model_config.arch == "gcn" and ckpt.model_config.bias_after_propagation
    assert build_student("gcn-2-8", ckpt).config.bias_after_propagation
    assert not build_student("gin-2-8", ckpt).config.bias_after_propagation  # another family: its own layers
    result = dfkd.distill_student(ckpt, "gcn-2-8", num_graphs=16, config=dfkd.DistillConfig(epochs=1, seed=0),
                                  show_progress=False)
    assert result.report.config["student_init"] == "teacher"
    # dfkd's own GCN (bias before propagation) cannot start from it: the same weights compute something else.
    assert "bias_after_propagation differs" in why_not_inheritable(build_student("gcn-2-8", ckpt,
                                                                                 bias_after_propagation=False),
                                                                   ckpt.build_model())
    with pytest.raises(ValueError, match="bias_after_propagation applies to gcn layers only, not 'gin'"):
        dfkd.build_model("gin-2-8", bias_after_propagation=True)
