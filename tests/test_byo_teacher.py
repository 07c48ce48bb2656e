"""Bring your own teacher: a PyG model defined here (not in dfkd's zoo), distilled data-free in a few lines.

This is the code of docs/byo_teacher.md; keep the two in step.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GINConv, global_add_pool

import dfkd
from dfkd.data import size_stats, split_indices


class MyGIN(nn.Module):
    """A user's own graph classifier: plain PyTorch Geometric layers, forward(x, edge_index, batch)."""

    def __init__(self, in_channels: int, hidden: int, num_classes: int):
        super().__init__()

        def mlp(width_in):
            return nn.Sequential(nn.Linear(width_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden))

        self.conv1, self.conv2 = GINConv(mlp(in_channels)), GINConv(mlp(hidden))
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, batch):
        h = F.relu(self.conv1(x, edge_index))
        h = F.relu(self.conv2(h, edge_index))
        return self.head(global_add_pool(h, batch))


@pytest.fixture(scope="module")
def trained_teacher():
    """MyGIN trained briefly on 70% of MUTAG; the other 30% stay unseen."""
    data = dfkd.load_dataset("MUTAG")
    train_idx, test_idx, _ = split_indices(data, holdout=0.3, seed=0)
    train, test = [data[i] for i in train_idx], [data[i] for i in test_idx]
    torch.manual_seed(0)
    teacher = MyGIN(data.num_features, 32, 2)
    opt = torch.optim.Adam(teacher.parameters(), lr=0.01)
    loader = DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _ in range(30):
        teacher.train()
        for b in loader:
            opt.zero_grad()
            F.cross_entropy(teacher(b.x, b.edge_index, b.batch), b.y).backward()
            opt.step()
    return teacher.eval(), data, train, test


def test_byo_teacher_distils_above_chance(trained_teacher, tmp_path):
    teacher, data, train, test = trained_teacher

    # The few lines of the tutorial: wrap, distil, use.
    ckpt = dfkd.Checkpoint.from_module(teacher, feature_spec=data.feature_spec, num_classes=2,
                                       size_stats=size_stats(train))
    result = dfkd.distill_student(ckpt, "gin-2-32", num_graphs=128, config=dfkd.DistillConfig(epochs=30, seed=0),
                                  eval_graphs=test, out=str(tmp_path / "student.pt"), show_progress=False)

    labels = torch.cat([g.y for g in test])
    majority = labels.bincount().max().item() / len(labels)  # chance: always the most frequent class
    final = result.report.final
    assert final["teacher_accuracy"] > majority
    assert final["accuracy"] > majority, final
    # The student is a dfkd zoo model: its checkpoint reloads without the teacher's code.
    student = dfkd.load_model(str(tmp_path / "student.pt"))
    report = dfkd.evaluate(student, test, teacher=teacher, measure_latency=False)
    assert report.accuracy == pytest.approx(final["accuracy"])
    assert report.teacher_accuracy == pytest.approx(final["teacher_accuracy"])


def test_tutorial_shows_this_code():
    """docs/byo_teacher.md carries the model and the dfkd lines of this test, verbatim."""
    import inspect
    import os
    import re

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "byo_teacher.md"), encoding="utf-8").read()
    code = "\n".join(re.findall(r"```python\n(.+?)```", doc, flags=re.S))
    assert inspect.getsource(MyGIN) in code
    source = inspect.getsource(test_byo_teacher_distils_above_chance)
    for line in ("Checkpoint.from_module(teacher, feature_spec=data.feature_spec, num_classes=2,",
                 "size_stats=size_stats(train))",
                 'dfkd.distill_student(ckpt, "gin-2-32", num_graphs=128, config=dfkd.DistillConfig(epochs=30, seed=0),',
                 "eval_graphs=test,"):
        assert line in code and line in source, line
    fixture = inspect.getsource(trained_teacher.__wrapped__ if hasattr(trained_teacher, "__wrapped__") else trained_teacher)
    for line in ("split_indices(data, holdout=0.3, seed=0)", "torch.manual_seed(0)", "MyGIN(data.num_features, 32, 2)",
                 "DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))",
                 "range(30)"):
        assert line in code and line in fixture, line


def test_from_module_errors_name_the_fix(trained_teacher):
    teacher, data, train, _ = trained_teacher
    with pytest.raises(dfkd.CheckpointError, match="needs feature_spec="):
        dfkd.Checkpoint.from_module(teacher, feature_spec=None, num_classes=2)
    with pytest.raises(dfkd.CheckpointError, match="needs num_classes="):
        dfkd.Checkpoint.from_module(teacher, feature_spec=data.feature_spec)
    with pytest.raises(dfkd.CheckpointError, match="label_values has 3 entries for num_classes=2"):
        dfkd.Checkpoint.from_module(teacher, feature_spec=data.feature_spec, num_classes=2, label_values=[0, 1, 2])
    with pytest.raises(dfkd.CheckpointError, match="needs a torch.nn.Module"):
        dfkd.Checkpoint.from_module(lambda x: x, feature_spec=data.feature_spec, num_classes=2)
    ckpt = dfkd.Checkpoint.from_module(teacher, feature_spec=data.feature_spec, label_values=[-1, 1])
    assert ckpt.num_classes == 2 and ckpt.build_model() is teacher and ckpt.model_config is None
    assert ckpt.provenance["source"] == "module MyGIN"
    with pytest.raises(dfkd.CheckpointError, match="cannot be saved"):
        ckpt.save("never.pt")
