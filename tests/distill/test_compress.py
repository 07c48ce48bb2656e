"""dfkd.compress: a teacher module in memory → a trained student module, and the documented example script."""
import os
import runpy

import pytest
import torch

import dfkd
from dfkd.cli import main as cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "docs", "examples", "compress_in_memory.py")


def test_compress_returns_a_trained_student_and_leaves_the_teacher_as_it_was(mutag):
    teacher = dfkd.build_model("gin-2-16", in_channels=mutag.num_features, out_channels=2)
    teacher.train()
    teacher.head.weight.requires_grad_(False)  # the user's own choice: kept
    grads = {n: p.requires_grad for n, p in teacher.named_parameters()}
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = dfkd.compress(teacher, "gin-2-8", num_classes=2, features="one_hot", in_channels=mutag.num_features,
                            num_graphs=32, config=dfkd.DistillConfig(epochs=2, batch_size=16), show_progress=False)
    assert isinstance(student, torch.nn.Module) and student.config.short_name == "gin-2-8"
    assert teacher.training and {n: p.requires_grad for n, p in teacher.named_parameters()} == grads  # restored
    assert any(grads.values())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items() if "running" not in k
               and "num_batches" not in k)
    out = student(mutag[0].x, mutag[0].edge_index, torch.zeros(mutag[0].num_nodes, dtype=torch.long))
    assert out.shape == (1, 2)
    with pytest.raises(ValueError, match="needs in_channels="):
        dfkd.compress(teacher, num_classes=2, features="one_hot")


def test_the_documented_example_trains_compresses_and_exports(tmp_path, capsys):
    out = str(tmp_path / "student.pt")
    module = runpy.run_path(EXAMPLE)
    assert module["main"](["--out", out, "--teacher-epochs", "3", "--epochs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "MUTAG fold 1, 18 test graphs: teacher" in printed and f"student saved to {out}" in printed
    assert cli(["export", "--model", out, "--out", str(tmp_path / "student.ts"), "--quiet"]) == 0
    assert os.path.getsize(tmp_path / "student.ts") > 0
