import math

import pytest
import torch
from torch import nn

import dfkd
from dfkd.distill import DistillConfig, Distiller, SyntheticSetSource, distill_student
from dfkd.distill.inherit import (INHERITED_LR, RANDOM_INIT_LR, freeze_batch_norm, inherit_from_teacher, relu_mean,
                                  why_not_inheritable)
from dfkd.generators import RandomGraphGenerator
from dfkd.nn import call_model


def _graphs(num_graphs=6, num_nodes=5, in_channels=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.one_hot(torch.randint(0, in_channels, (num_graphs * num_nodes,), generator=gen),
                                    in_channels).float()
    ring = torch.arange(num_nodes)
    edges = torch.cat([torch.stack([ring + g * num_nodes, (ring + 1) % num_nodes + g * num_nodes])
                       for g in range(num_graphs)], 1)
    edges = torch.cat([edges, edges.flip(0)], 1)
    batch = torch.arange(num_graphs).repeat_interleave(num_nodes)
    return x, edges, batch, num_graphs


def _trained_like(model, seed=0):
    """Random BatchNorm affine maps and statistics, as a trained model has (not PyTorch's 1 / 0 init)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen))
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


def test_relu_mean_hand_computed():
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.0, 0.0, 10.0]))
    # E[ReLU(z)], z ~ N(0, 1): 1/sqrt(2 pi); N(0, 4): twice that; N(10, 1): 10 (the mass below 0 is negligible).
    expected = torch.tensor([1 / math.sqrt(2 * math.pi), 2 / math.sqrt(2 * math.pi), 10.0])
    assert torch.allclose(relu_mean(bn, 3), expected, atol=1e-6)
    assert torch.equal(relu_mean(nn.Identity(), 4), torch.ones(4))


@pytest.mark.parametrize("arch", ["gin", "gcn", "sage", "mlp"])
def test_a_student_as_wide_and_deep_as_the_teacher_becomes_the_teacher(arch):
    torch.manual_seed(0)
    teacher = _trained_like(dfkd.build_model(f"{arch}-3-8", in_channels=7, out_channels=2))
    student = dfkd.build_model(f"{arch}-3-8", in_channels=7, out_channels=2).eval()
    inherit_from_teacher(student, teacher)
    x, edges, batch, g = _graphs()
    with torch.no_grad():
        expected = call_model(teacher, x, edges, batch, g)
        assert torch.allclose(call_model(student, x, edges, batch, g), expected, atol=1e-5)


def test_a_shallower_student_keeps_the_first_layers_terms_of_the_sum_of_per_layer_predictions():
    # jk="cat": the teacher's logits are sum_l W_l pool(h_l) + b; a full-width student of 2 of its 3 layers
    # computes exactly the terms of the pooled input and the first two layers.
    torch.manual_seed(0)
    teacher = _trained_like(dfkd.build_model("gcn-3-8", in_channels=7, out_channels=2))
    student = dfkd.build_model("gcn-2-8", in_channels=7, out_channels=2).eval()
    assert inherit_from_teacher(student, teacher) == "the teacher's first 2 of 3 layers, 8 of 8 channels each"
    x, edges, batch, g = _graphs()
    with torch.no_grad():
        pooled = call_model(teacher, x, edges, batch, g, return_embeddings=True).graph_embedding  # [B, 7 + 3 * 8]
        expected = pooled[:, :7 + 16] @ teacher.head.weight[:, :7 + 16].T + teacher.head.bias
        assert torch.allclose(call_model(student, x, edges, batch, g), expected, atol=1e-5)


def test_the_busiest_channels_are_kept_hand_computed():
    # One GCN layer of 4 channels, 2 kept: scores E[ReLU] x (relative head column norm), no next layer.
    torch.manual_seed(0)
    teacher = dfkd.build_model("gcn-1-4", in_channels=3, out_channels=2).eval()
    student = dfkd.build_model("gcn-1-2", in_channels=3, out_channels=2).eval()
    with torch.no_grad():
        norm = teacher.norms[0]
        norm.weight.copy_(torch.ones(4))
        norm.bias.copy_(torch.tensor([0.0, 3.0, -3.0, 1.0]))  # E[ReLU]: 0.40, 3.00, 0.00, 1.08
        head = torch.zeros(2, 3 + 4)
        head[0, 3:] = torch.tensor([1.0, 0.1, 5.0, 1.0])  # the layer's columns; norms 1, 0.1, 5, 1
        teacher.head.weight.copy_(head)
    # scores (up to the common mean): 0.40, 0.30, 0.00, 1.08 -> channels 0 and 3.
    inherit_from_teacher(student, teacher)
    assert torch.equal(student.convs[0].lin.weight, teacher.convs[0].lin.weight[[0, 3]])
    assert torch.equal(student.norms[0].bias, torch.tensor([0.0, 1.0]))
    assert torch.equal(student.head.weight[:, 3:], head[:, [3, 6]])
    assert torch.equal(student.head.weight[:, :3], head[:, :3]) and torch.equal(student.head.bias, teacher.head.bias)


@pytest.mark.parametrize("student, teacher, reason", [
    ("gcn-2-8", "gin-3-8", "not of the teacher's family"),
    ("gin-2-16", "gin-3-8", "deeper or wider"),
    ("gin-4-8", "gin-3-8", "deeper or wider"),
    ("gin-2-8", "gin-3-8", "residual"),
])
def test_why_not_inheritable(student, teacher, reason):
    residual = reason == "residual"
    s = dfkd.build_model(student, in_channels=7, out_channels=2, residual=residual)
    t = dfkd.build_model(teacher, in_channels=7, out_channels=2, residual=residual)
    assert reason in why_not_inheritable(s, t)
    with pytest.raises(ValueError, match="cannot start from the teacher's weights"):
        inherit_from_teacher(s, t)
    other_pool = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2, pool="mean")
    assert "pool differs" in why_not_inheritable(other_pool, dfkd.build_model("gin-3-8", in_channels=7, out_channels=2))
    assert "zoo model" in why_not_inheritable(nn.Linear(2, 2), t)


def test_freeze_batch_norm_leaves_dropout_training():
    model = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2, dropout=0.5).train()
    freeze_batch_norm(model)
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    assert model.dropout.training


def test_an_inherited_student_trains_on_the_teachers_statistics(tiny_teacher):
    teacher = tiny_teacher.build_model()
    graphs = RandomGraphGenerator.from_checkpoint(tiny_teacher).generate(24, seed=0, show_progress=False)
    student = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    distiller = Distiller(teacher, student, SyntheticSetSource(graphs, batch_size=12),
                          DistillConfig(epochs=2, student_init="teacher"), show_progress=False)
    assert distiller.config.lr == INHERITED_LR
    kept = {k: v.clone() for k, v in student.state_dict().items() if "running" in k}
    distiller.fit()
    # The teacher's statistics (the inherited channels of them), not the synthetic batches', throughout.
    assert all(torch.equal(student.state_dict()[k], v) for k, v in kept.items())
    assert student.norms[0].running_mean.abs().sum() > 0
    random = Distiller(teacher, dfkd.build_model("gin-2-8", in_channels=7, out_channels=2),
                       SyntheticSetSource(graphs, batch_size=12), DistillConfig(epochs=1), show_progress=False)
    assert random.config.student_init == "random" and random.config.lr == RANDOM_INIT_LR
    with pytest.raises(ValueError, match="not of the teacher's family.*student_init='random'"):
        Distiller(teacher, dfkd.build_model("gcn-2-8", in_channels=7, out_channels=2),
                  SyntheticSetSource(graphs, batch_size=12), DistillConfig(student_init="teacher"))


def test_config_checks_student_init():
    with pytest.raises(ValueError, match="unknown student_init 'copy'"):
        DistillConfig(student_init="copy")
    with pytest.raises(ValueError, match="set one"):
        DistillConfig(student_init="teacher", teacher_head="frozen")
    assert DistillConfig.from_dict(DistillConfig(student_init="teacher").to_dict()).student_init == "teacher"
    with pytest.raises(ValueError, match="inherited_lr_scale must be a finite number >= 0, got -1"):
        DistillConfig(inherited_lr_scale=-1)
    with pytest.raises(ValueError, match=r"probe_fraction must be in \[0, 1\), got 1"):
        DistillConfig(probe_fraction=1)


@pytest.mark.parametrize("generator, student, init", [
    ("prior", "gin-2-8", "teacher"),  # the prior generator's recommendation, the student of the teacher's family
    ("prior", "gcn-2-8", "random"),  # another family: at random
    ("random", "gin-2-8", "random"),  # other generators: at random, as their papers
])
def test_auto_follows_the_generator_where_the_student_can_inherit(tiny_teacher, generator, student, init):
    config = DistillConfig(epochs=1)
    result = distill_student(tiny_teacher, student, generator=generator, num_graphs=16, config=config,
                             show_progress=False)
    assert result.report.config["student_init"] == init
    assert result.report.config["lr"] == (INHERITED_LR if init == "teacher" else RANDOM_INIT_LR)


@pytest.mark.parametrize("changes, body_moves", [
    (dict(inherited_lr_scale=0.0), False),  # frozen: only the head trains
    (dict(probe_fraction=0.75), False),  # both epochs within the first 75%: the head alone
    (dict(probe_fraction=0.5), True),  # the head alone for the first of two epochs, then all
    (dict(inherited_lr_scale=0.5), True),
])
def test_inherited_layers_train_at_their_own_rate(tiny_teacher, changes, body_moves):
    teacher = tiny_teacher.build_model()
    graphs = RandomGraphGenerator.from_checkpoint(tiny_teacher).generate(24, seed=0, show_progress=False)
    student = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    distiller = Distiller(teacher, student, SyntheticSetSource(graphs, batch_size=12),
                          DistillConfig(epochs=2, student_init="teacher", **changes), show_progress=False)
    body = {n: p.detach().clone() for n, p in student.named_parameters() if not n.startswith("head.")}
    head = student.head.weight.detach().clone()
    distiller.fit()
    assert not torch.equal(student.head.weight, head)
    assert any(not torch.equal(p, body[n]) for n, p in student.named_parameters() if n in body) == body_moves
