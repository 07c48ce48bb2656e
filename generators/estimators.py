r"""Gradient estimators for discrete (Bernoulli) graph structure, in one place.

* :func:`arm_samples` / :func:`arm_gradient`: Augment-REINFORCE-Merge (Yin & Zhou, ICLR 2019, Eq. 5),
  unbiased and needing only two forward passes of a black-box function on antithetic samples:

  .. math::
      \nabla_\phi \mathbb{E}_{z \sim \mathrm{Bern}(\sigma(\phi))}[f(z)]
      = \mathbb{E}_{u \sim U(0,1)}\big[(f(\mathbb{1}[u > \sigma(-\phi)]) - f(\mathbb{1}[u < \sigma(\phi)]))
      (u - \tfrac12)\big]

* :func:`binary_concrete`: the relaxed Bernoulli (Maddison et al. 2017; Jang et al. 2017),
  :math:`\sigma((\phi + \log u - \log(1-u)) / \tau)`, optionally hardened with a straight-through
  gradient. Needs a model that takes soft ``edge_weight``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

ESTIMATORS = ("arm", "concrete", "straight_through")


def arm_samples(logits: Tensor, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Antithetic Bernoulli samples for ARM.

    Args:
        logits: ``[P]`` Bernoulli logits :math:`\\phi`.

    Returns:
        ``(u, z1, z2)``, each ``[P]``: the uniform noise, ``z1 = 1[u > σ(-φ)]`` and ``z2 = 1[u < σ(φ)]``
        (both are exact Bernoulli(σ(φ)) samples, negatively correlated).
    """
    u = torch.rand(logits.shape, generator=generator, device="cpu").to(logits.device)
    logits = logits.detach()
    return u, u > torch.sigmoid(-logits), u < torch.sigmoid(logits)


def arm_gradient(u: Tensor, f1: Tensor, f2: Tensor) -> Tensor:
    """ARM estimate of :math:`\\nabla_\\phi \\mathbb{E}[f]` from ``f1 = f(z1)``, ``f2 = f(z2)`` (same shape as ``u``)."""
    return (f1 - f2) * (u - 0.5)


def binary_concrete(logits: Tensor, temperature: float = 1.0, hard: bool = False,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """Relaxed Bernoulli sample in ``(0, 1)``, differentiable in ``logits``; ``hard`` gives {0, 1}
    values in the forward pass with the relaxed gradient (straight-through)."""
    if temperature <= 0:
        raise ValueError(f"concrete temperature must be > 0, got {temperature}")
    u = torch.rand(logits.shape, generator=generator, device="cpu").to(logits.device).clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)
    if not hard:
        return soft
    return (soft > 0.5).to(soft.dtype) - soft.detach() + soft
