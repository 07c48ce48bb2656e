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
    gen = ConditionalGraphGenerator.from_checkpoint(tiny_teacher, warmup_steps=300).build(0)  # MUTAG's sizes
    for c in (0, 1):
        graphs = gen.generate(40, seed=1, classes=[c])
        fidelity = float((graphs.teacher_logits.argmax(-1) == c).float().mean())
        assert fidelity >= 0.8, (c, fidelity)


def test_the_non_conditional_generator_refuses_a_class(tiny_teacher):
    from dfkd.generators import AdversarialGraphGenerator

    gen = AdversarialGraphGenerator.from_checkpoint(tiny_teacher).build(0)
    with pytest.raises(ValueError, match="conditional generator"):
        gen.generate(4, classes=[0])


def test_size_law_is_the_tilted_prior_and_keeps_its_spread(tiny_teacher):
    gen = _generator(tiny_teacher, size_temperature=0.5, size_explore=0.1, size_spread=0.0)  # sizes 5..9
    assert gen.size_ce.shape == (2, 5)
    uniform = torch.full((2, 5), 0.2)
    assert torch.allclose(gen.size_law(), uniform)  # nothing observed yet: the uniform prior
    gen.size_ce.copy_(torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0, 0.0]]))
    tilted = torch.softmax(-gen.size_ce / 0.5, -1)
    assert torch.allclose(gen.size_law(), 0.9 * tilted + 0.1 * uniform)  # q ∝ p·exp(-CE/τ), mixed with p
    # A required spread doubles the temperature until the law's perplexity covers 60% of the sizes.
    gen.config.size_spread = 0.6
    law = (gen.size_law() - 0.1 * uniform) / 0.9
    perplexity = torch.exp(-(law * law.log()).sum(-1))
    assert torch.all(perplexity >= 0.6 * 5) and torch.all(perplexity < 0.6 * 5 * 2)
    gen.config.size_temperature = 0.0  # off: sizes independent of the class
    assert torch.allclose(gen.size_law(), uniform)


def test_counts_follow_the_law_of_each_preset_label(tiny_teacher):
    gen = _generator(tiny_teacher, size_explore=0.0, size_spread=0.0)
    gen.size_ce.copy_(torch.tensor([[0.0, 9.0, 9.0, 9.0, 9.0], [9.0, 9.0, 9.0, 9.0, 0.0]]))
    labels = torch.tensor([0, 1] * 200)
    counts = gen.draw_counts(400, torch.Generator().manual_seed(0), labels)
    assert counts[labels == 0].eq(5).all() and counts[labels == 1].eq(9).all()
    assert gen.draw_counts(50, torch.Generator().manual_seed(0)).unique().numel() > 1  # no labels: uniform


def test_observed_cross_entropy_moves_the_cell_of_each_graph(tiny_teacher):
    from torch_geometric.data import Batch, Data

    gen = _generator(tiny_teacher, size_momentum=0.5)
    sizes, labels = [5, 5, 7], [0, 0, 1]
    batch = Batch.from_data_list([Data(x=torch.zeros(n, 7), edge_index=torch.zeros(2, 0, dtype=torch.long),
                                       y=torch.tensor([y])) for n, y in zip(sizes, labels)])
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, 0.0]])  # the last one misses its label
    ce = torch.nn.functional.cross_entropy(logits, batch.y, reduction="none")
    gen._observe(batch, logits, ce)
    expected = torch.zeros(2, 5)
    expected[0, 0] = 0.5 * (ce[0] + ce[1]) / 2  # class 0, size 5: half way to the mean of its two graphs
    expected[1, 2] = 0.5 * ce[2]
    assert torch.allclose(gen.size_ce, expected)
    assert gen.fidelity == pytest.approx(2 / 3)  # first observation: the batch's share


def test_degree_and_type_terms_match_hand_computed_values(tiny_teacher):
    from torch_geometric.data import Batch

    gen = _generator(tiny_teacher)
    assert gen.type_prior is not None  # one-hot MUTAG features: inverted from the teacher's BatchNorm
    # Path 0-1-2 (weights 1, 0.5) in both directions: node degrees 1, 1.5, 0.5.
    weight = torch.tensor([1.0, 0.5, 1.0, 0.5], requires_grad=True)
    x = torch.nn.functional.one_hot(torch.tensor([0, 0, 2]), 7).float()
    # Graph 0 (class 0) holds nodes 0 and 1, graph 1 (class 1) node 2.
    batch = Batch(x=x, edge_index=torch.tensor([[0, 1, 1, 2], [1, 2, 0, 1]]), edge_weight=weight,
                  batch=torch.tensor([0, 0, 1]), ptr=torch.tensor([0, 2, 3]), y=torch.tensor([0, 1]))
    degree = torch.tensor([1.0, 1.5, 0.5])
    target, var = gen.mean_degree(), gen.size_stats.degree_var
    expected = (degree.mean() / target - 1) ** 2 + (degree.std(unbiased=False) / var ** 0.5 - 1) ** 2
    loss = gen.degree_mismatch(batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.autograd.grad(loss, weight)[0].abs().sum() > 0  # differentiable in the edge weights
    prior = gen.type_prior.clamp(min=1e-8)
    kl = [float(-prior[0].log()), float(-prior[2].log())]  # each class holds a single type
    assert gen.type_mismatch(batch).item() == pytest.approx(sum(kl) / 2, rel=1e-5)
    batch.y = torch.tensor([0, 0])  # one class: the KL of its mixed frequencies (2/3, 1/3)
    freq = torch.tensor([2 / 3, 0, 1 / 3, 0, 0, 0, 0]).clamp(min=1e-8)
    assert gen.type_mismatch(batch).item() == pytest.approx(float((freq * (freq / prior).log()).sum()), rel=1e-5)
    batch.x = gen.type_prior.expand(3, 7)
    assert gen.type_mismatch(batch).item() == pytest.approx(0.0, abs=1e-6)  # the prior itself costs nothing
    terms = gen.generator_loss(None, 8, torch.Generator().manual_seed(0))
    assert {"label_ce", "degree", "types"} <= set(terms)


def test_warmup_stops_once_the_labels_are_met(tiny_teacher):
    gen = _generator(tiny_teacher, warmup_steps=40, warmup_min_steps=3, warmup_fidelity=0.0)
    assert gen._observed == 3  # met at once: the minimum
    gen = _generator(tiny_teacher, warmup_steps=5, warmup_min_steps=3, warmup_fidelity=1.1)
    assert gen._observed == 5  # never met: the maximum


def test_size_statistics_survive_a_state_round_trip(tiny_teacher):
    gen = _generator(tiny_teacher)
    gen.size_ce.uniform_()
    other = _generator(tiny_teacher)
    other.load_state_dict(gen.state_dict())
    assert torch.equal(other.size_ce, gen.size_ce)


@pytest.mark.parametrize("option", [dict(size_spread=1.5), dict(size_momentum=0.0), dict(type_weight=-1.0),
                                    dict(size_explore=2.0)])
def test_invalid_size_and_marginal_options_are_refused(tiny_teacher, option):
    with pytest.raises(ValueError, match="must"):
        ConditionalGraphGenerator.from_checkpoint(tiny_teacher, **option)
