import pytest
import torch
from torch_geometric.data import Batch

import dfkd
from dfkd.config import FeatureSpec
from dfkd.distill.sources import OnlineSource
from dfkd.generators import AdversarialGraphGenerator, OnlineGraphGenerator, get_generator_class
from dfkd.generators import adversarial
from dfkd.generators.adversarial import class_imbalance
from dfkd.losses import get_loss
from dfkd.nn import forward_batch


def _generator(tiny_teacher, **options):
    return AdversarialGraphGenerator.from_checkpoint(tiny_teacher, min_nodes=5, max_nodes=9, **options).build(0)


def _student(tiny_teacher):
    torch.manual_seed(0)
    return dfkd.build_model("gin-2-8", in_channels=tiny_teacher.feature_spec.dim, out_channels=2)


def _discrepancy(gen, student, seed=123, graphs=64):
    """The generator's objective on a fixed noise draw (higher = harder for the student)."""
    with torch.no_grad():
        batch = gen.decode(graphs, torch.Generator().manual_seed(seed)).weighted_batch()
        return get_loss("prob_mae")(forward_batch(student, batch), forward_batch(gen.teacher, batch)).item()


def test_registry_and_repr(tiny_teacher):
    assert get_generator_class("DFAD") is AdversarialGraphGenerator
    gen = AdversarialGraphGenerator.from_checkpoint(tiny_teacher, lr=0.01)
    assert repr(gen) == "AdversarialGraphGenerator(lr=0.01)"
    assert isinstance(gen, OnlineGraphGenerator) and gen.online
    with pytest.raises(RuntimeError, match="build"):
        gen.sample(4, torch.Generator())
    with pytest.raises(ValueError, match="unknown relaxation"):
        AdversarialGraphGenerator.from_checkpoint(tiny_teacher, relaxation="gumbel")
    with pytest.raises(ValueError, match="student_steps >= 1"):
        AdversarialGraphGenerator.from_checkpoint(tiny_teacher, student_steps=0)
    with pytest.raises(ValueError, match="no loss 'nope' registered"):
        AdversarialGraphGenerator.from_checkpoint(tiny_teacher, discrepancy="nope")
    for loss in ("gcrd", "lsp"):
        with pytest.raises(ValueError, match="use a logit loss"):
            AdversarialGraphGenerator.from_checkpoint(tiny_teacher, discrepancy=loss)


@pytest.mark.parametrize("relaxation", ["straight_through", "concrete"])
def test_generated_graphs_are_valid(tiny_teacher, relaxation, check_valid_graphs):
    graphs = _generator(tiny_teacher, relaxation=relaxation).generate(16, seed=0)
    check_valid_graphs(graphs, tiny_teacher.feature_spec, 5, 9)
    assert graphs.teacher_logits.shape == (16, 2)
    assert torch.equal(graphs.target, graphs.teacher_logits.argmax(-1))


def test_degree_encoded_features_follow_the_structure(check_valid_graphs):
    spec = FeatureSpec(dim=6, encoding="degree", max_degree=5)
    teacher = dfkd.build_model("gin-2-8", in_channels=6, out_channels=3)
    gen = AdversarialGraphGenerator(teacher, spec, 3, min_nodes=4, max_nodes=8).build(0)
    graphs = gen.generate(10, seed=1)
    check_valid_graphs(graphs, spec, 4, 8)
    for g in range(len(graphs)):
        data = graphs[g]
        deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes).clamp(max=5)
        assert torch.equal(data.x.argmax(-1), deg)
    # The relaxed batch the generator trains on carries the same degrees, with gradients.
    decoded = gen.decode(10, torch.Generator().manual_seed(1))
    assert decoded.x.requires_grad and torch.allclose(decoded.x.sum(-1), torch.ones(decoded.x.size(0)))


def test_gradients_reach_the_generator_through_teacher_and_student(tiny_teacher):
    gen, student = _generator(tiny_teacher), _student(tiny_teacher)
    terms = gen.generator_loss(student, 8, torch.Generator().manual_seed(0))
    grads = torch.autograd.grad(terms["loss"], list(gen.network.parameters()), allow_unused=True)
    named = dict(zip([n for n, _ in gen.network.named_parameters()], grads))
    for name in ("node_head.weight", "edge_head.weight", "trunk.0.weight"):
        assert named[name] is not None and named[name].abs().sum() > 0, name
    assert all(p.grad is None for p in gen.teacher.parameters())


def test_generator_step_leaves_student_and_teacher_untouched(tiny_teacher):
    gen, student = _generator(tiny_teacher), _student(tiny_teacher)
    student.train()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    teacher_before = {k: v.clone() for k, v in gen.teacher.state_dict().items()}
    gen.generator_step(student, 8, torch.Generator().manual_seed(0))
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())  # BN statistics too
    assert all(p.grad is None for p in student.parameters())
    assert all(torch.equal(teacher_before[k], v) for k, v in gen.teacher.state_dict().items())


@pytest.mark.parametrize("preset", [None, "paper"])
def test_the_game_the_distiller_runs_moves_the_discrepancy_both_ways(tiny_teacher, monkeypatch, preset):
    """Through dfkd.distill_student, as users run it (default: the student minimises KL at T=2 while the
    generator maximises the L1 distance of the probabilities; paper preset: L1 on the logits on both sides):
    generator steps raise the generator's discrepancy on a fixed noise draw, the student's steps lower it."""
    before, after = [], []
    step = AdversarialGraphGenerator.generator_step

    def measured(self, student, num_graphs, generator, ctx=None):
        def discrepancy():
            with torch.no_grad(), adversarial.student_mode(student, self.config.student_mode):
                batch = self.decode(64, torch.Generator().manual_seed(123)).weighted_batch()
                return self._discrepancy(forward_batch(student, batch), forward_batch(self.teacher, batch)).item()
        before.append(discrepancy())
        terms = step(self, student, num_graphs, generator, ctx)
        after.append(discrepancy())
        return terms

    monkeypatch.setattr(AdversarialGraphGenerator, "generator_step", measured)
    # The student in eval mode (no dropout noise in the generator's gradient or in the measurement).
    options = dict(min_nodes=5, max_nodes=9, lr=3e-3, student_steps=5, generator_steps=1, student_mode="eval")
    config = dfkd.preset_config("dfad", "paper", epochs=20, batch_size=16, checkpoint_every=0) \
        if preset else dfkd.DistillConfig(epochs=20, batch_size=16, checkpoint_every=0)
    dfkd.distill_student(tiny_teacher, student="gin-2-8", generator="dfad", num_graphs=80, preset=preset,
                         generator_options=options, config=config, show_progress=False)
    gen_moves = torch.tensor(after) - torch.tensor(before)
    student_moves = torch.tensor(before[1:]) - torch.tensor(after[:-1])
    assert len(gen_moves) == 20  # 5 batches an epoch, 20 epochs, a generator step every 5 student steps
    assert gen_moves.mean() > 0 and (gen_moves > 0).float().mean() > 0.5  # the generator maximises it
    assert student_moves.mean() < 0  # the student minimises it (through its own loss)


class _ConstantGenerator(OnlineGraphGenerator):
    """Always the same triangle: the degenerate generator collapse detection must catch."""

    def build(self, seed=0):
        self.network = torch.nn.Linear(1, 1)
        self.optimizer = torch.optim.SGD(self.network.parameters(), lr=0.1)
        return self

    def sample(self, num_graphs, generator, labels=None):
        x = torch.eye(self.feature_spec.dim)[torch.zeros(3 * num_graphs, dtype=torch.long)]
        edges = torch.tensor([[0, 1, 1, 2, 0, 2], [1, 0, 2, 1, 2, 0]])
        edge_index = torch.cat([edges + 3 * g for g in range(num_graphs)], 1)
        batch = Batch(x=x, edge_index=edge_index, batch=torch.arange(num_graphs).repeat_interleave(3))
        batch.teacher_logits = forward_batch(self.teacher, batch)
        batch.y = batch.teacher_logits.argmax(-1)
        return batch

    def generator_step(self, student, num_graphs, generator):
        return {"loss": 0.0}


def test_collapse_detection_fires_on_a_constant_generator(tiny_teacher):
    source = OnlineSource(_ConstantGenerator.from_checkpoint(tiny_teacher).build(), 40, batch_size=8)
    batches = list(source.batches(0, torch.Generator()))
    assert len(batches) == 5
    stats = source.epoch_stats()
    assert stats["collapsed"] is True and sorted(stats["class_histogram"]) == [0, 40]

    varied = OnlineSource(_generator(tiny_teacher, balance_weight=1.0), 64, batch_size=16)
    list(varied.batches(0, torch.Generator().manual_seed(0)))
    assert sum(varied.epoch_stats()["class_histogram"]) == 64


def test_online_source_updates_the_generator_every_k_student_steps(tiny_teacher):
    gen = _generator(tiny_teacher, student_steps=3, generator_steps=2)
    source, student = OnlineSource(gen, 32, batch_size=8), _student(tiny_teacher)
    calls = []
    real_step = gen.generator_step
    gen.generator_step = lambda *args: calls.append(1) or real_step(*args)
    rng = torch.Generator().manual_seed(0)
    for _ in range(7):
        source.update(student, rng)
    assert len(calls) == 2 * 2  # after student steps 3 and 6, two generator steps each
    assert "generator_adversarial" in source.epoch_stats()


def test_class_imbalance_term():
    assert class_imbalance(torch.zeros(4, 3)).item() == pytest.approx(0.0, abs=1e-6)
    one_class = torch.tensor([[10.0, -10.0]] * 4)
    assert class_imbalance(one_class).item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-3)


def test_non_finite_generator_loss_stops_with_a_clear_message(tiny_teacher):
    gen, student = _generator(tiny_teacher), _student(tiny_teacher)
    with torch.no_grad():
        gen.network.edge_head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss term"):
        gen.generator_step(student, 4, torch.Generator().manual_seed(0))


def test_replay_memory_adds_past_batches_and_survives_a_safe_checkpoint(tiny_teacher, tmp_path):
    from dfkd.checkpoint import atomic_save, safe_torch_load

    source = OnlineSource(_generator(tiny_teacher), 32, batch_size=8, replay=3)
    batches = list(source.batches(0, torch.Generator().manual_seed(0)))
    assert len(batches) == 4 + 3 and len(source.memory) == 3  # a replayed batch after every fresh one but the first
    assert torch.equal(batches[2].x, batches[0].x)  # the only batch in memory at the second replay
    path = str(tmp_path / "state.pt")
    atomic_save(source.state_dict(), path)
    restored = OnlineSource(_generator(tiny_teacher), 32, batch_size=8, replay=3)
    restored.load_state_dict(safe_torch_load(path))
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(source.memory, restored.memory))


def test_bn_prior_on_a_teacher_without_batchnorm_is_explained_and_skipped(caplog):
    spec = FeatureSpec(dim=4)
    teacher = dfkd.build_model("gin-2-8", in_channels=4, out_channels=2, batch_norm=False)
    with caplog.at_level("WARNING"):
        gen = AdversarialGraphGenerator(teacher, spec, 2, bn_weight=1.0, min_nodes=4, max_nodes=6).build(0)
    assert "BatchNorm prior disabled: the teacher has no BatchNorm layers" in caplog.text
    terms = gen.generator_loss(None, 4, torch.Generator().manual_seed(0))
    assert "bn" not in terms


def test_student_mode_eval_removes_dropout_from_the_generator_step_and_restores_the_mode(tiny_teacher):
    student = dfkd.build_model("gin-2-8", in_channels=tiny_teacher.feature_spec.dim, out_channels=2, dropout=0.5)
    student.train()

    def adversarial_term(mode):
        gen = _generator(tiny_teacher, student_mode=mode)
        return [gen.generator_loss(student, 16, torch.Generator().manual_seed(0))["adversarial"].item()
                for _ in range(2)]

    first, second = adversarial_term("eval")
    assert first == second and student.training  # no dropout noise; the distiller's mode is back
    first, second = adversarial_term("train")
    assert first != second  # dropout live
    with pytest.raises(ValueError, match="unknown student_mode 'x'"):
        _generator(tiny_teacher, student_mode="x")


def test_paper_game_is_the_l1_distance_of_the_logits_on_both_sides(tiny_teacher):
    """DFAD-GNN Eq. 3-5 under --preset paper: the generator minimises −(1/BC)Σ|S − T| on the logits of the graphs it
    decodes, the student minimises the same distance (the preset's student loss, ``mae``)."""
    gen = AdversarialGraphGenerator.from_checkpoint(tiny_teacher, preset="paper", min_nodes=5, max_nodes=9).build(0)
    assert gen.config.discrepancy == "mae" and get_generator_class("dfad").presets["paper"].distill["loss"] == "mae"
    student = _student(tiny_teacher)
    student.eval()
    gen.config = gen.config.replace(student_mode="eval")
    terms = gen.generator_loss(student, 12, torch.Generator().manual_seed(5))
    with torch.no_grad():
        batch = gen.decode(12, torch.Generator().manual_seed(5)).weighted_batch()
        s, t = forward_batch(student, batch), forward_batch(gen.teacher, batch)
    hand = (s - t).abs().sum() / s.numel()
    torch.testing.assert_close(terms["adversarial"].detach(), -hand)
    torch.testing.assert_close(get_loss("mae")(s, t), hand)


def test_a_teacher_without_edge_weights_sees_the_hard_graphs(tiny_teacher, caplog):
    """A foreign teacher whose forward is ``(x, edge_index, batch)``: the game still runs; edge gradients reach
    the generator through the student, node-type gradients through both."""

    class PlainTeacher(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, edge_index, batch):
            return self.inner(x, edge_index, batch)

    teacher = PlainTeacher(tiny_teacher.build_model())
    with caplog.at_level("WARNING"):
        gen = AdversarialGraphGenerator(teacher, tiny_teacher.feature_spec, 2, min_nodes=5, max_nodes=9).build(0)
    assert "the teacher's forward takes no edge_weight" in caplog.text
    student = _student(tiny_teacher)
    terms = gen.generator_loss(student, 16, torch.Generator().manual_seed(0))
    edge, node = torch.autograd.grad(terms["loss"], [gen.network.edge_head.weight, gen.network.node_head.weight])
    assert edge.abs().sum() > 0 and node.abs().sum() > 0
    gen.generator_step(student, 16, torch.Generator().manual_seed(1))  # a full step runs
    batch = gen.sample(8, torch.Generator().manual_seed(2))
    assert batch.teacher_logits.shape == (8, 2)
