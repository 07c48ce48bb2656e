import itertools

import torch

from dfkd.generators.estimators import arm_gradient, arm_samples, binary_concrete


def _f(z):
    """A nonlinear function of three bits: [M, 3] -> [M]."""
    z = z.float()
    return 1.5 * z[:, 0] - 2.0 * z[:, 1] + 0.5 * z[:, 2] + 3.0 * z[:, 0] * z[:, 1] - 1.0 * z[:, 1] * z[:, 2]


def _exact_gradient(phi):
    phi = phi.clone().requires_grad_(True)
    p = torch.sigmoid(phi)
    expectation = 0
    for bits in itertools.product([0, 1], repeat=3):
        z = torch.tensor([bits])
        prob = torch.prod(torch.where(z[0] == 1, p, 1 - p))
        expectation = expectation + prob * _f(z)[0]
    expectation.backward()
    return phi.grad


def test_arm_is_unbiased():
    phi = torch.tensor([0.3, -1.2, 2.0])
    m = 400_000
    u, z1, z2 = arm_samples(phi.expand(m, 3), torch.Generator().manual_seed(0))
    estimates = arm_gradient(u, _f(z1).unsqueeze(1), _f(z2).unsqueeze(1))
    mean, sem = estimates.mean(0), estimates.std(0) / m ** 0.5
    exact = _exact_gradient(phi)
    assert torch.all((mean - exact).abs() < 4 * sem + 1e-4), (mean, exact, sem)


def test_arm_samples_are_bernoulli():
    phi = torch.full((200_000,), 0.8)
    _, z1, z2 = arm_samples(phi, torch.Generator().manual_seed(1))
    p = torch.sigmoid(torch.tensor(0.8))
    assert abs(z1.float().mean() - p) < 0.005 and abs(z2.float().mean() - p) < 0.005


def test_binary_concrete_soft_and_hard():
    phi = torch.zeros(1000, requires_grad=True)
    soft = binary_concrete(phi, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.all((soft >= 0) & (soft <= 1)) and 0.3 < float((soft > 0.5).float().mean()) < 0.7
    hard = binary_concrete(phi, 0.5, hard=True, generator=torch.Generator().manual_seed(0))
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    hard.sum().backward()
    assert phi.grad is not None and phi.grad.abs().sum() > 0
