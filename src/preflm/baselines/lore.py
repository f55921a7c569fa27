"""LoRe (Bose et al. 2025, "LoRe: Personalizing LLMs via Low-Rank Reward Modeling").

A shared low-rank basis B (d x K) over frozen features gives K basis rewards R = x B; user u's reward
is R w_u with w_u on the probability simplex. The basis and seen users' weights are learned jointly by
Bradley-Terry likelihood; a new user fits only w_u with the basis frozen.
"""

from __future__ import annotations

import torch

from preflm.baselines.mixture import DEFAULT_L2, DEFAULT_STRENGTHS, SimplexMixtureModel, simplex_mixture_method
from preflm.eval.harness import FewShotMethod


def lore_model(
    n_basis: int = 8,
    l2: float | tuple[float, ...] = DEFAULT_L2,
    learning_rate: float = 1e-2,
    max_steps: int = 2000,
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS,
) -> SimplexMixtureModel:
    """LoRe as a :class:`SimplexMixtureModel` whose prototype rewards are a linear low-rank basis."""
    build = lambda d, k: torch.nn.Linear(d, k, bias=False)  # noqa: E731
    return SimplexMixtureModel(build, n_basis, l2, learning_rate, max_steps, strengths=strengths)


def lore_method(name: str = "lore", **model_options) -> FewShotMethod:
    """Harness adapter for LoRe; ``model_options`` go to :func:`lore_model`."""
    return simplex_mixture_method(name, lambda: lore_model(**model_options))
