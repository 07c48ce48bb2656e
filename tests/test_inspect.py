"""dfkd.inspect (statistics, table, picture) and the `dfkd inspect` command."""
import json
import math
import os
import sys

import pytest
import torch
from torch_geometric.data import Data

from dfkd.cli import main
from dfkd.config import FeatureSpec
from dfkd.inspect import draw_examples, format_statistics, graph_statistics


def _graph(pairs, n, types, dim=3, y=None):
    src = [a for a, b in pairs] + [b for a, b in pairs]
    dst = [b for a, b in pairs] + [a for a, b in pairs]
    data = Data(x=torch.nn.functional.one_hot(torch.tensor(types), dim).float(),
                edge_index=torch.tensor([src, dst], dtype=torch.long).view(2, -1), num_nodes=n)
    if y is not None:
        data.y = torch.tensor([y])
    return data


@pytest.fixture
def two_graphs():
    """A triangle of type-0 nodes (class 0) and a 3-node path of types 1, 2, 1 (class 1)."""
    return [_graph([(0, 1), (1, 2), (0, 2)], 3, [0, 0, 0], y=0), _graph([(0, 1), (1, 2)], 3, [1, 2, 1], y=1)]


@pytest.fixture(scope="module")
def synth_file(tiny_teacher, tmp_path_factory):
    from dfkd.distill import make_generator

    graphs = make_generator("random", tiny_teacher).generate(24, seed=0, show_progress=False)
    path = str(tmp_path_factory.mktemp("synth") / "synth.pt")
    graphs.save(path)
    return path


def test_statistics_of_known_graphs(two_graphs):
    stats = graph_statistics(two_graphs)
    assert stats["graphs"] == 2
    assert stats["nodes"] == {"mean": 3.0, "std": 0.0, "min": 3.0, "max": 3.0}
    assert stats["edges"]["mean"] == 2.5 and stats["edges"]["min"] == 2 and stats["edges"]["max"] == 3
    assert stats["density"]["mean"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert stats["clustering"]["mean"] == pytest.approx(0.5)  # triangle 1, path 0
    # Degrees: triangle 2, 2, 2; path 1, 2, 1.
    assert stats["degree"]["histogram"] == pytest.approx([0.0, 2 / 6, 4 / 6])
    assert stats["degree"]["mean"] == pytest.approx(10 / 6)
    assert stats["degree"]["var"] == pytest.approx(torch.tensor([2, 2, 2, 1, 2, 1.0]).var(unbiased=False).item())
    assert stats["node_types"]["fractions"] == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert stats["classes"] == {"num_classes": 2, "labels": [1, 1]}
    json.dumps(stats)  # plain types only


def test_teacher_confidence_per_class(two_graphs):
    logits = torch.tensor([[2.0, 0.0], [3.0, 0.0]])  # the teacher says class 0 for both
    stats = graph_statistics(two_graphs, teacher_logits=logits)["classes"]
    p = [torch.softmax(row, -1).max().item() for row in logits]
    assert stats["predicted"] == [2, 0]
    assert stats["confidence_per_class"][0] == pytest.approx(sum(p) / 2) and stats["confidence_per_class"][1] is None
    assert stats["confidence"] == pytest.approx(sum(p) / 2) and stats["agreement"] == 0.5
    with pytest.raises(ValueError, match="3 rows for 2 graphs"):
        graph_statistics(two_graphs, teacher_logits=torch.zeros(3, 2))


def test_synthetic_set_and_its_data_list_agree(synth_file):
    from dfkd.generators import SyntheticGraphSet

    synth = SyntheticGraphSet.load(synth_file)
    a = graph_statistics(synth)
    b = graph_statistics(synth.to_data_list(), feature_spec=synth.feature_spec)
    assert a == b
    assert a["classes"]["predicted"] == synth.summary()["class_histogram"]
    assert a["node_types"]["labels"][0].startswith("tag ")


def test_empty_and_continuous_inputs():
    with pytest.raises(ValueError, match="empty"):
        graph_statistics([])
    data = Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=4)
    stats = graph_statistics([data], feature_spec=FeatureSpec(dim=2, encoding="continuous"))
    assert stats["node_types"] is None and stats["classes"] is None
    assert stats["degree"]["histogram"] == pytest.approx([0.5, 0.5])


def test_table_is_side_by_side(two_graphs):
    table = format_statistics({"synthetic": graph_statistics(two_graphs, teacher_logits=torch.zeros(2, 2)),
                               "MUTAG": graph_statistics(two_graphs)})
    lines = table.splitlines()
    assert "synthetic" in lines[0] and "MUTAG" in lines[0]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    confidence = next(line for line in lines if line.startswith("teacher confidence"))
    assert confidence.split()[-2:] == ["0.500", "-"]  # only the synthetic column has teacher logits
    assert not math.isnan(float(next(line for line in lines if line.startswith("density")).split()[2]))


def test_cli_inspect_side_by_side(synth_file, tiny_teacher, tmp_path, capsys):
    matplotlib = pytest.importorskip("matplotlib")
    stats, png, graphml = str(tmp_path / "s.json"), str(tmp_path / "grid.png"), str(tmp_path / "gml")
    assert main(["inspect", synth_file, "--dataset", "MUTAG", "--teacher", tiny_teacher.path, "--json", stats,
                 "--png", png, "--per-class", "2", "--graphml", graphml, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "24 graphs from random" in out and "synthetic" in out and "MUTAG" in out
    data = json.load(open(stats))
    assert data["synthetic"]["graphs"] == 24 and data["MUTAG"]["graphs"] == 188
    assert data["MUTAG"]["classes"]["labels"] == [63, 125] and "confidence" in data["MUTAG"]["classes"]
    assert data["MUTAG"]["node_types"]["fractions"][2] > 0.6  # carbon dominates MUTAG
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 600  # 2 classes x (2 + 2) panels
    assert len(os.listdir(graphml)) == 24


def test_draw_examples_without_dataset(synth_file, tmp_path):
    pytest.importorskip("matplotlib")
    from dfkd.generators import SyntheticGraphSet

    path = draw_examples({"synthetic": SyntheticGraphSet.load(synth_file)}, str(tmp_path / "g.png"), per_class=3)
    assert os.path.getsize(path) > 10_000
    with pytest.raises(ValueError, match="per_class"):
        draw_examples({"synthetic": SyntheticGraphSet.load(synth_file)}, str(tmp_path / "g.png"), per_class=0)


def test_png_without_matplotlib_names_the_extra(synth_file, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["inspect", synth_file, "--png", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'dfkd[plot]'" in err and "\n" not in err
    assert not os.path.exists(tmp_path / "g.png")


@pytest.mark.parametrize("extra, message", [
    (["--per-class", "0"], "--per-class must be >= 1"),
    (["--dataset", "PTC"], "7 node features but PTC has 19"),
    (["--teacher", "t.pt"], "--teacher scores real graphs: add --dataset"),
    (["--dataset", "NOPE"], "unknown dataset"),
])
def test_cli_inspect_errors(synth_file, extra, message, capsys):
    assert main(["inspect", synth_file, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_cli_inspect_bad_files(tiny_teacher, tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2
    assert "synthetic set not found" in capsys.readouterr().err
    assert main(["inspect", tiny_teacher.path]) == 2  # a checkpoint, not a synthetic set
    err = capsys.readouterr().err.strip()
    assert "not a dfkd synthetic graph set" in err and "dfkd generate" in err and "\n" not in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    assert main(["inspect", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a readable dfkd synthetic graph set" in err and "\n" not in err
