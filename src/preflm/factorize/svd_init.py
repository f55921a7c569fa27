"""SVD initialization: complete the pairs x users answer matrix, then take its top-J factors.

Answers are centred (2p - 1, so "no preference" is 0), missing cells start at 0; each round replaces
only the missing cells by a rank-k reconstruction, clipped to the valid range.
"""

from __future__ import annotations

import numpy as np


def impute_answers(answers: np.ndarray, rank: int = 100, iterations: int = 10) -> np.ndarray:
    """Iterative SVD imputation of a (pairs x users) matrix in [0, 1] with NaN for missing cells."""
    missing = np.isnan(answers)
    centred = np.where(missing, 0.0, 2.0 * answers - 1.0)
    rank = max(1, min(rank, min(centred.shape) - 1)) if min(centred.shape) > 1 else 1
    for _ in range(iterations):
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        reconstruction = (u[:, :rank] * s[:rank]) @ vt[:rank]
        centred[missing] = np.clip(reconstruction[missing], -1.0, 1.0)
    return (centred + 1.0) / 2.0


def svd_factors(answers: np.ndarray, n_factors: int, rank: int = 100, iterations: int = 10):
    """Top-J pair factors U_J sqrt(S_J) and user factors V_J sqrt(S_J) of the completed, centred matrix."""
    completed = 2.0 * impute_answers(answers, rank, iterations) - 1.0
    u, s, vt = np.linalg.svd(completed, full_matrices=False)
    k = min(n_factors, len(s))
    root = np.sqrt(s[:k])
    pair_factors = np.zeros((answers.shape[0], n_factors))
    user_factors = np.zeros((answers.shape[1], n_factors))
    pair_factors[:, :k] = u[:, :k] * root
    user_factors[:, :k] = vt[:k].T * root
    return pair_factors, user_factors
