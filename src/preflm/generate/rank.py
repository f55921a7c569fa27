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


def best_of_n(model, weights: np.ndarray, prompt: str, candidates: Sequence[str]) -> Ranking:
    """Rank N candidate responses to one prompt for a user with weights lambda (``model.rewards``)."""
    if len(candidates) == 0:
        raise ValueError("best_of_n needs at least one candidate")
    scores = model.rewards([prompt] * len(candidates), list(candidates), weights)
    return Ranking(prompt, list(candidates), scores, np.argsort(-scores, kind="stable"))
