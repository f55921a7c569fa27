"""PAL-B (Chen et al. 2024, "PAL: Pluralistic Alignment Framework"): K prototypes, users on their simplex.

Items are mapped by a shared projector f (a one-hidden-layer MLP over the frozen features) into an
m-dimensional preference space holding K prototype points p_k. User u's ideal point is
a_u = sum_k w_uk p_k with w_u on the simplex, and r_u(item) = f(item) . a_u; equivalently K prototype
rewards R_k = f . p_k mixed by w_u. A new user fits only w_u (prototypes and projector frozen).
Our featurizers describe a (prompt, response) item jointly, so the prototypes are item-independent
points (PAL-B's prompt-conditioned prototype maps g_k(x) reduce to constants here).
"""

from __future__ import annotations

import torch

from preflm.baselines.mixture import DEFAULT_L2, DEFAULT_STRENGTHS, SimplexMixtureModel, simplex_mixture_method
from preflm.eval.harness import FewShotMethod


class PrototypeRewards(torch.nn.Module):
    """R(item) = f(item) P^T: an MLP projector and K prototype points in its output space."""

    def __init__(self, input_dim: int, n_prototypes: int, hidden_size: int = 128, preference_dim: int = 32):
        super().__init__()
        self.projector = torch.nn.Sequential(
            torch.nn.Linear(input_dim, hidden_size),
            torch.nn.GELU(),
            torch.nn.Linear(hidden_size, preference_dim),
        )
        self.prototypes = torch.nn.Parameter(torch.randn(n_prototypes, preference_dim) / preference_dim**0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.projector(features) @ self.prototypes.T


def pal_model(
    n_prototypes: int = 8,
    hidden_size: int = 128,
    preference_dim: int = 32,
    l2: float | tuple[float, ...] = DEFAULT_L2,
    learning_rate: float = 3e-3,
    max_steps: int = 2000,
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
) -> SimplexMixtureModel:
    """PAL-B as a :class:`SimplexMixtureModel` with an MLP projector and prototype points."""
    build = lambda d, k: PrototypeRewards(d, k, hidden_size, preference_dim)  # noqa: E731
    return SimplexMixtureModel(build, n_prototypes, l2, learning_rate, max_steps, strengths=strengths)


def pal_method(name: str = "pal", **model_options) -> FewShotMethod:
    """Harness adapter for PAL-B; ``model_options`` go to :func:`pal_model`."""
    return simplex_mixture_method(name, lambda: pal_model(**model_options))
