import torch

from dfkd.generators import RandomGraphGenerator


def test_random_graphs_are_labelled_by_the_teacher(tiny_teacher):
    gen = RandomGraphGenerator.from_checkpoint(tiny_teacher, mean_degree=3.0, min_nodes=20, max_nodes=20)
    graphs = gen.generate(50, seed=1, show_progress=False)
    assert torch.equal(graphs.target, graphs.teacher_logits.argmax(-1))
    mean_degree = 2 * graphs.num_edges.float().mean() / 20
    assert 2.4 < mean_degree < 3.6
    assert torch.all(graphs.x.sum(-1) == 1)
