import pytest
import torch

from dfkd.generators import ConditionalGraphGenerator, get_generator_class


def _generator(tiny_teacher, **options):
    options = dict(dict(min_nodes=5, max_nodes=9, warmup_steps=0), **options)
    return ConditionalGraphGenerator.from_checkpoint(tiny_teacher, **options).build(0)


def test_registry_and_defaults(tiny_teacher):
    assert get_generator_class("conditional") is ConditionalGraphGenerator
    gen = ConditionalGraphGenerator.from_checkpoint(tiny_teacher)
    assert gen.conditional and gen.config.adversarial_weight == 0.0 and gen.config.warmup_steps > 0
    assert gen.recommended_loss == "kl,label_ce=0.5,attention=1"


def test_preset_labels_travel_with_the_batch(tiny_teacher, check_valid_graphs):
    gen = _generator(tiny_teacher)
    batch = gen.sample(10, torch.Generator().manual_seed(0))
    assert torch.bincount(batch.y, minlength=2).tolist() == [5, 5]  # balanced
    graphs = gen.generate(6, seed=0, classes=[1])
    check_valid_graphs(graphs, tiny_teacher.feature_spec, 5, 9)
    assert graphs.target.tolist() == [1] * 6
    with pytest.raises(ValueError, match="out of range"):
        gen.generate(4, classes=[2])


def test_label_cross_entropy_gradient_reaches_the_label_embedding(tiny_teacher):
    gen = _generator(tiny_teacher)
    terms = gen.generator_loss(None, 8, torch.Generator().manual_seed(0))
    assert set(terms) >= {"label_ce", "loss"} and "adversarial" not in terms
    grad = torch.autograd.grad(terms["label_ce"], gen.label_embedding.weight)[0]
    assert grad.abs().sum() > 0


def test_asking_for_a_class_yields_graphs_of_that_class(tiny_teacher):
    """Conditioning works: after warm-up, graphs asked for class y are classified y well above chance."""
    gen = _generator(tiny_teacher, warmup_steps=300)
    for c in (0, 1):
        graphs = gen.generate(40, seed=1, classes=[c])
        fidelity = float((graphs.teacher_logits.argmax(-1) == c).float().mean())
        assert fidelity >= 0.8, (c, fidelity)


def test_the_non_conditional_generator_refuses_a_class(tiny_teacher):
    from dfkd.generators import AdversarialGraphGenerator

    gen = AdversarialGraphGenerator.from_checkpoint(tiny_teacher).build(0)
    with pytest.raises(ValueError, match="conditional generator"):
        gen.generate(4, classes=[0])
