r"""Synthetic graph-regression tasks the project makes itself: offline, deterministic, exact targets.

``make_regression_dataset("TRIANGLES")`` draws random graphs from five families (Erdős–Rényi,
Barabási–Albert, Holme–Kim power-law cluster, random geometric, Watts–Strogatz; 10-30 nodes by
default, mean degree about 3.6) with a one-hot node type per node (three types drawn with
probabilities 0.5 / 0.3 / 0.2, independent of the structure), and computes with networkx:

* ``TRIANGLES``: the number of triangles divided by the number of nodes (a 4-clique has 4 triangles,
  target 1.0); over the default 1000 graphs mean 0.85, std 0.98, max about 9.
* ``CLUSTERING``: the average local clustering coefficient (nodes of degree < 2 count as 0), in [0, 1];
  mean 0.31, std 0.22.

The same ``(name, num_graphs, seed, min_nodes, max_nodes)`` always gives the same graphs (Python's
``random.Random`` seeds networkx's generators; no numpy or torch random state is used). The datasets
load through :func:`dfkd.data.load_dataset` as ``SYNTH:TRIANGLES`` or ``SYNTH:CLUSTERING[:NUM_GRAPHS[:SEED]]``
and split like the classification ones (``fold(k)``, ``holdout``): the strata are ten quantile bins of
the target, so both parts cover the whole range.
"""
from __future__ import annotations

import random
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from dfkd.config import FeatureSpec
from dfkd.data.splits import stratified_kfold

REGRESSION_TASKS = ("TRIANGLES", "CLUSTERING")
FAMILIES = ("erdos_renyi", "barabasi_albert", "holme_kim", "geometric", "watts_strogatz")
NODE_TYPE_PROBS = (0.5, 0.3, 0.2)
DEFAULT_NUM_GRAPHS = 1000
NUM_STRATA = 10
PREFIX = "SYNTH:"


def triangle_count(graph) -> int:
    """Number of triangles of an undirected networkx graph (a triangle: 1; a 4-clique: 4)."""
    import networkx as nx

    return sum(nx.triangles(graph).values()) // 3


def graph_target(graph, task: str) -> float:
    """The exact target of ``task`` for one networkx graph: triangles per node or average clustering."""
    import networkx as nx

    task = task.upper()
    if task == "TRIANGLES":
        return triangle_count(graph) / max(graph.number_of_nodes(), 1)
    if task == "CLUSTERING":
        return float(nx.average_clustering(graph)) if graph.number_of_nodes() else 0.0
    raise ValueError(f"unknown regression task {task!r}: choose one of {', '.join(REGRESSION_TASKS)}")


def random_graph(rng: random.Random, min_nodes: int, max_nodes: int) -> Tuple[object, str]:
    """One graph of a random family with random parameters: ``(networkx.Graph, family)``."""
    import networkx as nx

    n = rng.randint(min_nodes, max_nodes)
    family = rng.choice(FAMILIES)
    seed = rng.randrange(2 ** 31)
    if family == "erdos_renyi":
        graph = nx.gnp_random_graph(n, min(1.0, rng.uniform(1.5, 5.0) / max(n - 1, 1)), seed=seed)
    elif family == "barabasi_albert":
        graph = nx.barabasi_albert_graph(n, min(rng.choice((1, 2, 3)), n - 1), seed=seed)
    elif family == "holme_kim":
        graph = nx.powerlaw_cluster_graph(n, min(rng.choice((1, 2, 3)), n - 1), rng.uniform(0.2, 0.9), seed=seed)
    elif family == "geometric":
        graph = nx.random_geometric_graph(n, rng.uniform(0.12, 0.3), seed=seed)
    else:
        graph = nx.watts_strogatz_graph(n, min(rng.choice((2, 4, 6)), n - 1), rng.uniform(0.0, 0.4), seed=seed)
    return graph, family


def graph_to_data(graph, types: Sequence[int], num_types: int, target: float) -> Data:
    """A networkx graph (nodes ``0..n-1``) with node ``types`` as PyG ``Data``: ``x [n, num_types]``
    one-hot, ``edge_index [2, 2m]`` (both directions), ``y [1]`` float."""
    n = graph.number_of_nodes()
    edges = [(a, b) for a, b in graph.edges() if a != b]
    ei = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    ei = torch.cat([ei, ei.flip(0)], dim=1)
    ei = torch.unique(ei, dim=1) if ei.numel() else ei
    x = torch.nn.functional.one_hot(torch.tensor(list(types), dtype=torch.long), num_types).float()
    return Data(x=x, edge_index=ei, y=torch.tensor([float(target)]), num_nodes=n)


def quantile_strata(targets: Tensor, num_strata: int = NUM_STRATA) -> List[int]:
    """``[G]`` stratum of every target: its quantile bin (0..num_strata-1), by rank, ties by index."""
    g = targets.numel()
    order = torch.argsort(targets.view(-1), stable=True)
    strata = torch.empty(g, dtype=torch.long)
    strata[order] = torch.arange(g) * max(1, min(num_strata, g)) // max(g, 1)
    return strata.tolist()


class SyntheticRegressionDataset(InMemoryDataset):
    """A graph-regression dataset made in memory (see the module docstring).

    Every graph has ``x [n, F]`` one-hot node types, ``edge_index [2, E]`` and ``y [1]`` (float32).

    Attributes:
        name: ``SYNTH:<TASK>`` (with ``:NUM_GRAPHS:SEED`` when not the defaults).
        task: ``"regression"`` (classification datasets have no such attribute or ``"classification"``).
        feature_spec: one-hot node types.
        label_values: empty (regression has no classes).
        num_targets: outputs per graph (1).
        families: the generator family of each graph.
    """

    task = "regression"

    def __init__(self, data_list: List[Data], name: str, feature_spec: FeatureSpec, families: List[str],
                 meta: Optional[Dict[str, object]] = None):
        super().__init__(root=None, log=False)
        self.name = name
        self._data, self.slices = self.collate(data_list)
        self.feature_spec = feature_spec
        self.label_values: List[object] = []
        self.families = list(families)
        self.meta = dict(meta or {})
        self._strata = quantile_strata(self.targets)
        self._folds = None

    @property
    def num_targets(self) -> int:
        return 1

    @property
    def num_classes(self) -> int:
        """The model's output width: ``num_targets`` (regression)."""
        return self.num_targets

    @property
    def targets(self) -> Tensor:
        """``[G]`` float targets."""
        return self._data.y.view(-1).float()

    @property
    def labels(self) -> List[int]:
        """Split strata, not targets: the quantile bin of every graph's target (keeps both parts of a
        split spread over the whole target range)."""
        return list(self._strata)

    def fold(self, k: int) -> Tuple[List[int], List[int]]:
        """Train/test indices of fold ``k`` (1..10) of a seeded 10-fold split stratified by target bins."""
        if not 1 <= k <= 10:
            raise ValueError(f"fold must be in 1..10, got {k}")
        if self._folds is None:
            self._folds = stratified_kfold(self._strata, 10, seed=0)
        return self._folds[k - 1]


def make_regression_dataset(name: str = "TRIANGLES", num_graphs: int = DEFAULT_NUM_GRAPHS, seed: int = 0,
                            min_nodes: int = 10, max_nodes: int = 30,
                            type_probs: Sequence[float] = NODE_TYPE_PROBS) -> SyntheticRegressionDataset:
    """Make a synthetic graph-regression dataset (deterministic, offline).

    Args:
        name: ``TRIANGLES`` (triangles per node) or ``CLUSTERING`` (average clustering coefficient).
        num_graphs: graphs to draw.
        seed: seeds every random choice (family, size, parameters, node types).
        min_nodes, max_nodes: node-count range (uniform).
        type_probs: probability of each one-hot node type (its length is the feature width).

    Returns:
        a :class:`SyntheticRegressionDataset` with ``y [1]`` float targets per graph.
    """
    task = name.upper()
    if task.startswith(PREFIX):
        task = task[len(PREFIX):]
    if task not in REGRESSION_TASKS:
        raise ValueError(f"unknown regression task {name!r}: choose one of {', '.join(REGRESSION_TASKS)}")
    if num_graphs < 2:
        raise ValueError(f"num_graphs must be >= 2, got {num_graphs}")
    if not 3 <= min_nodes <= max_nodes:
        raise ValueError(f"invalid node range {min_nodes}:{max_nodes}: need 3 <= min_nodes <= max_nodes")
    rng = random.Random(seed)
    num_types = len(type_probs)
    data_list, families = [], []
    for _ in range(num_graphs):
        graph, family = random_graph(rng, min_nodes, max_nodes)
        types = rng.choices(range(num_types), weights=type_probs, k=graph.number_of_nodes())
        data_list.append(graph_to_data(graph, types, num_types, graph_target(graph, task)))
        families.append(family)
    spec = FeatureSpec(dim=num_types, encoding="one_hot", categories=list(range(num_types)))
    defaults = num_graphs == DEFAULT_NUM_GRAPHS and seed == 0
    full_name = f"{PREFIX}{task}" if defaults else f"{PREFIX}{task}:{num_graphs}:{seed}"
    return SyntheticRegressionDataset(data_list, full_name, spec, families,
                                      meta={"task": task, "num_graphs": num_graphs, "seed": seed,
                                            "min_nodes": min_nodes, "max_nodes": max_nodes})


def load_synthetic(spec: str) -> SyntheticRegressionDataset:
    """``SYNTH:TASK[:NUM_GRAPHS[:SEED]]`` → :func:`make_regression_dataset`; a one-line error naming the form."""
    parts = spec.strip().split(":")
    if parts[0].upper() + ":" != PREFIX or not 2 <= len(parts) <= 4:
        raise ValueError(f"bad synthetic dataset {spec!r}: write SYNTH:TASK[:NUM_GRAPHS[:SEED]], "
                         f"TASK one of {', '.join(REGRESSION_TASKS)}")
    try:
        numbers = [int(p) for p in parts[2:]]
    except ValueError:
        raise ValueError(f"bad synthetic dataset {spec!r}: write SYNTH:TASK[:NUM_GRAPHS[:SEED]] with integer "
                         "NUM_GRAPHS and SEED, e.g. SYNTH:TRIANGLES:500:1") from None
    return make_regression_dataset(parts[1], *numbers)


def is_regression_dataset(dataset) -> bool:
    """Whether a dataset holds regression targets: its ``task`` attribute, else floating-point ``y``."""
    task = getattr(dataset, "task", None)
    if isinstance(task, str):
        return task == "regression"
    first = dataset[0] if len(dataset) else None
    return first is not None and getattr(first, "y", None) is not None and torch.is_floating_point(first.y)

