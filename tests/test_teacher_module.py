"""Teachers from the user's own code (--teacher-module) and from PyTorch Geometric's own layers, with and
without normalisation, on one-hot and continuous node features."""
import textwrap

import pytest
import torch
from torch import nn
from torch_geometric.nn import GATConv, GCNConv, GINConv, GraphNorm, SAGEConv, global_add_pool, global_mean_pool

import dfkd
from dfkd.cli import main
from dfkd.config import FeatureSpec

USER_CODE = textwrap.dedent('''
    import torch
    from torch import nn
    from torch_geometric.nn import GATConv, global_add_pool


    class UserGAT(nn.Module):
        def __init__(self, in_channels=7, hidden=16, num_classes=2):
            super().__init__()
            self.conv1, self.conv2 = GATConv(in_channels, hidden, heads=2, concat=False), GATConv(hidden, hidden)
            self.head = nn.Linear(hidden, num_classes)

        def forward(self, x, edge_index, batch):
            h = torch.relu(self.conv1(x, edge_index))
            h = torch.relu(self.conv2(h, edge_index))
            return self.head(global_add_pool(h, batch))


    def make_teacher(hidden=16):
        return UserGAT(hidden=hidden)
''')


def _write_package(tmp_path, monkeypatch, package: str, module: str, code: str) -> None:
    """``package.module`` of the user's beside them (the current directory), importable."""
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / f"{module}.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A package of the user's beside them (the current directory), and weights of its model."""
    _write_package(tmp_path, monkeypatch, "mylab", "models", USER_CODE)
    from mylab.models import make_teacher  # noqa: E402

    torch.manual_seed(0)
    weights = tmp_path / "gat.pt"
    torch.save(make_teacher(hidden=8).state_dict(), weights)
    return str(weights)


def test_teacher_module_builds_the_users_model_and_needs_trust(user_package, tmp_path, capsys):
    module = ["--teacher", user_package, "--teacher-module", "mylab.models:make_teacher", "--in-channels", "7",
              "--classes", "2"]
    out = str(tmp_path / "s.pt")
    run = ["distill", *module, "--student", "gin-2-8", "--out", out, "--num-graphs", "16", "--epochs", "1", "--quiet"]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "imports and runs that code: add --trust-checkpoint" in err and len(err.splitlines()) == 1
    assert main(run + ["--trust-checkpoint"]) == 2  # hidden 16 by default: the 8-wide weights do not fit
    assert "does not fit mylab.models:make_teacher" in capsys.readouterr().err
    assert main(run + ["--trust-checkpoint", "--teacher-kwargs", '{"hidden": 8}']) == 0
    assert dfkd.load_checkpoint(out).provenance["teacher_source"] == "module mylab.models:make_teacher"
    assert main(run + ["--trust-checkpoint", "--teacher-kwargs", '{"width": 8}']) == 2
    assert "--teacher-kwargs" in capsys.readouterr().err
    bad = ["distill", "--teacher", user_package, "--teacher-module", "mylab.nowhere:make", "--in-channels", "7",
           "--classes", "2", "--out", out, "--trust-checkpoint", "--quiet"]
    assert main(bad) == 2 and "cannot import it" in capsys.readouterr().err
    assert main(["evaluate", "--model", out, *module, "--trust-checkpoint", "--teacher-kwargs", '{"hidden": 8}',
                 "--dataset", "MUTAG", "--eval-split", "all", "--quiet"]) == 0
    assert "agreement" in capsys.readouterr().out


class PygTeacher(nn.Module):
    """Two PyG convolutions, an optional normalisation after each, a pooling and a linear head."""

    def __init__(self, conv, norm, pool, in_channels, hidden=16, num_classes=2):
        super().__init__()
        convs = {"gcn": lambda i, o: GCNConv(i, o), "sage": lambda i, o: SAGEConv(i, o),
                 "gat": lambda i, o: GATConv(i, o, heads=2, concat=False),
                 "gin": lambda i, o: GINConv(nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o)))}
        norms = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "graph": GraphNorm, "none": lambda w: None}
        self.convs = nn.ModuleList([convs[conv](in_channels, hidden), convs[conv](hidden, hidden)])
        self.norms = nn.ModuleList([m for m in (norms[norm](hidden), norms[norm](hidden)) if m is not None])
        self.graph_norm, self.pool = norm == "graph", {"add": global_add_pool, "mean": global_mean_pool}[pool]
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if self.norms:
                x = self.norms[i](x, batch) if self.graph_norm else self.norms[i](x)
            x = torch.relu(x)
        return self.head(self.pool(x, batch))


@pytest.mark.parametrize("conv, norm, pool, encoding", [
    ("gcn", "batch", "add", "one_hot"), ("gin", "layer", "add", "one_hot"), ("sage", "graph", "mean", "one_hot"),
    ("gat", "none", "add", "one_hot"), ("gcn", "none", "mean", "continuous"),
])
def test_pyg_layer_teachers_distil(conv, norm, pool, encoding, mutag):
    """Every family of PyG layer, with BatchNorm, LayerNorm, GraphNorm or no normalisation, on one-hot or
    continuous features, goes through the default recipe; a teacher without BatchNorm gets uniform node
    types (and says so) instead of failing."""
    torch.manual_seed(0)
    teacher = PygTeacher(conv, norm, pool, 7).eval()
    spec = mutag.feature_spec if encoding == "one_hot" else FeatureSpec(dim=7, encoding="continuous")
    ckpt = dfkd.Checkpoint.from_module(teacher, feature_spec=spec, num_classes=2)
    result = dfkd.distill_student(ckpt, "gin-2-8", num_graphs=16, config=dfkd.DistillConfig(epochs=2, seed=0),
                                  eval_graphs=list(mutag)[:30], show_progress=False)
    final = result.report.final
    assert set(final) >= {"accuracy", "majority_accuracy", "agreement", "chance_adjusted_accuracy"}
    assert result.graphs is None or len(result.graphs) == 16
    x = result.student(mutag[0].x, mutag[0].edge_index, torch.zeros(mutag[0].num_nodes, dtype=torch.long))
    assert x.shape == (1, 2) and torch.isfinite(x).all()


GIN_CODE = textwrap.dedent('''
    import torch
    from torch import nn
    from torch_geometric.nn import GINConv, global_add_pool


    class PlainGIN(nn.Module):
        def __init__(self, in_channels=7, hidden=8, num_classes=2):
            super().__init__()
            mlp = lambda i: nn.Sequential(nn.Linear(i, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
            self.convs = nn.ModuleList([GINConv(mlp(in_channels)), GINConv(mlp(hidden)), GINConv(mlp(hidden))])
            self.head = nn.Linear(hidden, num_classes)

        def forward(self, x, edge_index, batch):
            for conv in self.convs:
                x = torch.relu(conv(x, edge_index))
            return self.head(global_add_pool(x, batch))
''')


def test_a_teacher_module_that_computes_a_zoo_model_is_used_as_one(tmp_path, monkeypatch):
    """--teacher-module code that is a plain GIN stack becomes the zoo GIN it computes: its student of the same
    family takes its readout and normalisation and starts from its weights; --keep-teacher-module opts out."""
    import json

    _write_package(tmp_path, monkeypatch, "plainlab", "gin", GIN_CODE)  # not mylab: another test imported that
    from plainlab.gin import PlainGIN  # noqa: E402

    torch.manual_seed(0)
    torch.save(PlainGIN().state_dict(), tmp_path / "gin.pt")
    run = ["distill", "--teacher", str(tmp_path / "gin.pt"), "--teacher-module", "plainlab.gin:PlainGIN",
           "--in-channels", "7", "--classes", "2", "--trust-checkpoint", "--student", "gin-2-4", "--num-graphs", "8",
           "--epochs", "1", "--quiet"]
    for extra, init, batch_norm in (([], "teacher", False), (["--keep-teacher-module"], "random", True)):
        out = str(tmp_path / f"student{len(extra)}.pt")
        assert main(run + extra + ["--out", out]) == 0
        report = json.load(open(out.replace(".pt", ".report.json")))
        assert report["config"]["student_init"] == init
        assert dfkd.load_checkpoint(out).model_config.batch_norm is batch_norm
