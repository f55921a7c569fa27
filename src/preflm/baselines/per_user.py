"""Per-user reward model: a linear Bradley-Terry reward fitted on one user's answers only.

Each new user gets MAP logistic regression on the raw (standardized) feature differences with an
isotropic Gaussian prior N(0, I/strength), nothing shared with other users. With n answers in d
dimensions the MAP weights lie in the span of the n answered differences, so Newton runs in that
n-dimensional span (exact for an isotropic prior), batched over users with
:func:`preflm.factorize.fit_user_weights`. The one shared number, the prior strength, is chosen
on seen users by the same protocol (first answers in random order, accuracy on their other answers).
"""

from __future__ import annotations

import numpy as np

from preflm.baselines.common import SeenAnswers, choose_strength, standardize
from preflm.eval.harness import FewShotMethod
from preflm.eval.onboarding import PaddedAnswers, random_order
from preflm.factorize.users import fit_user_weights
from preflm.metrics import pooled_accuracy

DEFAULT_STRENGTHS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
TUNING_BUDGETS = (5, 20, 40)


def fit_per_user_weights(
    differences: np.ndarray, labels: np.ndarray, mask: np.ndarray, strength: float
) -> np.ndarray:
    """MAP weights (B, d) of independent users from their answered differences (B, n, d).

    Solved in the span of each user's answers: with the Gram matrix Z Z^T = U S U^T, the columns of
    Q = Z^T U S^-1/2 are an orthonormal basis of that span, logits Z (Q v) = U S^1/2 v and the prior
    ||Q v||^2 = ||v||^2, so Newton on v is n-dimensional instead of d-dimensional (with more answers
    than dimensions it runs on w directly).
    """
    z = np.where(mask[..., None], differences, 0.0)
    if z.shape[-1] <= z.shape[-2]:
        weights, _ = fit_user_weights(z, labels, np.zeros(z.shape[-1]), strength * np.eye(z.shape[-1]), mask=mask)
        return weights
    eigenvalues, eigenvectors = np.linalg.eigh(z @ np.swapaxes(z, -1, -2))
    keep = eigenvalues > 1e-9 * np.maximum(eigenvalues[..., -1:], 1e-300)
    root = np.sqrt(np.where(keep, eigenvalues, 0.0))
    reduced = eigenvectors * root[..., None, :]
    k = reduced.shape[-1]
    coefficients, _ = fit_user_weights(reduced, labels, np.zeros(k), strength * np.eye(k), mask=mask)
    inverse_root = np.where(keep, 1.0 / np.where(keep, root, 1.0), 0.0)
    span_coefficients = eigenvectors @ (inverse_root * coefficients)[..., None]
    return (np.swapaxes(z, -1, -2) @ span_coefficients)[..., 0]


class PerUserRewardModel:
    """Independent linear reward per user; only the prior strength is learned from seen users."""

    def __init__(self, strengths: tuple[float, ...] = DEFAULT_STRENGTHS, tuning_budgets=TUNING_BUDGETS):
        self.strengths, self.tuning_budgets = strengths, tuning_budgets

    def fit(self, features: np.ndarray, pairs: np.ndarray, seen: SeenAnswers, seed: int) -> "PerUserRewardModel":
        x = standardize(features)
        self.pair_differences_ = x[pairs[:, 0]] - x[pairs[:, 1]]
        answers = seen.part("all")
        order = random_order(answers.mask, seed)
        held_out = answers.take(order, max(self.tuning_budgets))

        def accuracy(strength: float) -> float:
            values = []
            for budget in self.tuning_budgets:
                weights = self.fit_users(answers.take(order, 0, budget), strength)
                values.append(np.nan_to_num(pooled_accuracy(self.scores(weights, held_out.pair), held_out.labels, held_out.mask)))
            return float(np.mean(values))

        self.strength_, self.strength_scores_ = choose_strength(self.strengths, accuracy)
        return self

    def fit_users(self, answers: PaddedAnswers, strength: float | None = None) -> np.ndarray:
        """Weights (B, d) of each user from their answers alone."""
        strength = self.strength_ if strength is None else strength
        return fit_per_user_weights(self.pair_differences_[answers.pair], answers.labels, answers.mask, strength)

    def scores(self, weights: np.ndarray, pair_index: np.ndarray) -> np.ndarray:
        """Each user's reward differences on their pairs (B, M)."""
        all_pairs = self.pair_differences_ @ weights.T
        return np.take_along_axis(all_pairs.T, pair_index, axis=1)


def per_user_method(name: str = "per_user", strengths: tuple[float, ...] = DEFAULT_STRENGTHS) -> FewShotMethod:
    """Harness adapter: each new user's own reward from their first answers (shared random order)."""

    def fit(features, split, seed):
        model = PerUserRewardModel(strengths).fit(features, split.train.pairs, SeenAnswers.from_split(split, seed), seed)
        return model, {"prior_strength": model.strength_}

    return FewShotMethod(name, fit)
