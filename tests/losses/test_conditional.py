import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from dfkd.losses import attention_transfer, get_loss, node_attention, preset_label_cross_entropy
from dfkd.nn.models import ModelOutput


def _batch():
    return Batch(x=torch.zeros(5, 1), batch=torch.tensor([0, 0, 1, 1, 1]), y=torch.tensor([1, 0]),
                 ptr=torch.tensor([0, 2, 5]))


def test_label_ce_uses_the_preset_labels():
    logits = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    expected = F.cross_entropy(logits, torch.tensor([1, 0]))
    assert get_loss("label_ce") is preset_label_cross_entropy
    assert preset_label_cross_entropy(logits, logits, batch=_batch()).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="preset labels"):
        preset_label_cross_entropy(logits, logits)


def test_node_attention_by_hand():
    h = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    a = node_attention(h, torch.tensor([0, 0, 1, 1, 1]), 2)
    # energies 25, 0 | 1, 1, 2; per-graph L2 norms 25 | sqrt(6)
    assert torch.allclose(a, torch.tensor([1.0, 0.0, 1 / 6 ** 0.5, 1 / 6 ** 0.5, 2 / 6 ** 0.5]))


def test_attention_transfer_by_hand_and_its_gradient():
    batch = _batch()
    teacher = ModelOutput(logits=torch.zeros(2, 2), graph_embedding=torch.zeros(2, 1),
                          node_embeddings=[torch.tensor([[1.0], [0.0], [1.0], [1.0], [1.0]])])
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    student = ModelOutput(logits=torch.zeros(2, 2), graph_embedding=torch.zeros(2, 2), node_embeddings=[h])
    loss = attention_transfer(None, None, batch=batch, student_output=student, teacher_output=teacher)
    # graph 0: student (1, 1)/sqrt2 vs teacher (1, 0); graph 1: equal maps -> 0
    expected = ((1 / 2 ** 0.5 - 1) ** 2 + 0.5) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert h.grad[:2].abs().sum() > 0 and torch.allclose(h.grad[2:], torch.zeros(3, 2), atol=1e-6)
    assert getattr(get_loss("attention"), "needs_embeddings", False)
