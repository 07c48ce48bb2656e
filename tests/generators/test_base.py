import pytest

from dfkd.generators import RandomGraphGenerator, get_generator_class


def test_mean_degree_zero_is_a_value_not_unset(tiny_teacher):
    gen = RandomGraphGenerator.from_checkpoint(tiny_teacher)
    assert gen.mean_degree(0.0) == 0.0 and gen.mean_degree(3.5) == 3.5
    assert gen.mean_degree() == pytest.approx(tiny_teacher.size_stats.mean_degree)
    gen.size_stats = None
    assert gen.mean_degree() == 2.0


@pytest.mark.parametrize("name, options", [("gfkd", {"init_degree": 0.0, "iterations": 1, "degree_law": False}),
                                           ("random", {"mean_degree": 0.0}), ("prior", {"mean_degree": 0.0})])
def test_generators_honour_a_zero_degree(tiny_teacher, name, options):
    cls = get_generator_class(name)
    default = {k: v for k, v in options.items() if not k.endswith("degree")}
    edges = [cls.from_checkpoint(tiny_teacher, **o).generate(16, seed=0, show_progress=False).summary()["mean_edges"]
             for o in (options, default)]
    # (Almost) edgeless, not the teacher's degree (GFKD keeps a small floor probability on every pair).
    assert edges[0] < 0.2 * edges[1]
