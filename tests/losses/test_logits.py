import math

import pytest
import torch

from dfkd.losses import get_loss, kl_divergence, list_losses, mean_absolute_error, parse_recipe


def test_kl_hand_computed():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])  # teacher softmax at T=1: (0.75, 0.25)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(kl_divergence(s, t, temperature=1.0)) == pytest.approx(expected, rel=1e-5)
    # T = 2: teacher softmax of (log 3 / 2, 0), scaled by T^2.
    p = torch.softmax(t / 2, -1)[0]
    expected2 = 4 * float((p * torch.log(p / 0.5)).sum())
    assert float(kl_divergence(s, t, temperature=2.0)) == pytest.approx(expected2, rel=1e-5)
    assert float(kl_divergence(t, t)) == pytest.approx(0.0, abs=1e-7)


def test_mae_and_mse():
    s, t = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 1.0]])
    assert float(mean_absolute_error(s, t)) == pytest.approx(1.5)
    assert float(get_loss("mse")(s, t)) == pytest.approx(2.5)


def test_recipes():
    assert {"kl", "mae", "mse"} <= set(list_losses())
    assert parse_recipe("kl") == [("kl", 1.0)]
    assert parse_recipe("KL=0.5, mae=2") == [("kl", 0.5), ("mae", 2.0)]
    with pytest.raises(ValueError, match="no loss 'hinge' registered"):
        parse_recipe("hinge")
    with pytest.raises(ValueError, match="bad loss weight"):
        parse_recipe("kl=abc")
