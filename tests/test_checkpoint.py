import os

import pytest
import torch

from dfkd import Checkpoint, CheckpointError, FeatureSpec, build_model, list_models, load_checkpoint, load_model, save_model
from dfkd.checkpoint import atomic_save


def _graph(in_channels=5):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, in_channels, generator=gen)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 0, 3, 2, 5, 4]])
    return x, edge_index, torch.tensor([0, 0, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("arch", list_models())
def test_round_trip_every_architecture(tmp_path, arch):
    model = build_model(f"{arch}-2-8", in_channels=5, out_channels=3).eval()
    spec = FeatureSpec(dim=5, encoding="one_hot", categories=[1, 2, 3, 4, 5])
    path = str(tmp_path / "m.pt")
    save_model(path, model, feature_spec=spec, label_values=["a", "b", "c"], provenance={"seed": 1})
    ckpt = load_checkpoint(path)
    assert ckpt.model_config == model.config and ckpt.feature_spec == spec
    assert ckpt.label_values == ["a", "b", "c"] and ckpt.provenance == {"seed": 1}
    rebuilt = load_model(path)
    assert not rebuilt.training
    assert torch.equal(model(*_graph()), rebuilt(*_graph()))


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "evil.pt")
    torch.save({"payload": _Evil(str(marker))}, path)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_pickled_module_needs_trust(tmp_path):
    model = build_model("gcn-2-8", in_channels=5, out_channels=2).eval()
    path = str(tmp_path / "module.pt")
    torch.save(model, path)
    with pytest.raises(CheckpointError, match="safe loading refuses"):
        load_model(path)
    with pytest.warns(UserWarning, match="trust=True"):
        trusted = load_model(path, trust=True)
    assert torch.equal(trusted(*_graph()), model(*_graph()))


def test_plain_state_dict_needs_architecture(tmp_path):
    model = build_model("gin-3-16", in_channels=5, out_channels=2).eval()
    path = str(tmp_path / "sd.pt")
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # DDP-style prefixes
    with pytest.raises(CheckpointError, match="--arch"):
        load_model(path)
    rebuilt = load_model(path, arch="gin-3-16", in_channels=5, num_classes=2)
    assert torch.equal(rebuilt(*_graph()), model(*_graph()))
    with pytest.raises(CheckpointError, match="do not fit gin-3-32"):
        load_model(path, arch="gin-3-32", in_channels=5, num_classes=2)


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 10, b"PK\x03\x04truncated"])
def test_corrupt_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_model(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_checkpoint(tmp_path):
    path = str(tmp_path / "m.pt")
    save_model(path, build_model("gin-2-8", in_channels=3, out_channels=2))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_model(path)


def test_missing_and_newer_format(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model(str(tmp_path / "none.pt"))
    path = str(tmp_path / "m.pt")
    ckpt = save_model(path, build_model("gin-2-8", in_channels=3, out_channels=2))
    obj = ckpt.to_dict()
    obj["format_version"] = 99
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="upgrade dfkd"):
        load_model(path)


def test_atomic_save_keeps_previous_file_on_failure(tmp_path):
    path = str(tmp_path / "c.pt")
    atomic_save({"a": torch.ones(1)}, path)

    class Unsaveable:
        def __reduce__(self):
            raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_save({"a": Unsaveable()}, path)
    assert torch.equal(torch.load(path)["a"], torch.ones(1))
    assert os.listdir(tmp_path) == ["c.pt"]  # no temporary left behind


def test_checkpoint_dataclass_fields():
    model = build_model("gin-2-8", in_channels=3, out_channels=4)
    ckpt = Checkpoint.from_model(model)
    assert ckpt.num_classes == 4 and ckpt.task == "classification"
    with pytest.raises(CheckpointError, match="no dfkd ModelConfig"):
        Checkpoint.from_model(torch.nn.Linear(2, 2))
