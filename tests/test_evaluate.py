"""Scores of dfkd.evaluate: majority-class accuracy, chance-adjusted accuracy, agreement."""
import math

import pytest
import torch

import dfkd
from dfkd.evaluate import chance_adjusted, classification_metrics, evaluate, majority_accuracy


def _logits(classes, num_classes=3):
    """One-hot logits that predict ``classes``."""
    return torch.nn.functional.one_hot(torch.tensor(classes), num_classes).float()


def test_majority_accuracy_is_the_share_of_the_most_frequent_class():
    assert majority_accuracy(torch.tensor([0, 1, 1, 2, 1])) == pytest.approx(3 / 5)
    assert majority_accuracy(torch.tensor([2, 2])) == 1.0
    assert math.isnan(majority_accuracy(torch.tensor([], dtype=torch.long)))


def test_chance_adjusted_accuracy_by_hand():
    # teacher 0.9, majority 0.6: a student at 0.75 keeps half the teacher's gain over chance
    assert chance_adjusted(0.75, 0.9, 0.6) == pytest.approx(0.5)
    assert chance_adjusted(0.6, 0.9, 0.6) == pytest.approx(0.0)
    assert chance_adjusted(0.5, 0.9, 0.6) == pytest.approx(-1 / 3)  # below always-predict-majority
    assert math.isnan(chance_adjusted(0.7, 0.55, 0.6))  # a teacher below chance: nothing to keep
    assert math.isnan(chance_adjusted(0.7, 0.6, 0.6))


def test_classification_metrics_by_hand():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 0, 0, 1, 2])  # majority class 0: 5 of 10
    teacher = _logits([0, 0, 0, 1, 1, 2, 0, 1, 1, 0])  # 8 of 10 right
    student = _logits([0, 0, 0, 1, 0, 2, 0, 0, 0, 0])  # 7 of 10 right; same as the teacher on 7
    m = classification_metrics(student, teacher, labels)
    assert m["accuracy"] == pytest.approx(0.7) and m["teacher_accuracy"] == pytest.approx(0.8)
    assert m["majority_accuracy"] == pytest.approx(0.5)
    assert m["agreement"] == pytest.approx(0.7)
    assert m["relative_accuracy"] == pytest.approx(0.7 / 0.8)
    assert m["chance_adjusted_accuracy"] == pytest.approx((0.7 - 0.5) / (0.8 - 0.5))
    assert set(classification_metrics(student, None, labels)) == {"accuracy", "majority_accuracy"}


def test_a_student_that_always_predicts_the_majority_keeps_nothing(mutag):
    graphs = [mutag[i] for i in range(60)]
    teacher = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    labels = torch.cat([g.y for g in graphs])
    majority = int(torch.bincount(labels).argmax())

    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(_logits([majority], 2)[0])

        def forward(self, x, edge_index, batch):
            return self.bias.expand(int(batch.max()) + 1, -1)

    report = evaluate(Constant(), graphs, teacher=teacher, measure_latency=False)
    assert report.accuracy == report.majority_accuracy == pytest.approx(float((labels == majority).float().mean()))
    if report.teacher_accuracy > report.majority_accuracy:
        assert report.chance_adjusted_accuracy == pytest.approx(0.0, abs=1e-12)
    assert set(report.metrics()) >= {"majority_accuracy", "chance_adjusted_accuracy", "agreement"}
