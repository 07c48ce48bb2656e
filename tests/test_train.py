import torch

import dfkd
from dfkd.evaluate import accuracy, evaluate, labels_of, predict
from dfkd.train import TrainConfig, train_model


def test_training_learns_mutag_and_is_seeded(mutag):
    train, test = mutag.fold(2)
    graphs = [mutag[i] for i in train]

    def run():
        torch.manual_seed(3)  # initialisation is the caller's; train_model seeds the shuffling
        model = dfkd.build_model("gin-2-16", in_channels=7, out_channels=2)
        train_model(model, graphs, graphs[:30], TrainConfig(epochs=15, seed=3), show_progress=False)
        return model

    a, b = run(), run()
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    test_graphs = [mutag[i] for i in test]
    assert accuracy(predict(a, test_graphs), labels_of(test_graphs)) >= 0.7  # majority class is 0.67


def test_train_teacher_packages_provenance(mutag):
    result = dfkd.train_teacher(mutag, "gcn-2-8", holdout=0.3, config=TrainConfig(epochs=2), show_progress=False)
    prov = result.checkpoint.provenance
    assert prov["split"] == {"kind": "holdout", "ratio": 0.3, "seed": 0}
    assert prov["test_accuracy"] == result.test_accuracy
    assert result.checkpoint.feature_spec == mutag.feature_spec
    assert result.checkpoint.size_stats.max_nodes <= 28


def test_evaluate_report(mutag):
    graphs = [mutag[i] for i in range(40)]
    model = dfkd.build_model("gin-2-8", in_channels=7, out_channels=2)
    report = evaluate(model, graphs, teacher=model)
    assert report.agreement == 1.0 and report.relative_accuracy == 1.0
    assert report.parameters == report.teacher_parameters > 0 and report.latency_ms > 0
