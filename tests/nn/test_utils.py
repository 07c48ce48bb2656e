import pytest
import torch

from dfkd.nn import build_model, eval_mode


@pytest.mark.parametrize("was_training", [True, False])
def test_eval_mode_reads_batchnorm_statistics_and_restores_the_mode(was_training):
    model = build_model("gin-2-8", in_channels=3, out_channels=2).train(was_training)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert norms
    before = [m.running_mean.clone() for m in norms]
    x = torch.randn(6, 3) * 5 + 3
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    with eval_mode(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
        model(x, edge_index, torch.zeros(6, dtype=torch.long))
    assert all(m.training == was_training for m in model.modules())
    assert all(torch.equal(m.running_mean, b) for m, b in zip(norms, before))


def test_eval_mode_restores_the_mode_when_the_block_raises():
    model = build_model("gin-2-8", in_channels=3, out_channels=2).train()
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(model):
            raise RuntimeError("boom")
    assert model.training


def test_eval_mode_puts_every_module_back_in_its_own_mode():
    # A student training with frozen BatchNorm (dfkd.distill.inherit) stays frozen after the source scores graphs.
    model = build_model("gin-2-8", in_channels=3, out_channels=2).train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
    modes = [m.training for m in model.modules()]
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == modes and model.training and model.dropout.training
