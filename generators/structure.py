"""Batched bookkeeping for many small graphs held as flat tensors (no per-graph Python loops)."""
from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

import torch
from torch import Tensor


# Above this many nodes in a graph, structures are drawn without enumerating all O(n²) node pairs.
SPARSE_NODES = 256


def sample_node_counts(num_graphs: int, low: int, high: int, generator: torch.Generator) -> Tensor:
    """``[G]`` node counts drawn uniformly from ``[low, high]`` (inclusive)."""
    return torch.randint(low, high + 1, (num_graphs,), generator=generator)


def node_to_graph(num_nodes: Tensor) -> Tensor:
    """``[N]`` graph index of every node for per-graph node counts ``[G]``."""
    return torch.repeat_interleave(torch.arange(num_nodes.numel(), device=num_nodes.device), num_nodes)


def candidate_pairs(num_nodes: Tensor) -> Tuple[Tensor, Tensor]:
    """All unordered node pairs ``i < j`` inside each graph, with global node indices.

    One ``triu_indices`` per distinct graph size, broadcast over the graphs of that size.

    Args:
        num_nodes: ``[G]`` node count per graph.

    Returns:
        ``(pair_index [2, P], pair_graph [P])`` sorted by graph, ``P = Σ n_g (n_g - 1) / 2``.
    """
    offsets = torch.cat([num_nodes.new_zeros(1), num_nodes.cumsum(0)[:-1]])
    chunks, owners = [], []
    for n in torch.unique(num_nodes).tolist():
        graphs = (num_nodes == n).nonzero().view(-1)
        tri = torch.triu_indices(n, n, 1, device=num_nodes.device)  # [2, n(n-1)/2]
        chunks.append((tri.unsqueeze(1) + offsets[graphs].view(1, -1, 1)).reshape(2, -1))
        owners.append(graphs.repeat_interleave(tri.size(1)))
    if not chunks:
        return num_nodes.new_zeros(2, 0), num_nodes.new_zeros(0)
    pairs, owner = torch.cat(chunks, 1), torch.cat(owners)
    # Global indices grow with the graph index, so sorting by (i, j) also sorts by graph.
    order = torch.argsort(pairs[0] * int(num_nodes.sum()) + pairs[1])
    return pairs[:, order], owner[order]


def random_partners(nodes: Tensor, node_graph: Tensor, num_nodes: Tensor, generator: torch.Generator) -> Tensor:
    """``[M]`` a uniformly random *other* node of the same graph for every node in ``nodes [M]`` (global
    indices; a node of a one-node graph gets itself).

    Args:
        nodes: ``[M]`` global node indices.
        node_graph: ``[N]`` graph of every node.
        num_nodes: ``[G]`` node count per graph.
    """
    graph = node_graph[nodes]
    n = num_nodes[graph]
    start = node_offsets(num_nodes)[:-1][graph]
    u = torch.rand(nodes.numel(), generator=generator, dtype=torch.float64).to(nodes.device)
    j = start + (u * (n - 1).clamp(min=1)).long().clamp(max=(n - 2).clamp(min=0))
    return torch.where(n > 1, j + (j >= nodes).long(), nodes)


def random_candidate_pairs(num_nodes: Tensor, per_node: int, generator: torch.Generator,
                           include: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Sparse candidate pairs: ``per_node`` random partners of every node inside its graph (deduplicated),
    plus the pairs ``include [2, M]`` (``i < j``), so ``P <= N * per_node + M`` instead of ``Σ n(n-1)/2``.

    A node ends up in about ``2 * per_node`` candidate pairs (its own draws and the others' draws of it).

    Args:
        num_nodes: ``[G]`` node count per graph.
        per_node: partners drawn per node.
        include: optional ``[2, M]`` pairs that must be candidates (e.g. an initial structure).

    Returns:
        ``(pair_index [2, P], pair_graph [P])`` sorted by graph, ``i < j``.
    """
    if per_node < 1:
        raise ValueError(f"candidates_per_node must be >= 1, got {per_node}")
    node_graph = node_to_graph(num_nodes)
    total = node_graph.numel()
    src = torch.arange(total, device=num_nodes.device).repeat_interleave(per_node)
    dst = random_partners(src, node_graph, num_nodes, generator)
    keys = (torch.minimum(src, dst) * total + torch.maximum(src, dst))[src != dst]
    if include is not None and include.numel():
        keys = torch.cat([keys, include[0].to(keys.device) * total + include[1].to(keys.device)])
    keys = torch.unique(keys)  # sorted: by first node, hence by graph
    pairs = torch.stack([keys // total, keys % total])
    return pairs, node_graph[pairs[0]]


def sparse_erdos_renyi(num_nodes: Tensor, prob: Tensor, generator: torch.Generator) -> Tensor:
    """``[2, M]`` pairs ``i < j`` of Erdős–Rényi graphs with per-graph edge probability ``prob [G]``, drawn in
    ``O(N + M)`` memory (edge counts ``~ Binomial(n(n-1)/2, p)``, then uniform pairs; the rare repeated
    pair is dropped) instead of over all ``Σ n(n-1)/2`` pairs as :func:`candidate_pairs` would need."""
    total_pairs = (num_nodes * (num_nodes - 1) // 2).double()
    counts = torch.binomial(total_pairs, prob.double().clamp(0, 1), generator=generator).long()
    graph = torch.repeat_interleave(torch.arange(num_nodes.numel()), counts)
    start = node_offsets(num_nodes)[:-1]
    u = torch.rand(graph.numel(), generator=generator, dtype=torch.float64)
    a = start[graph] + (u * num_nodes[graph]).long().clamp(max=(num_nodes[graph] - 1))
    b = random_partners(a, node_to_graph(num_nodes), num_nodes, generator)
    return unique_pairs(a, b, int(num_nodes.sum()))


def unique_pairs(a: Tensor, b: Tensor, num_nodes: int) -> Tensor:
    """``[2, M]`` the distinct unordered pairs ``i < j`` among ``(a[k], b[k])`` (``[K]`` global node indices of
    ``num_nodes`` nodes), self-pairs dropped, sorted by first node (hence by graph)."""
    keep = a != b
    key = torch.unique(torch.minimum(a, b)[keep] * num_nodes + torch.maximum(a, b)[keep])  # 1-D: faster than dim=1
    return torch.stack([key // num_nodes, key % num_nodes])


def undirected(pairs: Tensor) -> Tensor:
    """``[2, P]`` pairs → ``[2, 2P]`` edges in both directions."""
    return torch.cat([pairs, pairs.flip(0)], dim=1)


def node_offsets(num_nodes: Tensor) -> Tensor:
    """``[G + 1]`` offsets of every graph's first node (and the total) for node counts ``[G]``."""
    return torch.cat([num_nodes.new_zeros(1), num_nodes.cumsum(0)])


@functools.lru_cache(maxsize=64)
def conway_maxwell_poisson(mean: float, dispersion: float, max_degree: int) -> Tensor:
    r"""``[K + 1]`` probabilities of a Conway–Maxwell–Poisson law on ``0..K`` with the given mean and
    index of dispersion ``var / mean <= 1``.

    :math:`P(k) \propto \lambda^k / (k!)^\nu`: ``ν = 1`` is Poisson, larger ``ν`` more regular (the
    degrees of molecules, dispersion about 0.3). ``ν`` and ``λ`` are found by nested bisection (the
    dispersion falls as ``ν`` grows; the mean grows with ``λ``). Cached: treat the result as read-only.
    """
    if not 0 < dispersion <= 1:
        raise ValueError(f"a Conway-Maxwell-Poisson degree law needs 0 < dispersion <= 1, got {dispersion}")
    k = torch.arange(max_degree + 1, dtype=torch.float64)
    log_fact = torch.lgamma(k + 1)

    def law(log_lam: float, nu: float) -> Tensor:
        return torch.softmax(k * log_lam - nu * log_fact, 0)

    def fit_mean(nu: float) -> Tensor:
        lo, hi = -30.0, 30.0 * nu + 30.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if float((law(mid, nu) * k).sum()) < mean else (lo, mid)
        return law((lo + hi) / 2, nu)

    def index(p: Tensor) -> float:
        mu = float((p * k).sum())
        return float((p * (k - mu) ** 2).sum()) / max(mu, 1e-12)

    lo, hi = 0.0, 6.0  # log ν: ν from 1 (Poisson) to e⁶ (nearly regular)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if index(fit_mean(float(torch.exp(torch.tensor(mid))))) > dispersion else (lo, mid)
    return fit_mean(float(torch.exp(torch.tensor((lo + hi) / 2)))).float()


def configuration_model(num_nodes: Tensor, degrees: Tensor, generator: torch.Generator) -> Tensor:
    """Erased configuration model for many graphs at once: ``[2, M]`` unique pairs ``i < j``.

    Node ``v`` gets ``degrees[v]`` stubs; the stubs of every graph are shuffled and paired in order;
    self-loops and repeated pairs are dropped (so realised degrees can be slightly lower).

    Args:
        num_nodes: ``[G]`` node count per graph.
        degrees: ``[N]`` wanted degree of every node.
    """
    graph_of = node_to_graph(num_nodes)
    stubs = torch.repeat_interleave(torch.arange(graph_of.numel(), device=degrees.device), degrees)
    owner = graph_of[stubs]
    order = torch.argsort(owner.double() + torch.rand(stubs.numel(), generator=generator,
                                                     dtype=torch.float64).to(degrees.device) * 0.5)
    stubs, owner = stubs[order], owner[order]
    start = node_offsets(torch.bincount(owner, minlength=num_nodes.numel()))[:-1]
    rank = torch.arange(stubs.numel(), device=degrees.device) - start[owner]
    # Stub 2t of a graph is paired with stub 2t + 1 of the same graph (a last odd stub is dropped).
    first = torch.nonzero((rank[:-1] % 2 == 0) & (owner[1:] == owner[:-1])).view(-1)
    a, b = stubs[first], stubs[first + 1]
    return unique_pairs(a, b, graph_of.numel())


def sample_structure(num_nodes: Tensor, mean_degree: float, dispersion: float,
                     generator: torch.Generator) -> Tensor:
    r"""Random undirected structure with a given node-degree mean and index of dispersion ``var / mean``.

    * ``dispersion < 1`` (more regular than Erdős–Rényi, e.g. molecules): degrees drawn i.i.d. from a
      Conway–Maxwell–Poisson law with that mean and dispersion, wired by the configuration model.
    * ``dispersion >= 1``: Erdős–Rényi within each graph, with a per-graph density factor
      :math:`s_g \sim \mathrm{LogNormal}` of mean 1 and variance :math:`c = (D - 1) / \bar d`, so node
      degrees follow a Poisson mixture with variance :math:`\bar d + c\,\bar d^2 = D\,\bar d`
      (graphs of very different densities, as in social ego-networks).

    Args:
        num_nodes: ``[G]`` node count per graph.

    Returns:
        ``[2, M]`` pairs ``i < j`` with global node indices.
    """
    if mean_degree < 0 or dispersion <= 0:
        raise ValueError(f"need mean_degree >= 0 and dispersion > 0, got {mean_degree} and {dispersion}")
    graph_of = node_to_graph(num_nodes)
    cap = (num_nodes - 1).clamp(min=0)
    if dispersion < 1:
        law = conway_maxwell_poisson(mean_degree, dispersion, max(int(cap.max()) if cap.numel() else 0, 1))
        degrees = torch.multinomial(law, graph_of.numel(), replacement=True, generator=generator)
        return configuration_model(num_nodes, torch.minimum(degrees, cap[graph_of]), generator)
    sigma2 = math.log1p((dispersion - 1) / max(mean_degree, 1e-6))
    z = torch.randn(num_nodes.numel(), generator=generator)
    density = torch.exp(math.sqrt(sigma2) * z - sigma2 / 2)
    prob = (mean_degree * density / cap.clamp(min=1).float()).clamp(max=1.0)
    if num_nodes.numel() and int(num_nodes.max()) > SPARSE_NODES:  # all pairs would be O(n²)
        return sparse_erdos_renyi(num_nodes, prob, generator)
    pairs, pair_graph = candidate_pairs(num_nodes)
    return pairs[:, torch.rand(pair_graph.numel(), generator=generator) < prob[pair_graph]]


def clique_unions(num_nodes: Tensor, mean_degree: float, generator: torch.Generator) -> Tensor:
    r"""Random unions of cliques (random intersection graphs) with about ``mean_degree`` mean node degree.

    Graph :math:`g` gets :math:`m_g` cliques of sizes :math:`s = \min(2 + \mathrm{Poisson}(\lambda_g), n_g)`,
    :math:`\lambda_g \sim U(0, \bar d)` per graph (from single edges, Erdős–Rényi-like, to a few large cliques),
    members drawn uniformly from its nodes; two nodes are adjacent when they share a clique. Such graphs are
    full of triangles, as co-membership networks are (the actors of a film, the authors of a paper), which
    configuration-model and Erdős–Rényi graphs are not. :math:`m_g = c \, n_g \bar d / E[s(s-1)]` (each
    clique adds :math:`s(s-1)` to the degree sum); overlapping cliques share edges, so ``c`` is set by a first
    draw to the ratio of wanted to realised mean degree over the batch, and the graphs are drawn again.

    Args:
        num_nodes: ``[G]`` node count per graph.

    Returns:
        ``[2, M]`` pairs ``i < j`` with global node indices.
    """
    if mean_degree < 0:
        raise ValueError(f"need mean_degree >= 0, got {mean_degree}")
    scale = torch.rand(num_nodes.numel(), generator=generator, dtype=torch.float64) * max(mean_degree, 1.0)
    pairs_per_node = scale + (2 + scale) ** 2 - (2 + scale)  # E[s(s-1)] for s = 2 + Poisson(scale)
    wanted = num_nodes.double() * mean_degree / pairs_per_node
    pairs = _clique_union(num_nodes, wanted, scale, generator)
    realised = 2 * pairs.size(1) / max(int(num_nodes.sum()), 1)
    if realised > 0:
        pairs = _clique_union(num_nodes, wanted * (mean_degree / realised), scale, generator)
    return pairs


def add_hubs(pairs: Tensor, num_nodes: Tensor, hubbed: Tensor) -> Tensor:
    r"""``pairs`` with the first node of every graph in ``hubbed`` joined to all the other nodes of its graph:
    a hub of degree :math:`n_g - 1`, as the ego of an ego-network is (every IMDB-B graph is one actor's
    co-stars), which neither the degree law nor clique unions draw.

    Args:
        pairs: ``[2, M]`` pairs ``i < j`` with global node indices (graphs in node order).
        num_nodes: ``[G]`` node count per graph.
        hubbed: ``[G]`` which graphs get a hub.

    Returns:
        ``[2, M']`` the distinct pairs ``i < j``, sorted by first node.
    """
    graph_of = node_to_graph(num_nodes)
    first = node_offsets(num_nodes)[:-1][graph_of]  # [N] each node's graph's first node
    nodes = torch.arange(graph_of.numel())
    spoke = hubbed[graph_of] & (nodes != first)
    return unique_pairs(torch.cat([pairs[0], first[spoke]]), torch.cat([pairs[1], nodes[spoke]]),
                        graph_of.numel())


def _clique_union(num_nodes: Tensor, cliques: Tensor, scale: Tensor, generator: torch.Generator) -> Tensor:
    """``[2, M]`` pairs of graphs with ``round(cliques [G])`` cliques of sizes ``2 + Poisson(scale [G])``."""
    count = cliques.round().long().clamp(min=0)
    clique_graph = torch.repeat_interleave(torch.arange(num_nodes.numel()), count)
    sizes = torch.minimum(2 + torch.poisson(scale[clique_graph], generator=generator).long(), num_nodes[clique_graph])
    member_clique = torch.repeat_interleave(torch.arange(sizes.numel()), sizes)
    graph = clique_graph[member_clique]
    u = torch.rand(member_clique.numel(), generator=generator, dtype=torch.float64)
    member = node_offsets(num_nodes)[:-1][graph] + (u * num_nodes[graph]).long().clamp(max=num_nodes[graph] - 1)
    within, _ = candidate_pairs(sizes)  # all member pairs of every clique
    a, b = member[within[0]], member[within[1]]
    return unique_pairs(a, b, int(num_nodes.sum()))  # drops a node drawn twice into one clique
