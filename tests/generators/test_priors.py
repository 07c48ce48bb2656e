import torch

import dfkd
from dfkd.generators.priors import estimate_type_prior
from dfkd.generators.structure import candidate_pairs, node_to_graph, sample_node_counts, undirected


def _random_structure(num_graphs=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    counts = sample_node_counts(num_graphs, 10, 28, gen)
    pairs, owner = candidate_pairs(counts)
    keep = torch.rand(pairs.size(1), generator=gen) < (2.2 / (counts.float() - 1))[owner]
    return undirected(pairs[:, keep]), node_to_graph(counts), num_graphs


def test_type_prior_recovers_the_training_composition(tiny_teacher, mutag):
    teacher = tiny_teacher.build_model()
    for p in teacher.parameters():
        p.requires_grad_(False)
    prior, residual = estimate_type_prior(teacher, 7, *_random_structure())
    train, _ = mutag.fold(1)
    real = torch.cat([mutag[i].x for i in train]).mean(0)
    assert torch.allclose(prior.sum(), torch.tensor(1.0), atol=1e-5)
    assert int(prior.argmax()) == int(real.argmax())  # carbon dominates both
    assert 0.5 * float((prior - real).abs().sum()) < 0.25  # total variation distance
    assert residual < 0.1


def test_no_batchnorm_means_no_prior():
    teacher = dfkd.build_model("gin-2-8", in_channels=4, out_channels=2, batch_norm=False)
    prior, residual = estimate_type_prior(teacher, 4, *_random_structure(8))
    assert prior is None
