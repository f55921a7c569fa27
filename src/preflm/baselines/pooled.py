"""Pooled Bradley-Terry reward model ("standard RLHF"): one linear reward on the features for everyone.

P(a preferred over b) = sigmoid(w . (x_a - x_b)) with x the standardized item features. The fit is
L2-regularized logistic regression solved by Newton's method; the L2 strength is chosen on held-out
answers, then the model is refitted on all seen answers. New users' answers are not used at all.
"""

from __future__ import annotations

import numpy as np

from preflm.baselines.common import SeenAnswers, choose_strength, decided_accuracy, standardize

DEFAULT_STRENGTHS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def ridge_logistic_newton(
    z: np.ndarray,
    y: np.ndarray,
    strength: float,
    counts: np.ndarray | None = None,
    init: np.ndarray | None = None,
    max_iterations: int = 30,
) -> np.ndarray:
    """argmin_w sum_n counts_n BCE(z_n . w, y_n) + strength/2 ||w||^2 by damped Newton (BLAS products).

    ``counts`` lets repeated rows (the same pair answered by many users, ``y`` their mean label) enter
    once, which is exact for the Bradley-Terry likelihood.
    """
    counts = np.ones(len(y)) if counts is None else counts
    w = np.zeros(z.shape[1]) if init is None else init.copy()

    def objective(v: np.ndarray) -> float:
        logits = z @ v
        return float(np.sum(counts * (np.logaddexp(0.0, logits) - y * logits)) + 0.5 * strength * v @ v)

    current = objective(w)
    for _ in range(max_iterations):
        p = 0.5 * (1.0 + np.tanh(0.5 * (z @ w)))
        gradient = z.T @ (counts * (p - y)) + strength * w
        hessian = (z * (counts * p * (1 - p))[:, None]).T @ z + strength * np.eye(z.shape[1])
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while True:
            candidate = w - scale * step
            value = objective(candidate)
            if value <= current + 1e-12 or scale < 1e-4:
                break
            scale *= 0.5
        improvement = current - value
        w, current = candidate, value
        if improvement < 1e-8 * max(1.0, abs(current)):
            break
    return w


def _by_pair(pair: np.ndarray, label: np.ndarray, n_pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Answered pairs, their answer counts and mean labels (sufficient statistics of the likelihood)."""
    counts = np.bincount(pair, minlength=n_pairs).astype(float)
    sums = np.bincount(pair, weights=label, minlength=n_pairs)
    asked = np.flatnonzero(counts)
    return asked, counts[asked], sums[asked] / counts[asked]


class PooledRewardModel:
    """One linear Bradley-Terry reward over all seen users' answers (scikit-learn style estimator)."""

    def __init__(self, strengths: tuple[float, ...] = DEFAULT_STRENGTHS):
        self.strengths = strengths

    def fit(self, features: np.ndarray, pairs: np.ndarray, seen: SeenAnswers) -> "PooledRewardModel":
        x = standardize(features)
        dx = x[pairs[:, 0]] - x[pairs[:, 1]]
        train = ~seen.is_val
        train_pairs, train_counts, train_labels = _by_pair(seen.pair[train], seen.label[train], len(pairs))
        val_z, val_y = dx[seen.pair[seen.is_val]], seen.label[seen.is_val]
        fitted: dict[float, np.ndarray] = {}
        previous = None

        def held_out_accuracy(strength: float) -> float:
            nonlocal previous
            previous = fitted[strength] = ridge_logistic_newton(
                dx[train_pairs], train_labels, strength, train_counts, init=previous
            )
            return decided_accuracy(val_z @ previous, val_y, np.ones(len(val_y), dtype=bool))

        self.strength_, self.strength_scores_ = choose_strength(sorted(self.strengths, reverse=True), held_out_accuracy)
        self.validation_accuracy_ = self.strength_scores_[self.strength_]
        all_pairs, all_counts, all_labels = _by_pair(seen.pair, seen.label, len(pairs))
        self.weights_ = ridge_logistic_newton(
            dx[all_pairs], all_labels, self.strength_, all_counts, init=fitted[self.strength_]
        )
        self.pair_rewards_ = dx @ self.weights_
        return self

    def pair_scores(self, pair_index: np.ndarray) -> np.ndarray:
        """Reward difference r(a) - r(b) for pair indices of any shape."""
        return self.pair_rewards_[pair_index]


class PooledMethod:
    """Harness adapter: the same pooled reward for every new user, whatever the budget."""

    supports_active = False

    def __init__(self, name: str = "pooled", strengths: tuple[float, ...] = DEFAULT_STRENGTHS):
        self.name, self.strengths = name, strengths

    def fit(self, features, split, seed):
        seen = SeenAnswers.from_split(split, seed)
        self.model = PooledRewardModel(self.strengths).fit(features, split.train.pairs, seen)
        return {"validation_accuracy": self.model.validation_accuracy_}

    def test_scores(self, pool, test, budgets, strategy, seed):
        scores = np.where(test.mask, self.model.pair_scores(test.pair), 0.0)
        return {b: scores for b in budgets}
