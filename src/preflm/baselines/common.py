"""Pieces the baselines share: standardized features, seen users' answers, strength selection, simplex fits.

The shared random answer order and the harness adapter live in :mod:`preflm.eval`; the early-stopping
loop and the held-out answers in :mod:`preflm.factorize.training`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from scipy.special import expit

from preflm.data.split import DatasetSplit
from preflm.eval.onboarding import PaddedAnswers, pad_rows
from preflm.factorize.training import DEFAULT_VALIDATION_BY, validation_mask


def standardize(features: np.ndarray) -> np.ndarray:
    """Item features scaled to zero mean and unit variance per column (as PReF does before its head)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"expected item features of shape (n_items, d), got {features.shape}")
    return (features - features.mean(0)) / (features.std(0) + 1e-6)


@dataclass(frozen=True)
class SeenAnswers:
    """Seen users' answers (users re-indexed 0..U-1) with a held-out share for early stopping and tuning."""

    pair: np.ndarray
    user: np.ndarray
    label: np.ndarray
    is_val: np.ndarray
    n_users: int

    @classmethod
    def from_split(
        cls, split: DatasetSplit, seed: int, val_fraction: float = 0.1, by: str = DEFAULT_VALIDATION_BY
    ) -> "SeenAnswers":
        """Seen users' answers with the same held-out draw as :class:`RewardFactorization` (same seed)."""
        train = split.train
        if train.n_answers == 0:
            raise ValueError("no seen-user answers to train on")
        users = train.answered_users()
        column = np.full(train.n_users, -1)
        column[users] = np.arange(len(users))
        is_val = validation_mask(train, val_fraction, seed, by=by)
        return cls(train.answer_pair, column[train.answer_user], train.answer_value, is_val, len(users))

    def part(self, which: str) -> PaddedAnswers:
        """Padded per-user answers: ``"train"``, ``"val"`` or ``"all"``."""
        keep = {"train": ~self.is_val, "val": self.is_val, "all": np.ones_like(self.is_val)}[which]
        return pad_rows(self.user[keep], self.pair[keep], self.label[keep], self.n_users)


def choose_strength(candidates: Iterable[float], score: Callable[[float], float]) -> tuple[float, dict]:
    """The candidate with the highest ``score`` (held-out accuracy); returns it and every score."""
    scores = {float(c): float(score(float(c))) for c in candidates}
    best = max(scores, key=lambda c: (np.nan_to_num(scores[c], nan=-1.0), c))
    return best, scores


def project_to_simplex(values: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row (..., K) onto the probability simplex (sort-based, batched)."""
    K = values.shape[-1]
    ordered = -np.sort(-values, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1) - 1.0
    ranks = np.arange(1, K + 1)
    support = ordered - cumulative / ranks > 0
    last = K - 1 - np.argmax(support[..., ::-1], axis=-1)
    threshold = np.take_along_axis(cumulative, last[..., None], axis=-1) / (last[..., None] + 1)
    return np.maximum(values - threshold, 0.0)


def fit_simplex_weights(
    differences: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    anchor: np.ndarray,
    strength: float,
    iterations: int = 300,
) -> np.ndarray:
    """MAP simplex weights per user, batched: accelerated projected gradient (FISTA).

    Minimizes sum_n mask * BCE(differences_n . w, y_n) + strength/2 ||w - anchor||^2 over the simplex;
    the problem is convex in w, so the step 1/L (L bounds the Hessian) converges. differences:
    (B, n, K) prototype reward differences of the answered pairs; returns (B, K).
    """
    differences = np.asarray(differences, dtype=np.float64)
    weight = np.asarray(mask, dtype=np.float64)
    B, _, K = differences.shape
    anchor = np.broadcast_to(project_to_simplex(np.asarray(anchor, dtype=np.float64)), (B, K))
    curvature = 0.25 * np.einsum("bni,bn,bnj->bij", differences, weight, differences)
    lipschitz = np.linalg.eigvalsh(curvature)[..., -1] + strength + 1e-9
    step = (1.0 / lipschitz)[:, None]

    def gradient(w: np.ndarray) -> np.ndarray:
        logits = np.einsum("bnk,bk->bn", differences, w)
        residual = weight * (expit(logits) - labels)
        return np.einsum("bnk,bn->bk", differences, residual) + strength * (w - anchor)

    w = anchor.copy()
    momentum_point, t = w.copy(), 1.0
    for _ in range(iterations):
        updated = project_to_simplex(momentum_point - step * gradient(momentum_point))
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        momentum_point = updated + ((t - 1.0) / t_next) * (updated - w)
        w, t = updated, t_next
    return w


def simplex_objective(differences, labels, mask, anchor, strength, w) -> np.ndarray:
    """The objective ``fit_simplex_weights`` minimizes, per user (for tests and diagnostics)."""
    logits = np.einsum("bnk,bk->bn", differences, w)
    nll = np.sum(mask * (np.logaddexp(0.0, logits) - labels * logits), axis=-1)
    return nll + 0.5 * strength * np.sum((w - anchor) ** 2, axis=-1)
