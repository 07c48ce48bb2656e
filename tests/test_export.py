"""dfkd.export and `dfkd export`: TorchScript always, ONNX when onnxruntime is installed."""
import os
import sys

import pytest
import torch
from torch_geometric.data import Batch

import dfkd
from dfkd.cli import main
from dfkd.export import ExportError, example_graphs, export_checkpoint, export_model, load_exported
from dfkd.nn import forward_batch


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A student checkpoint (GIN-2-8, BatchNorm statistics made non-trivial by a few training batches)."""
    from dfkd.data import size_stats

    torch.manual_seed(0)
    model = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    data = dfkd.load_dataset("MUTAG")
    model.train()
    with torch.no_grad():
        for start in range(0, 64, 16):
            forward_batch(model, Batch.from_data_list([data[i] for i in range(start, start + 16)]))
    path = str(tmp_path_factory.mktemp("student") / "student.pt")
    dfkd.save_model(path, model.eval(), feature_spec=data.feature_spec, size_stats=size_stats(list(data)),
                    label_values=list(data.label_values))
    return dfkd.load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
@pytest.mark.parametrize("arch", ["gin-2-8", "gcn-2-8", "sage-2-8", "mlp-1-8"])
def test_torchscript_round_trip(arch, mutag, tmp_path):
    torch.manual_seed(0)
    model = dfkd.build_model(arch, in_channels=7, out_channels=2).eval()
    out = str(tmp_path / "m.ts")
    result = export_model(model, out, graphs=list(mutag)[:40])
    assert result.format == "torchscript" and result.max_abs_diff <= 1e-5 and result.num_graphs == 40
    exported = load_exported(out)
    # Graphs never seen while exporting, batch sizes other than the traced one, and a single graph.
    for idx in (range(100, 188), range(150, 151), range(60, 63)):
        batch = Batch.from_data_list([mutag[i] for i in idx])
        with torch.no_grad():
            expected = forward_batch(model, batch)
        got = exported(batch)
        assert got.shape == expected.shape == (len(idx), 2)
        assert torch.allclose(got, expected, atol=1e-5)
    assert isinstance(torch.jit.load(out), torch.jit.ScriptModule)  # plain TorchScript, loads without dfkd


def test_export_checkpoint_defaults_to_random_check_graphs(student, tmp_path, caplog):
    out = str(tmp_path / "sub" / "student.ts")
    with caplog.at_level("WARNING", logger="dfkd.export"):
        result = export_checkpoint(student, out, num_graphs=20)
    assert os.path.isfile(out) and result.num_graphs == 20 and "random graphs" in result.source
    assert result.num_classes == 2 and result.max_abs_diff <= 1e-5
    # The deprecation of torch.jit.trace is said, once, through logging (not silenced).
    assert sum("deprecates" in r.getMessage() for r in caplog.records) == 1
    assert not [f for f in os.listdir(tmp_path / "sub") if f.startswith(".tmp")]


def test_example_graphs_follow_the_input_encoding(student):
    graphs = example_graphs(student.feature_spec, 10, size_stats=student.size_stats)
    assert len(graphs) == 10
    for g in graphs:
        assert g.x.shape == (g.num_nodes, 7) and torch.all(g.x.sum(-1) == 1)
        assert student.size_stats.min_nodes <= g.num_nodes <= student.size_stats.max_nodes


def test_onnx_round_trip(student, mutag, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = str(tmp_path / "student.onnx")
    result = export_checkpoint(student, out, graphs=list(mutag)[:32])  # format from the suffix
    assert result.format == "onnx" and result.max_abs_diff <= 1e-4
    exported = load_exported(out)
    model = student.build_model()
    for idx in (range(120, 188), range(7, 8)):
        batch = Batch.from_data_list([mutag[i] for i in idx])
        with torch.no_grad():
            expected = forward_batch(model, batch)
        assert torch.allclose(exported(batch), expected, atol=1e-4)
    import onnx

    onnx.checker.check_model(onnx.load(out))


@pytest.mark.parametrize("arch, options", [("gcn-2-8", {"pool": "mean"}), ("sage-2-8", {"pool": "max", "jk": "last"})])
def test_onnx_other_zoo_models(arch, options, mutag, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = dfkd.build_model(arch, in_channels=7, out_channels=2, **options).eval()
    result = export_model(model, str(tmp_path / "m.onnx"), graphs=list(mutag)[:24])
    assert result.max_abs_diff <= 1e-4 and result.num_graphs == 24


def test_onnx_missing_names_the_extra(student, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ExportError, match=r"pip install 'dfkd\[onnx\]'"):
        export_checkpoint(student, str(tmp_path / "s.onnx"))
    assert main(["export", "--model", student.path, "--out", str(tmp_path / "s.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "onnxruntime" in err and "pip install 'dfkd[onnx]'" in err and "\n" not in err
    assert not os.path.exists(tmp_path / "s.onnx")


class _FrozenGraphCount(torch.nn.Module):
    """Reads the number of graphs from batch values: tracing freezes it (the check must catch that)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(7, 2)

    def forward(self, x, edge_index, batch):
        from torch_geometric.nn import global_add_pool

        return self.lin(global_add_pool(x, batch))


def test_a_wrong_export_is_an_error_and_not_written(mutag, tmp_path):
    out = str(tmp_path / "frozen.ts")
    with pytest.raises(ExportError, match="export fails on a batch of .* froze a size computed from tensor values"):
        export_model(_FrozenGraphCount().eval(), out, graphs=list(mutag)[:10])
    assert not os.path.exists(out) and os.listdir(tmp_path) == []


def test_tolerance_exceeded_is_an_error(student, tmp_path, monkeypatch):
    import dfkd.export as export

    real = export.ExportedModel.__call__
    monkeypatch.setattr(export.ExportedModel, "__call__", lambda self, *a: real(self, *a) + 1e-2)
    out = str(tmp_path / "s.ts")
    with pytest.raises(ExportError, match=r"differs from PyTorch by up to 0.01 \(> tolerance 0.0001\)"):
        export_checkpoint(student, out, num_graphs=8)
    assert not os.path.exists(out)


def test_cli_export(student, tmp_path, capsys):
    out = str(tmp_path / "student.ts")
    assert main(["export", "--model", student.path, "--out", out, "--dataset", "MUTAG", "--num-graphs", "30",
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "as torchscript" in text and "checked on 30 graphs" in text and "max |exported - PyTorch|" in text
    assert "inputs: x, edge_index, batch, ptr" in text and os.path.isfile(out)


@pytest.mark.parametrize("extra, message", [
    (["--dataset", "PTC"], "expects 7 node features but the dataset has 19"),
    (["--tolerance", "0"], "tolerance must be > 0"),
    (["--num-graphs", "0"], "num_graphs must be >= 1"),
    (["--dataset", "MUTAG", "--graphs", "s.pt"], "--dataset and --graphs both give check graphs"),
    (["--graphs", "missing.pt"], "synthetic set not found: missing.pt"),
])
def test_cli_export_errors(student, extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", student.path, "--out", "x.ts", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "x.ts")


def test_cli_export_bad_format_and_missing_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", "--model", "m.pt", "--out", "x", "--format", "tflite"])
    assert info.value.code == 2
    assert main(["export", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "x.ts")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*torch.jit.load.*:DeprecationWarning")
def test_export_of_dense_graphs_stays_valid_on_larger_graphs(tmp_path):
    """Complete graphs take the dense path in PyTorch; the exported model must not freeze their block size."""
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    def complete(n, seed):
        pairs = torch.combinations(torch.arange(n)).t()
        x = torch.nn.functional.one_hot(torch.randint(7, (n,), generator=torch.Generator().manual_seed(seed)), 7)
        return Data(x=x.float(), edge_index=to_undirected(pairs, num_nodes=n))

    torch.manual_seed(0)
    model = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2).eval()
    out = str(tmp_path / "m.ts")
    export_model(model, out, graphs=[complete(6, s) for s in range(8)])
    larger = Batch.from_data_list([complete(11, s) for s in range(5)])
    assert torch.allclose(load_exported(out)(larger), forward_batch(model, larger), atol=1e-4)
