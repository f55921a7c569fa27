"""Personalized choice: score candidate responses by lambda . phi(x, y) and return the best of N."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Candidates of one prompt with their personalized rewards, best first in ``order``."""

    prompt: str
    candidates: list[str]
    scores: np.ndarray
    order: np.ndarray

    @property
    def best(self) -> str:
        return self.candidates[int(self.order[0])]

    @property
    def best_index(self) -> int:
        return int(self.order[0])


def personalized_rewards(model, weights: np.ndarray, prompts: Sequence[str], responses: Sequence[str], featurizer=None) -> np.ndarray:
    """r_u(x, y) = lambda . phi(x, y) for each (prompt, response)."""
    featurizer = featurizer or model.featurizer()
    phi = model.base_rewards(featurizer.transform(list(prompts), list(responses)))
    return phi @ np.asarray(weights, dtype=np.float64)


def best_of_n(model, weights: np.ndarray, prompt: str, candidates: Sequence[str], featurizer=None) -> Ranking:
    """Rank N candidate responses to one prompt for a user with weights lambda."""
    if len(candidates) == 0:
        raise ValueError("best_of_n needs at least one candidate")
    scores = personalized_rewards(model, weights, [prompt] * len(candidates), candidates, featurizer)
    return Ranking(prompt, list(candidates), scores, np.argsort(-scores, kind="stable"))
