import pytest
import torch

from dfkd.losses import BatchNormStatsLoss


def _net():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2),
                              torch.nn.BatchNorm1d(2))
    return net.eval()


@pytest.mark.parametrize("kind", ["relative", "kl", "l2"])
def test_zero_when_batch_statistics_equal_running(kind):
    net = _net()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # make running stats exactly the batch stats of x at each layer
        h = net[0](x)
        net[1].running_mean.copy_(h.mean(0)), net[1].running_var.copy_(h.var(0, unbiased=False))
        h = net[3](net[2](net[1](h)))
        net[4].running_mean.copy_(h.mean(0)), net[4].running_var.copy_(h.var(0, unbiased=False))
    with BatchNormStatsLoss(net, kind) as bn:
        net(x)
        assert float(bn.loss()) == pytest.approx(0.0, abs=1e-4)
        net(x + 3.0)
        assert float(bn.loss()) > 0.1


def test_hand_computed_l2_and_relative():
    bn = BatchNormStatsLoss(_net(), "l2")
    mean, var = torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0])
    run_mean, run_var = torch.tensor([1.0, 0.0]), torch.tensor([4.0, 1.0])
    assert float(bn.layer_loss(mean, var, run_mean, run_var)) == pytest.approx(2.0 + 3.0)
    rel = BatchNormStatsLoss(_net(), "relative")
    assert float(rel.layer_loss(mean, var, run_mean, run_var)) == pytest.approx(2.0 / 1.0 + 3.0 / 17 ** 0.5, rel=1e-4)


def test_gradient_reaches_the_input():
    net = _net()
    x = torch.randn(16, 3, requires_grad=True)
    with BatchNormStatsLoss(net) as bn:
        net(x)
        bn.loss().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_unavailable_is_explained():
    plain = torch.nn.Sequential(torch.nn.Linear(3, 2))
    bn = BatchNormStatsLoss(plain)
    assert not bn.available and "no BatchNorm" in bn.reason
    no_stats = torch.nn.Sequential(torch.nn.BatchNorm1d(3, track_running_stats=False))
    bn = BatchNormStatsLoss(no_stats)
    assert not bn.available and "running statistics" in bn.reason
    with bn:
        no_stats(torch.randn(4, 3))
        assert float(bn.loss()) == 0.0
    with pytest.raises(ValueError, match="unknown BN loss"):
        BatchNormStatsLoss(plain, "cosine")
