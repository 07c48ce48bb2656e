import pytest
import torch
from torch import nn

import dfkd
from dfkd.distill import DistillConfig, Distiller, SyntheticSetSource, distill_student
from dfkd.distill.head import ProjectedTeacherHead, fold_teacher_head, reuse_teacher_head
from dfkd.generators import RandomGraphGenerator


def test_fold_equals_the_projected_head_hand_computed():
    teacher_head = nn.Linear(3, 2)
    with torch.no_grad():
        teacher_head.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]]))
        teacher_head.bias.copy_(torch.tensor([0.5, -0.5]))
    head = ProjectedTeacherHead(2, teacher_head)
    with torch.no_grad():
        head.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        head.proj.bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    g = torch.tensor([[1.0, 2.0]])
    # proj: [1, 3, 3]; teacher head: [1 + 6 + 0.5, -3 + 3 - 0.5] = [7.5, -0.5].
    assert head(g).tolist() == [[7.5, -0.5]]
    folded = head.fold()
    assert isinstance(folded, nn.Linear) and folded.weight.shape == (2, 2)
    assert torch.allclose(folded(g), head(g))
    assert not any(p.requires_grad for p in head.head.parameters()) and head.proj.weight.requires_grad


def test_reuse_checks_the_models():
    student = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    teacher = dfkd.build_model("gin-3-16", in_channels=7, out_channels=3)
    with pytest.raises(ValueError, match="must match"):
        reuse_teacher_head(student, teacher)
    with pytest.raises(ValueError, match="linear `head`"):
        reuse_teacher_head(nn.Sequential(), teacher)


def test_distillation_through_the_teacher_head_folds_back(tiny_teacher):
    teacher = tiny_teacher.build_model()
    graphs = RandomGraphGenerator.from_checkpoint(tiny_teacher).generate(24, seed=0, show_progress=False)
    torch.manual_seed(0)
    student = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    plain_shapes = {k: v.shape for k, v in student.state_dict().items()}
    report = Distiller(teacher, student, SyntheticSetSource(graphs, batch_size=12),
                       DistillConfig(epochs=3, teacher_head="frozen"), show_progress=False).fit()
    # Folded: the saved student has its usual parameter names and shapes.
    assert {k: v.shape for k, v in student.state_dict().items()} == plain_shapes
    assert report.student_parameters == sum(p.numel() for p in student.parameters())
    # The copied classifier stayed frozen: folding W_T P keeps the teacher's row space.
    with torch.no_grad():
        w_t = teacher.head.weight
        residual = student.head.weight - w_t @ torch.linalg.lstsq(w_t, student.head.weight).solution
    assert residual.abs().max() < 1e-4
    with pytest.raises(ValueError, match="off, frozen or trained"):
        DistillConfig(teacher_head="copy")


def test_resume_reloads_the_unfolded_head(tiny_teacher, tmp_path):
    # The resumable state keeps the projected head (it is written before folding), so resuming a run,
    # here one that had already finished, rebuilds the same folded student.
    config = DistillConfig(epochs=2, checkpoint_every=1, teacher_head="trained", seed=1)
    run = dict(generator="random", num_graphs=16, config=config, show_progress=False, out=str(tmp_path / "s.pt"))
    full = distill_student(tiny_teacher, "gin-2-8", **run)
    again = distill_student(tiny_teacher, "gin-2-8", resume=True, **run)
    assert again.report.resumed_from_epoch == 2
    for a, b in zip(full.student.state_dict().values(), again.student.state_dict().values()):
        assert torch.equal(a, b)
