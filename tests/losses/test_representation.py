"""Representation losses against values worked out by hand on graphs of 2-5 nodes."""
import math

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch

from dfkd.losses import (
    AdversarialTemperatureKL, GraphContrastiveRepresentationLoss, build_loss, get_loss, global_structure_preserving,
    graph_relation, is_stateful_loss, local_structure_preserving, parse_recipe,
)
from dfkd.nn.models import ModelOutput


def _out(nodes=None, graph=None):
    nodes = torch.zeros(1, 1) if nodes is None else nodes
    graph = torch.zeros(1, 1) if graph is None else graph
    return ModelOutput(logits=torch.zeros(graph.size(0), 2), node_embeddings=[torch.zeros(nodes.size(0), 3), nodes],
                       graph_embedding=graph)


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def _undirected(pairs):
    return torch.tensor([[a for a, b in pairs] + [b for a, b in pairs], [b for a, b in pairs] + [a for a, b in pairs]])


R = 1 / math.sqrt(2)

# A star 0-1, 0-2. Teacher: z1 parallel to z0, z2 orthogonal. Student (other width): z1 at 45 degrees.
STAR = _undirected([(0, 1), (0, 2)])
T_STAR = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
S_STAR = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 3.0]]


def _lsp(student, teacher, edge_index, **kw):
    n = student.size(0)
    batch = Batch(x=torch.zeros(n, 1), edge_index=edge_index, batch=torch.zeros(n, dtype=torch.long),
                  **({"edge_weight": kw.pop("edge_weight")} if "edge_weight" in kw else {}))
    return local_structure_preserving(None, None, batch=batch, student_output=_out(student),
                                      teacher_output=_out(teacher), **kw)


@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_lsp_by_hand(tau):
    h = torch.tensor(S_STAR, requires_grad=True)
    loss = _lsp(h, T_STAR, STAR, tau=tau)
    # Node 0: teacher cosines (1, 0), student (1/sqrt2, 0); nodes 1 and 2 have one neighbour: KL 0.
    p, q = _softmax([1 / tau, 0.0]), _softmax([R / tau, 0.0])
    assert loss.item() == pytest.approx(_kl(p, q) / 3, rel=1e-4)  # float32 on a small KL
    loss.backward()
    assert h.grad[1].abs().sum() > 0  # the student's misplaced neighbour is pushed


def test_lsp_edge_weights_self_loops_and_official_kernel():
    # Soft adjacency: LS_0j proportional to w_0j exp(SIM); a weight-0 edge (0-3) and self-loops are absent.
    edge_index = torch.cat([STAR, torch.tensor([[0, 3, 1], [3, 0, 1]])], dim=1)
    weight = torch.tensor([0.5, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0])  # w01 = 0.5, w02 = 1
    t = torch.cat([T_STAR, torch.tensor([[5.0, 5.0]])])
    s = torch.tensor(S_STAR + [[0.0, 1.0, 0.0]])
    loss = _lsp(s, t, edge_index, edge_weight=weight, tau=0.1)
    p = _softmax([math.log(0.5) + 10.0, 0.0])
    q = _softmax([math.log(0.5) + R / 0.1, 0.0])
    assert loss.item() == pytest.approx(_kl(p, q) / 3, rel=1e-4)  # node 3 has no edge left
    # Official kernel exp(-|z_i - z_j|_1 / 100) (widths must match to be meaningful here).
    s2 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]], dtype=torch.float64)  # float64: a KL of 1e-5
    loss = _lsp(s2, T_STAR.double(), STAR, kernel="l1")
    p = _softmax([math.exp(-1 / 100), math.exp(-2 / 100)])
    q = _softmax([math.exp(-1 / 100), math.exp(-4 / 100)])
    assert loss.item() == pytest.approx(_kl(p, q) / 3, rel=1e-5)


def test_lsp_zero_when_similarities_agree_across_widths():
    # Cosine is scale-free: a wider, rescaled copy of the teacher has the same distributions.
    s = torch.cat([3 * T_STAR, torch.zeros(3, 2)], dim=1)
    assert _lsp(s, T_STAR, STAR).item() == pytest.approx(0.0, abs=1e-7)
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert _lsp(s, T_STAR, empty).item() == 0.0


def _gsp(student, teacher, graph, **kw):
    batch = Batch(x=torch.zeros(student.size(0), 1), edge_index=torch.zeros(2, 0, dtype=torch.long), batch=graph)
    return global_structure_preserving(None, None, batch=batch, student_output=_out(student),
                                       teacher_output=_out(teacher), **kw)


def test_gsp_by_hand_pairs_stay_inside_each_graph():
    graph = torch.tensor([0, 0, 0, 1, 1])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    h = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 2.0], [3.0, 0.0]], requires_grad=True)
    loss = _gsp(h, t, graph, tau=1.0)
    # Graph 0, teacher cosines c01 = 1, c02 = 0, c12 = 0; student c01 = c12 = 1/sqrt2, c02 = 0.
    # Graph 1 has two nodes: each has a single partner, KL 0 (and nothing crosses to graph 0).
    kl0 = _kl(_softmax([1.0, 0.0]), _softmax([R, 0.0]))  # node 0 over (1, 2)
    kl1 = _kl(_softmax([1.0, 0.0]), _softmax([R, R]))  # node 1 over (0, 2)
    kl2 = _kl(_softmax([0.0, 0.0]), _softmax([0.0, R]))  # node 2 over (0, 1)
    assert loss.item() == pytest.approx((kl0 + kl1 + kl2) / 5, rel=1e-5)
    loss.backward()
    assert h.grad[:3].abs().sum() > 0 and torch.all(h.grad[3:] == 0)
    assert _gsp(2 * t, t, graph).item() == pytest.approx(0.0, abs=1e-7)


def test_gsp_caps_the_nodes():
    torch.manual_seed(0)
    t, s = torch.randn(12, 3), torch.randn(12, 5)
    graph = torch.tensor([0] * 6 + [1] * 6)
    torch.manual_seed(1)
    capped = _gsp(s, t, graph, max_nodes=5)
    torch.manual_seed(1)
    keep = torch.randperm(12)[:5].sort().values  # the documented draw from torch's global generator
    assert capped.item() == pytest.approx(_gsp(s[keep], t[keep], graph[keep]).item(), rel=1e-6)


def test_relation_by_hand():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    g = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    loss = graph_relation(None, None, student_output=_out(graph=g), teacher_output=_out(graph=t))
    # Teacher cosines c01 = 0, c02 = c12 = 1/sqrt2; student c01 = 1, c02 = c12 = 0; mean over 6 off-diagonal.
    expected = 2 * ((1 - 0) ** 2 + (0 - R) ** 2 + (0 - R) ** 2) / 6
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert g.grad.abs().sum() > 0
    wider = torch.cat([5 * t, torch.zeros(3, 4)], dim=1)
    assert graph_relation(None, None, student_output=_out(graph=wider), teacher_output=_out(graph=t)).item() \
        == pytest.approx(0.0, abs=1e-7)
    one = graph_relation(None, None, student_output=_out(graph=g[:1]), teacher_output=_out(graph=t[:1]))
    assert one.item() == 0.0


def _identity_heads(loss):
    with torch.no_grad():
        for head in (loss.student_head, loss.teacher_head):
            for layer in (head[0], head[2]):
                layer.weight.copy_(torch.eye(2))
                layer.bias.zero_()


def test_gcrd_by_hand_and_gradients_reach_embeddings_and_heads():
    # float64: the best value below is 1e-6.
    loss_fn = GraphContrastiveRepresentationLoss(student_width=2, teacher_width=2, dim=2).double()
    _identity_heads(loss_fn)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    h = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    loss = loss_fn(None, None, student_output=_out(h), teacher_output=_out(t))
    # Identity heads, positive inputs: s0 = (1, 0), s1 = (1, 1)/sqrt2; t0 = (1, 0), t1 = (0, 1).
    tau = 0.075
    row0 = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 1))
    row1 = math.log(2.0)  # s1 is equally close to both teacher nodes
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    loss.backward()
    assert h.grad.abs().sum() > 0
    for head in (loss_fn.student_head, loss_fn.teacher_head):
        assert sum(p.grad.abs().sum() for p in head.parameters()) > 0
    # Student = teacher: the positive wins every row, the lowest value this pair of embeddings allows.
    best = loss_fn(None, None, student_output=_out(t), teacher_output=_out(t))
    assert best.item() == pytest.approx(math.log(1 + math.exp(-1 / tau)), rel=1e-5) and best < loss


def test_gcrd_defaults_widths_and_sampling():
    loss_fn = build_loss(get_loss("gcrd"), student_width=3, teacher_width=5, temperature=2.0)
    assert is_stateful_loss(GraphContrastiveRepresentationLoss) and loss_fn.tau == 0.075
    assert loss_fn.student_head[0].in_features == 3 and loss_fn.teacher_head[0].in_features == 5
    assert loss_fn.student_head[-1].out_features == 256
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in loss_fn.modules())
    loss_fn.max_nodes = 4
    value = loss_fn(None, None, student_output=_out(torch.randn(50, 3)), teacher_output=_out(torch.randn(50, 5)))
    assert math.isfinite(value.item()) and value.item() <= math.log(4) + 1 / 0.075 * 2  # a 4-way InfoNCE


def test_dynamic_kl_by_hand_and_reversed_temperature_gradient():
    loss_fn = build_loss(get_loss("dynamic_kl"), temperature=2.0, student_width=7)
    assert isinstance(loss_fn, AdversarialTemperatureKL) and loss_fn.temperature.item() == pytest.approx(2.0, abs=1e-5)
    s = torch.zeros(1, 2, requires_grad=True)
    t = torch.tensor([[math.log(3.0), 0.0]])

    def hand(temp):  # T^2 KL(softmax(t/T) || (1/2, 1/2))
        p = _softmax([math.log(3.0) / temp, 0.0])
        return temp ** 2 * _kl(p, [0.5, 0.5])

    loss = loss_fn(s, t)
    assert loss.item() == pytest.approx(hand(2.0), rel=1e-5)
    loss.backward()
    p = _softmax([math.log(3.0) / 2, 0.0])
    # Student gradient is not reversed: d/ds T^2 KL = T (softmax(s/T) - p) / B.
    assert s.grad[0].tolist() == pytest.approx([2 * (0.5 - p[0]), 2 * (0.5 - p[1])], rel=1e-4)
    # Temperature gradient is reversed: -dL/dT * dT/dtheta, with dT/dtheta = (T - 1)(10 - T) / 9.
    eps = 1e-4
    dl_dt = (hand(2.0 + eps) - hand(2.0 - eps)) / (2 * eps)
    assert loss_fn.theta.grad.item() == pytest.approx(-dl_dt * (2.0 - 1) * (10 - 2.0) / 9, rel=1e-3)
    # One descent step on theta raises the loss (the temperature plays against the student).
    with torch.no_grad():
        loss_fn.theta -= 0.5 * loss_fn.theta.grad
    assert loss_fn(s, t).item() > loss.item()
    assert loss_fn(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_dynamic_kl_stays_in_bounds():
    loss_fn = AdversarialTemperatureKL(temperature=50.0)
    assert 9.9 < loss_fn.temperature.item() <= 10.0
    with torch.no_grad():
        loss_fn.theta.fill_(-1e4)
    assert loss_fn.temperature.item() == 1.0
    with torch.no_grad():
        loss_fn.theta.fill_(1e4)
    assert loss_fn.temperature.item() == 10.0
    assert loss_fn.epoch_stats() == {"temperature": 10.0}
    with pytest.raises(ValueError, match="t_min < t_max"):
        AdversarialTemperatureKL(t_min=3.0, t_max=2.0)


def test_registry_and_missing_embeddings():
    assert [n for n, _ in parse_recipe("kl,lsp=1,gsp,gcrd=0.1,relation,dynamic_kl")] == \
        ["kl", "lsp", "gsp", "gcrd", "relation", "dynamic_kl"]
    for name in ("lsp", "gsp", "relation", "gcrd"):
        assert getattr(get_loss(name), "needs_embeddings", False)
    assert not is_stateful_loss(get_loss("lsp")) and build_loss(get_loss("lsp")) is local_structure_preserving
    with pytest.raises(ValueError, match="needs node embeddings"):
        local_structure_preserving(None, None, batch=None)
    with pytest.raises(ValueError, match="needs graph embeddings"):
        graph_relation(None, None)
    with pytest.raises(ValueError, match="unknown similarity kernel"):
        _lsp(torch.ones(3, 2), T_STAR, STAR, kernel="poly")
