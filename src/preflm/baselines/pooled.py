"""Pooled Bradley-Terry reward model ("standard RLHF"): one linear reward on the features for everyone.

P(a preferred over b) = sigmoid(w . (x_a - x_b)) with x the standardized item features. The fit is
L2-regularized logistic regression: :func:`~preflm.factorize.fit_user_weights` with a zero prior mean,
each answered pair entering once weighted by its number of answers (exact for Bradley-Terry); the L2 strength is chosen on held-out
answers, then the model is refitted on all seen answers. New users' answers are not used at all.
"""

from __future__ import annotations

import numpy as np

from preflm.baselines.common import SeenAnswers, choose_strength, standardize
from preflm.eval.harness import FewShotMethod
from preflm.factorize.users import fit_user_weights
from preflm.metrics import pooled_accuracy

DEFAULT_STRENGTHS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def ridge_logistic(z: np.ndarray, y: np.ndarray, strength: float, counts: np.ndarray, init=None) -> np.ndarray:
    """argmin_w sum_n counts_n BCE(z_n . w, y_n) + strength/2 ||w||^2 (MAP Newton, zero prior mean)."""
    d = z.shape[1]
    weights, _ = fit_user_weights(z, y, np.zeros(d), strength * np.eye(d), mask=counts, init=init, max_iterations=30)
    return weights


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
            previous = fitted[strength] = ridge_logistic(dx[train_pairs], train_labels, strength, train_counts, previous)
            return pooled_accuracy(val_z @ previous, val_y)

        self.strength_, self.strength_scores_ = choose_strength(sorted(self.strengths, reverse=True), held_out_accuracy)
        self.validation_accuracy_ = self.strength_scores_[self.strength_]
        all_pairs, all_counts, all_labels = _by_pair(seen.pair, seen.label, len(pairs))
        self.weights_ = ridge_logistic(dx[all_pairs], all_labels, self.strength_, all_counts, fitted[self.strength_])
        self.pair_rewards_ = dx @ self.weights_
        return self

    def fit_users(self, answers) -> np.ndarray:
        """Nothing to learn per user: an empty weight row each."""
        return np.zeros((answers.n_users, 0))

    def scores(self, weights: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
        """Reward difference r(a) - r(b) for pair indices of any shape, the same for every user."""
        return self.pair_rewards_[pair_index]


def pooled_method(name: str = "pooled", strengths: tuple[float, ...] = DEFAULT_STRENGTHS) -> FewShotMethod:
    """Harness adapter: the same pooled reward for every new user, whatever the budget."""

    def fit(features, split, seed):
        model = PooledRewardModel(strengths).fit(features, split.train.pairs, SeenAnswers.from_split(split, seed))
        return model, {"validation_accuracy": model.validation_accuracy_}

    return FewShotMethod(name, fit)
