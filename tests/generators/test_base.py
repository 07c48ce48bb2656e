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


def test_run_says_where_its_structure_comes_from(tiny_teacher, caplog):
    """One line per source; the fixed defaults used without statistics are a warning that names the fix."""
    import dataclasses
    import logging

    from dfkd.distill import make_generator

    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        make_generator("prior", tiny_teacher).build(0)
    [line] = [r for r in caplog.records if r.name == "dfkd.generators.base"]
    assert line.levelno == logging.INFO
    assert "from the checkpoint's training statistics: node counts" in line.getMessage()
    assert "degree dispersion" in line.getMessage() and "node types its training nodes' shares" in line.getMessage()

    caplog.clear()  # a checkpoint without node-type shares: read off the teacher's BatchNorm layer
    older = dataclasses.replace(tiny_teacher, size_stats=tiny_teacher.size_stats.replace(type_frequencies=None))
    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        make_generator("prior", older).build(0)
    lines = [r for r in caplog.records if r.name == "dfkd.generators.base"]
    assert [r.levelno for r in lines] == [logging.INFO, logging.INFO]
    assert "inferred from the teacher: node types from its first BatchNorm layer" in lines[0].getMessage()
    assert "from the checkpoint's training statistics: node counts" in lines[1].getMessage()

    caplog.clear()
    bare = dataclasses.replace(tiny_teacher, size_stats=None)
    with caplog.at_level(logging.INFO, logger="dfkd.generators.base"):
        make_generator("prior", bare, min_nodes=5, max_nodes=9, structure="checkpoint").build(0)
    records = [r for r in caplog.records if r.name == "dfkd.generators.base"]
    assert any("set by options: node counts 5-9" in r.getMessage() for r in records if r.levelno == logging.INFO)
    [warning] = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert "fixed defaults (neither the teacher nor its checkpoint" in warning and "mean degree 2.00" in warning and "Erdős–Rényi" in warning
    assert "node counts" not in warning and "--set" in warning
