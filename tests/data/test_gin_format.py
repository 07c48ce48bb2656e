import pytest
import torch

from dfkd.data import DatasetFormatError, encode_graphs, load_dataset, read_gin_txt
from dfkd.data.datasets import GINFormatDataset

GOOD = """2
3 1
0 2 1 2
1 1 0
0 1 0
2 -1
2 1 1
2 1 0
"""


def _write(tmp_path, text, name="TOY"):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text(text)
    return str(path)


def test_reads_good_file(tmp_path):
    graphs = read_gin_txt(_write(tmp_path, GOOD))
    assert [g.label for g in graphs] == [1, -1]
    assert graphs[0].tags == [0, 1, 0]
    assert sorted(graphs[0].edges) == [(0, 1), (0, 2), (1, 0), (2, 0)]


def test_encoding_one_hot_and_labels(tmp_path):
    data, spec, labels = encode_graphs(read_gin_txt(_write(tmp_path, GOOD)))
    assert labels == [-1, 1]  # sorted raw labels: class 0 is -1
    assert [int(d.y) for d in data] == [1, 0]
    assert spec.encoding == "one_hot" and spec.categories == [0, 1, 2]
    assert torch.equal(data[0].x, torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 0, 0]]))
    assert data[0].edge_index.size(1) == 4


def test_degree_features_when_tags_are_constant(tmp_path):
    text = "2\n3 0\n0 2 1 2\n0 1 0\n0 1 0\n2 1\n0 1 1\n0 1 0\n"
    data, spec, _ = encode_graphs(read_gin_txt(_write(tmp_path, text)))
    assert spec.encoding == "degree" and spec.max_degree == 2 and spec.dim == 3
    assert data[0].x.argmax(-1).tolist() == [2, 1, 1]


@pytest.mark.parametrize(
    "text, line, problem",
    [
        ("2\n3 1\n0 2 1 2\n1 1 0\n", 5, "file ends early"),  # truncated
        ("1\n2 0\n0 1 5\n1 1 0\n", 3, "out of range"),  # neighbour index
        ("1\n2 0\n0 3 1\n1 1 0\n", 3, "declares 3 neighbours"),
        ("1\nx 0\n", 2, "not an integer"),
        ("1\n1 0\n0 0\n1 0\n0 0\n", 4, "unexpected content"),  # more nodes than declared
        ("1\n1 0 7\n0 0\n", 2, "must be 'n label'"),
        ("", 1, "file ends early"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, text, line, problem):
    path = _write(tmp_path, text)
    with pytest.raises(DatasetFormatError) as info:
        read_gin_txt(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:") and problem in message
    assert "\n" not in message


def test_missing_and_unknown_datasets(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        read_gin_txt(str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="--data-root"):
        load_dataset("PROTEINS", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="unknown dataset 'FOO'"):
        load_dataset("FOO")


def test_malformed_dataset_is_never_partially_cached(tmp_path):
    _write(tmp_path, "2\n1 0\n0 0\n1 1\n")  # second graph truncated
    with pytest.raises(DatasetFormatError):
        GINFormatDataset(str(tmp_path), "TOY", cache_dir=str(tmp_path / "cache"))
    # Fix the file: it is re-read (the cache key is the checksum), not served stale.
    _write(tmp_path, "2\n1 0\n0 0\n1 1\n0 0\n")
    dataset = GINFormatDataset(str(tmp_path), "TOY", cache_dir=str(tmp_path / "cache"))
    assert len(dataset) == 2
