"""Degree law inferred from a teacher's BatchNorm statistics (dfkd.generators.inference)."""
import logging
import math

import pytest
import torch
import torch.nn.functional as F

import dfkd
from dfkd.config import FeatureSpec
from dfkd.generators.inference import (choose_law, infer_degree_law, layer_mismatch, looks_initialised,
                                       support_degree_law, trained_columns)
from dfkd.generators.structure import node_to_graph, sample_node_counts, sample_structure, undirected
from dfkd.generators.synthetic import degree_features
from dfkd.nn import call_model

MEANS, DISPERSIONS = (2.0, 3.0, 6.0), (0.25, 1.0, 4.0)


def _teacher_trained_on(spec, mean, dispersion, arch="gin-3-16"):
    """A teacher whose BatchNorm running statistics are exactly those of graphs of a known degree law
    (cumulative averages over 20 batches; the weights stay random: only the statistics matter here)."""
    torch.manual_seed(0)
    model = dfkd.build_model(arch, in_channels=spec.dim, out_channels=2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None  # cumulative moving average
            m.reset_running_stats()
    gen = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(20):
            counts = sample_node_counts(64, 10, 30, gen)
            edges = undirected(sample_structure(counts, mean, dispersion, gen))
            n = int(counts.sum())
            x = (degree_features(edges, n, spec) if spec.encoding == "degree" else
                 F.one_hot(torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), n, True, generator=gen), 3).float())
            call_model(model, x, edges, node_to_graph(counts), 64)
    return model.eval()


@pytest.mark.parametrize("spec, mean, dispersion", [
    (FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2]), 3.0, 0.25),
    (FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2]), 2.0, 4.0),
    (FeatureSpec(dim=20, encoding="degree", max_degree=19), 6.0, 1.0),
])
def test_the_law_the_statistics_were_taken_on_is_recovered(spec, mean, dispersion):
    teacher = _teacher_trained_on(spec, mean, dispersion)
    law = infer_degree_law(teacher, spec, (10, 30), num_graphs=64, mean_degrees=MEANS, dispersions=DISPERSIONS)
    assert (law.mean_degree, law.dispersion) == (mean, dispersion)
    assert law.method == "batchnorm-grid" and law.degree_var == mean * dispersion
    # a degree-encoded teacher's law is read off its first BatchNorm layer only (the deeper ones get weight 0)
    bn_layers = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in teacher.modules())
    assert law.layers == (1 if spec.encoding == "degree" else bn_layers) and bn_layers > 1


def test_connected_graphs_bound_the_mean_degree_from_below():
    """Connected graphs of at least 10 nodes have mean degree >= 1.8: sparser laws are not candidates unless
    the caller says the training graphs may be disconnected."""
    spec = FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2])
    teacher = _teacher_trained_on(spec, 1.0, 1.0)
    grid = dict(num_graphs=64, mean_degrees=(1.0, 2.0, 4.0), dispersions=(1.0,), probes=1)
    assert infer_degree_law(teacher, spec, (10, 30), **grid).mean_degree == 2.0
    assert infer_degree_law(teacher, spec, (10, 30), connected=False, **grid).mean_degree == 1.0
    assert infer_degree_law(teacher, spec, (2, 30), **grid).mean_degree == 1.0  # a tree on 2 nodes: 1.0


def test_mismatch_is_per_layer_and_zero_only_for_matching_statistics():
    spec = FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2])
    teacher = _teacher_trained_on(spec, 3.0, 1.0)
    gen = torch.Generator().manual_seed(5)
    counts = sample_node_counts(64, 10, 30, gen)
    graph = node_to_graph(counts)
    x = F.one_hot(torch.multinomial(torch.tensor([0.6, 0.3, 0.1]), graph.numel(), True, generator=gen), 3).float()
    near = layer_mismatch(teacher, x, undirected(sample_structure(counts, 3.0, 1.0, gen)), graph, 64)
    far = layer_mismatch(teacher, x, undirected(sample_structure(counts, 8.0, 1.0, gen)), graph, 64)
    bns = sum(isinstance(m, torch.nn.BatchNorm1d) for m in teacher.modules())
    assert near.shape == far.shape == (bns,)
    assert (near < far).all() and near.max() < 0.5


def test_no_batchnorm_no_inference():
    spec = FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2])
    teacher = dfkd.build_model("gin-2-8", in_channels=3, out_channels=2, batch_norm=False).eval()
    assert infer_degree_law(teacher, spec, (10, 30)) is None


@pytest.fixture
def small_grid(monkeypatch):
    """The generators' inference on a 3 x 3 grid (fast); records each call."""
    import dfkd.generators.base as base

    calls, original = [], base.infer_degree_law

    def infer(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs, mean_degrees=MEANS, dispersions=DISPERSIONS)

    monkeypatch.setattr(base, "infer_degree_law", infer)
    return calls


def test_prior_generator_takes_its_law_from_the_teacher_when_asked(caplog, small_grid):
    spec = FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2])
    ckpt = dfkd.Checkpoint.from_module(_teacher_trained_on(spec, 3.0, 0.25), feature_spec=spec, num_classes=2)
    with pytest.raises(ValueError, match="unknown structure source 'data'"):
        dfkd.generators.PriorConfig(structure="data")
    from dfkd.distill import make_generator

    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        gen = make_generator("prior", ckpt, structure="auto").build(0)  # no statistics: from the teacher
    assert gen.degree_law() == (3.0, 0.25) and small_grid
    assert any("inferred from the teacher" in r.getMessage() and "mean degree 3.00 (BatchNorm statistics)"
               in r.getMessage() for r in caplog.records)
    assert make_generator("prior", ckpt, structure="checkpoint").build(0).degree_law() == (2.0, 1.0)  # fallbacks
    assert make_generator("prior", ckpt, structure="teacher", mean_degree=5.0).build(0).degree_law() == (5.0, 0.25)


@pytest.mark.parametrize("name", ["gfkd", "dfad", "conditional"])
def test_every_generator_reads_a_teacher_only_law(name, small_grid, caplog):
    from dfkd.distill import make_generator

    spec = FeatureSpec(dim=3, encoding="one_hot", categories=[0, 1, 2])
    ckpt = dfkd.Checkpoint.from_module(_teacher_trained_on(spec, 3.0, 0.25), feature_spec=spec, num_classes=2)
    with pytest.raises(ValueError, match="unknown structure source"):
        make_generator(name, ckpt, structure="data")
    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        gen = make_generator(name, ckpt, iterations=0) if name == "gfkd" else make_generator(name, ckpt)
        if name == "gfkd":
            graphs = gen.generate(64, seed=0, show_progress=False)
            degree = 2 * graphs.num_edges.sum() / graphs.num_nodes.sum()
            assert abs(float(degree) - 3.0) < 0.6  # the start follows the inferred law (fallback: 2)
        else:
            gen.build(0)
    assert (gen.mean_degree(), gen.degree_dispersion()) == (3.0, 0.25) and small_grid
    assert any("inferred from the teacher" in r.getMessage() and "mean degree 3.00" in r.getMessage()
               for r in caplog.records)
    fallback = make_generator(name, ckpt, structure="checkpoint")
    fallback.infer_structure(0)
    assert fallback.inferred_law is None and fallback.mean_degree() == 2.0


def _train_on_columns(model, dim, columns, steps=100):
    """Adam steps on random graphs whose one-hot node features only ever switch on ``columns``."""
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    counts = sample_node_counts(16, 6, 12, gen)
    edges, graph = undirected(sample_structure(counts, 2.0, 1.0, gen)), node_to_graph(counts)
    choice = torch.tensor(columns)[torch.randint(len(columns), (graph.numel(),), generator=gen)]
    x, y = F.one_hot(choice, dim).float(), torch.randint(2, (16,), generator=gen)
    for _ in range(steps):
        loss = F.cross_entropy(call_model(model, x, edges, graph, 16), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("arch", ["gin-2-32", "gcn-2-32"])
def test_trained_columns_are_exactly_those_training_switched_on(arch):
    torch.manual_seed(0)
    model = dfkd.build_model(arch, in_channels=6, out_channels=2, batch_norm=False)
    assert trained_columns(model, 6) is None  # freshly initialised: nothing stands out
    _train_on_columns(model, 6, [0, 2, 3])
    assert trained_columns(model, 6).tolist() == [True, False, True, True, False, False]
    assert trained_columns(model, 5) is None  # no weight of that width


def test_trained_columns_test_for_the_initial_draw_not_for_the_larger_bound():
    # A Glorot-initialised layer on 7 types (bound sqrt(6/71) = 0.29, Kaiming's 1/sqrt(7) = 0.38), as in a
    # PyG convolution: training moved column 2 to 0.32, inside the Kaiming bound but off its own draw.
    layer = torch.nn.Linear(7, 64)
    glorot = (6 / 71) ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-glorot, glorot, generator=torch.Generator().manual_seed(0))
        layer.weight[:, 2] *= 1.1
        layer.weight[:, 4] *= 0.5  # shrunk (weight decay): no entry near the bound any more
    assert trained_columns(layer, 7).tolist() == [False, False, True, False, True, False, False]
    assert looks_initialised(layer.weight, glorot).tolist() == [True, True, False, True, False, True, True]
    with torch.no_grad():  # a custom initialisation (normal, small): no column is a uniform draw
        layer.weight.normal_(0, 0.01, generator=torch.Generator().manual_seed(1))
    assert trained_columns(layer, 7) is None


def test_support_law_is_log_uniform_over_the_first_run_of_trained_degrees():
    columns = torch.zeros(80, dtype=torch.bool)
    columns[[0, *range(1, 41), 42, 43, 71]] = True
    law = support_degree_law(columns)
    mean = 39 / math.log(40)
    assert law.method == "weight-support" and law.mean_degree == pytest.approx(mean)
    assert law.degree_var == pytest.approx(1599 / (2 * math.log(40)) - mean ** 2)
    only_one = torch.zeros(10, dtype=torch.bool)
    only_one[[0, 3, 5]] = True  # no two consecutive degrees >= 1
    assert support_degree_law(only_one) is None


def test_prior_reads_a_teacher_without_batchnorm_off_its_first_layer(caplog):
    from dfkd.distill import make_generator

    torch.manual_seed(0)
    types = FeatureSpec(dim=4, encoding="one_hot", categories=[0, 1, 2, 3])
    teacher = _train_on_columns(dfkd.build_model("gin-2-32", in_channels=4, out_channels=2, batch_norm=False), 4, [0, 1])
    ckpt = dfkd.Checkpoint.from_module(teacher, feature_spec=types, num_classes=2)
    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        gen = make_generator("prior", ckpt).build(0)
    assert gen.type_probs.tolist() == [0.5, 0.5, 0.0, 0.0]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "uniform among the 2 of 4 its first layer was trained on (columns 0-1;" in warning
    assert "type_frequencies" in warning

    degrees = FeatureSpec(dim=12, encoding="degree", max_degree=11)
    teacher = _train_on_columns(dfkd.build_model("gin-2-32", in_channels=12, out_channels=2, batch_norm=False), 12,
                                list(range(1, 9)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        gen = make_generator("prior", dfkd.Checkpoint.from_module(teacher, feature_spec=degrees, num_classes=2)).build(0)
    assert gen.inferred_law.method == "weight-support"
    assert gen.degree_law()[0] == pytest.approx(7 / math.log(8))
    assert any("degrees its first layer was trained on" in r.getMessage() for r in caplog.records)


def test_choose_law_takes_all_layers_law_or_the_first_layers_mean_degree():
    laws = [(m, d) for m in (2.0, 3.5, 5.0) for d in (0.25, 1.0)]
    # Two layers. The first alone is matched best at (3.5, 1.0); with weights 1 / (1 + min) = 1 / 1.1 and 1,
    # both together at (5.0, 0.25) (weighted sum 0.3 / 1.1 + 0, the next 0.5 / 1.1 + 1 at (3.5, 0.25)).
    table = torch.tensor([[0.9, 2.0], [0.8, 2.0],    # mean 2.0
                          [0.5, 1.0], [0.1, 3.0],    # mean 3.5
                          [0.3, 0.0], [0.6, 0.5]])   # mean 5.0
    best, weights, score = choose_law(table, laws)
    assert laws[best] == (5.0, 0.25) and score == pytest.approx((0.3 / 1.1) / (1 / 1.1 + 1.0))
    assert torch.allclose(weights, torch.tensor([1 / 1.1, 1.0]))
    best, _, score = choose_law(table, laws, mean_from="first-layer")
    assert laws[best] == (3.5, 0.25) and score == pytest.approx((0.5 / 1.1 + 1.0) / (1 / 1.1 + 1.0))
    # Degree-encoded features weigh the first layer only: its own minimum, dispersion included.
    best, weights, _ = choose_law(table, laws, first_layer_only=True)
    assert laws[best] == (3.5, 1.0) and weights[1] == 0
    with pytest.raises(ValueError, match="unknown mean_from"):
        choose_law(table, laws, mean_from="last-layer")
