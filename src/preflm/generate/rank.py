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


PROGRESS_CHUNK = 1024
"""Candidates embedded per step when a progress bar is shown (it advances once per chunk)."""


def best_of_n(model, weights: np.ndarray, prompt: str, candidates: Sequence[str], progress: bool = False) -> Ranking:
    """Rank N candidate responses to one prompt for a user with weights lambda (``model.rewards``).

    ``progress`` shows a bar when there is more than one chunk of candidates to embed.

    Empty, whitespace-only or non-string candidates are refused (ValueError naming the first one)
    rather than scored: an embedding of nothing gets an arbitrary reward and could win. Non-finite
    weights or rewards are refused too, so a ranking never rests on NaN.
    """
    if len(candidates) == 0:
        raise ValueError("best_of_n needs at least one candidate")
    for index, candidate in enumerate(candidates):
        if not isinstance(candidate, str):
            raise ValueError(f"candidate {index} is not a string ({type(candidate).__name__})")
        if not candidate.strip():
            raise ValueError(f"candidate {index} is empty or whitespace only; remove it before ranking")
    if not np.isfinite(np.asarray(weights, dtype=np.float64)).all():
        raise ValueError("the user's weights hold NaN or inf; onboard this user again")
    chunks = {"chunk_size": PROGRESS_CHUNK, "progress": True} if progress and len(candidates) > PROGRESS_CHUNK else {}
    scores = model.rewards([prompt] * len(candidates), list(candidates), weights, **chunks)
    if not np.isfinite(scores).all():
        raise ValueError(f"{int(np.sum(~np.isfinite(scores)))} candidate reward(s) are NaN or inf: check the model's featurizer")
    return Ranking(prompt, list(candidates), scores, np.argsort(-scores, kind="stable"))
