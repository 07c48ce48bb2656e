"""Property-based tests (hypothesis) of the inputs dfkd builds on: the GIN-format reader, graph batching and
every registered generator's output, over random small configurations including 1-node graphs, isolated
nodes, empty edge sets and teachers with 1 or 100 classes."""
import os
import tempfile

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

import dfkd
from dfkd.data import DatasetFormatError, encode_graphs, read_gin_txt
from dfkd.data.gin_format import RawGraph
from dfkd.generators import SyntheticGraphSet, get_generator_class, list_generators

# Few, reproducible examples: the folder stays fast on one core; benchmarks/ can explore further.
SETTINGS = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# --- the GIN-format reader ---------------------------------------------------------------------------
@st.composite
def raw_graph(draw, min_nodes=0, max_nodes=7, attr_dim=None):
    n = draw(st.integers(min_nodes, max_nodes))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    undirected = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []  # may be empty
    adjacency = {i: [] for i in range(n)}
    for i, j in undirected:
        adjacency[i].append(j)
        adjacency[j].append(i)
    edges = [(i, j) for i in range(n) for j in adjacency[i]]  # the file lists each edge from both ends
    tags = draw(st.lists(st.integers(-3, 4), min_size=n, max_size=n))
    attrs = None
    if attr_dim:
        attrs = [draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=attr_dim, max_size=attr_dim))
                 for _ in range(n)] or None
    return RawGraph(label=draw(st.integers(-2, 3)), tags=tags, edges=edges, attrs=attrs)


def write_gin(graphs, path):
    """The GIN text format, as the benchmark files are written."""
    lines = [str(len(graphs))]
    for g in graphs:
        lines.append(f"{len(g.tags)} {g.label}")
        for i, tag in enumerate(g.tags):
            neighbours = [j for a, j in g.edges if a == i]
            attrs = [repr(v) for v in g.attrs[i]] if g.attrs else []
            lines.append(" ".join(map(str, [tag, len(neighbours), *neighbours])) + (" " + " ".join(attrs) if attrs else ""))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


@SETTINGS
@given(st.integers(0, 3).flatmap(lambda k: st.lists(raw_graph(attr_dim=k), max_size=5)))
def test_gin_reader_round_trip(graphs):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "TOY.txt")
        write_gin(graphs, path)
        assert read_gin_txt(path) == graphs


@SETTINGS
@given(st.lists(raw_graph(min_nodes=1), min_size=1, max_size=5))
def test_encoded_graphs_are_valid(graphs):
    data, spec, labels = encode_graphs(graphs)
    assert labels == sorted({g.label for g in graphs})
    for g, d in zip(graphs, data):
        n = len(g.tags)
        assert d.num_nodes == n and d.x.shape == (n, spec.dim)
        assert torch.all(d.x.sum(-1) == 1)  # one-hot rows, isolated nodes included
        assert labels[int(d.y)] == g.label
        pairs = set(map(tuple, d.edge_index.t().tolist()))
        assert pairs == set(g.edges) and len(pairs) == d.edge_index.size(1)  # symmetric, no duplicates
        if spec.encoding == "degree":
            degrees = torch.zeros(n, dtype=torch.long).index_add_(0, d.edge_index[1], torch.ones_like(d.edge_index[1]))
            assert torch.equal(d.x.argmax(-1), degrees.clamp(max=spec.max_degree))


@SETTINGS
@given(st.text(alphabet="0123456789 -.x\n", max_size=60))
def test_gin_reader_refuses_garbage_with_its_own_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "TOY.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            graphs = read_gin_txt(path)
        except DatasetFormatError as exc:
            assert str(exc).startswith(f"{path}:") and "\n" not in str(exc)
        else:
            assert all(isinstance(g, RawGraph) for g in graphs)


# --- batching ----------------------------------------------------------------------------------------
@st.composite
def synthetic_set(draw):
    dim = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=6))
    xs, edges, owner, offset = [], [], [], 0
    for g, n in enumerate(sizes):
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        chosen = draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []
        edges += [(offset + i, offset + j) for i, j in chosen] + [(offset + j, offset + i) for i, j in chosen]
        xs.append(torch.nn.functional.one_hot(torch.tensor(draw(st.lists(st.integers(0, dim - 1), min_size=n,
                                                                             max_size=n))), dim).float())
        owner += [g] * n
        offset += n
    edge_index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    classes = draw(st.integers(1, 4))
    graphs = SyntheticGraphSet.from_edges(
        torch.cat(xs), edge_index, torch.tensor(owner), len(sizes), torch.tensor([g % classes for g in range(len(sizes))]),
        dfkd.FeatureSpec(dim=dim), teacher_logits=torch.randn(len(sizes), classes,
                                                               generator=torch.Generator().manual_seed(len(edges))))
    return graphs, sizes, edges


@SETTINGS
@given(synthetic_set(), st.data())
def test_batch_equals_pyg_batch_of_the_graphs(built, data):
    graphs, sizes, edges = built
    assert len(graphs) == len(sizes) and graphs.num_nodes.tolist() == sizes
    assert int(graphs.num_edges.sum()) * 2 == len(edges)
    indices = data.draw(st.lists(st.integers(0, len(sizes) - 1), min_size=1, max_size=8))  # repeats allowed
    fast = graphs.batch(indices)
    slow = Batch.from_data_list([graphs[g] for g in indices])
    for key in ("x", "edge_index", "batch", "ptr", "y", "teacher_logits"):
        assert torch.equal(getattr(fast, key), getattr(slow, key)), key
    assert fast.num_graphs == len(indices)


@SETTINGS
@given(synthetic_set())
def test_synthetic_set_save_load_round_trip(built):
    graphs = built[0]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "s.pt")
        graphs.save(path)
        loaded = SyntheticGraphSet.load(path)
    for key in ("x", "edge_index", "node_ptr", "edge_ptr", "target", "teacher_logits"):
        assert torch.equal(getattr(loaded, key), getattr(graphs, key)), key


# --- every registered generator ----------------------------------------------------------------------
GENERATORS = list_generators()
# Small networks and few steps: validity, not quality, is under test.
FAST = {"gfkd": dict(iterations=2), "dfad": dict(hidden=[8], noise_dim=4, warmup_steps=1, student_steps=1),
        "conditional": dict(hidden=[8], noise_dim=4, label_dim=4, warmup_steps=1, student_steps=1)}


@st.composite
def teacher_setup(draw):
    encoding = draw(st.sampled_from(["one_hot", "degree", "continuous"]))
    dim = draw(st.integers(1, 5))
    spec = (dfkd.FeatureSpec(dim=dim, encoding="one_hot", categories=list(range(dim))) if encoding == "one_hot" else
            dfkd.FeatureSpec(dim=dim, encoding="degree", max_degree=dim - 1) if encoding == "degree" else
            dfkd.FeatureSpec(dim=dim, encoding="continuous"))
    classes = draw(st.sampled_from([1, 2, 3, 100]))
    low = draw(st.integers(1, 4))
    high = draw(st.integers(low, low + 5))
    arch = draw(st.sampled_from(["gin", "gcn"]))
    batch_norm = draw(st.booleans())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(draw(st.integers(0, 100)))
        teacher = dfkd.build_model(f"{arch}-1-4", in_channels=dim, out_channels=classes, batch_norm=batch_norm).eval()
    stats = draw(st.one_of(st.none(), st.builds(
        lambda lo, extra, deg: dfkd.GraphSizeStats(min_nodes=lo, max_nodes=lo + extra, mean_nodes=lo + extra / 2,
                                                   mean_degree=deg, degree_var=deg * 0.5),
        st.integers(1, 4), st.integers(0, 5), st.sampled_from([0.0, 0.5, 2.0]))))
    return dict(teacher=teacher, spec=spec, classes=classes, low=low, high=high, stats=stats,
                num_graphs=draw(st.integers(1, 5)), seed=draw(st.integers(0, 1000)),
                mean_degree=draw(st.sampled_from([None, 0.0, 1.0, 3.0])))


def _check_graph_batch(batch, spec, classes, num_graphs, low, high):
    """Validity of generated graphs as the student sees them."""
    counts = (batch.ptr[1:] - batch.ptr[:-1]) if hasattr(batch, "ptr") and batch.ptr is not None else \
        torch.bincount(batch.batch, minlength=num_graphs)
    assert batch.num_graphs == num_graphs and counts.numel() == num_graphs
    assert torch.all((counts >= low) & (counts <= high)), (counts, low, high)
    ei = batch.edge_index
    assert batch.x.shape == (int(counts.sum()), spec.dim) and torch.isfinite(batch.x).all()
    if spec.categorical:
        assert torch.all(batch.x.sum(-1) == 1) and set(batch.x.unique().tolist()) <= {0.0, 1.0}
    if ei.numel():
        assert ei.min() >= 0 and ei.max() < batch.x.size(0)
        assert not torch.any(ei[0] == ei[1]), "self-loop"
        assert torch.equal(batch.batch[ei[0]], batch.batch[ei[1]]), "edge across graphs"
    pairs = set(map(tuple, ei.t().tolist()))
    assert all((b, a) in pairs for a, b in pairs), "not symmetric"
    logits = batch.teacher_logits
    assert logits.shape == (num_graphs, classes) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", GENERATORS)
@SETTINGS
@given(setup=teacher_setup())
def test_every_generator_gives_valid_graphs(name, setup):
    cls = get_generator_class(name)
    fields = {f for f in cls.config_cls.__dataclass_fields__}
    options = dict(FAST.get(name, {}), min_nodes=setup["low"], max_nodes=setup["high"])
    if "mean_degree" in fields:
        options["mean_degree"] = setup["mean_degree"]
    gen = cls(setup["teacher"], setup["spec"], setup["classes"], size_stats=setup["stats"], **options)
    spec, classes, g = setup["spec"], setup["classes"], setup["num_graphs"]
    if cls.online:
        gen.build(setup["seed"])
        rng = torch.Generator().manual_seed(setup["seed"])
        batch = gen.sample(g, rng)
        _check_graph_batch(batch, spec, classes, g, setup["low"], setup["high"])
        assert batch.y.shape == (g,) and torch.all((batch.y >= 0) & (batch.y < classes))
        if name != "prior":  # one adversarial update against a student: finite terms
            student = dfkd.build_model("gin-1-4", in_channels=spec.dim, out_channels=classes, batch_norm=False)
            terms = gen.generator_step(student, max(g, 2), rng)
            assert all(v == v and abs(v) != float("inf") for v in terms.values()), terms
    else:
        graphs = gen.generate(g, seed=setup["seed"], show_progress=False)
        assert len(graphs) == g
        _check_graph_batch(graphs.batch(range(g)), spec, classes, g, setup["low"], setup["high"])
        assert torch.all((graphs.target >= 0) & (graphs.target < classes))
        if setup["mean_degree"] == 0.0 and name == "random":
            assert graphs.edge_index.numel() == 0  # asked for no edges: empty edge sets


def test_every_generator_is_covered():
    assert {"prior", "gfkd", "dfad", "conditional", "random"} <= set(GENERATORS)
