"""Simulated onboarding of many new users at once: ask, answer from their pool, refit, score.

Users are a batch dimension: each step selects one question per user and refits all of them with one
batched Newton solve, so the loop runs over budgets, never over users or candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preflm.data.matrix import AnswerMatrix
from preflm.eval.metrics import pairwise_accuracy, pairwise_auc
from preflm.onboard.newton import fit_user_weights
from preflm.onboard.select import QuestionSelector, get_selector


@dataclass(frozen=True)
class PaddedAnswers:
    """Per-user answers padded to a common length: z (B, N, J), labels (B, N), mask (B, N).

    ``pair`` (B, N) holds the answer-matrix pair index of each entry, so methods with their own
    representation of a pair (baselines) can use the same padded answers.
    """

    z: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    pair: np.ndarray
    true_diff: np.ndarray | None = None

    def with_z(self, pair_differences: np.ndarray) -> "PaddedAnswers":
        """The same answers described by another Delta phi table (e.g. other base rewards)."""
        z = np.where(self.mask[..., None], pair_differences[self.pair], 0.0)
        return PaddedAnswers(z, self.labels, self.mask, self.pair, self.true_diff)


def pad_answers(
    answers: AnswerMatrix, users: np.ndarray, pair_differences: np.ndarray, true_weights: np.ndarray | None = None
) -> PaddedAnswers:
    """Gather each user's answers (their Delta phi rows and labels) into padded arrays."""
    users = np.asarray(users)
    row_of = np.full(answers.n_users, -1)
    row_of[users] = np.arange(len(users))
    keep = row_of[answers.answer_user] >= 0
    rows = row_of[answers.answer_user[keep]]
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    counts = np.bincount(rows, minlength=len(users))
    width = max(int(counts.max()) if len(counts) else 0, 1)
    position = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    J = pair_differences.shape[1]
    z = np.zeros((len(users), width, J))
    labels = np.full((len(users), width), 0.5)
    mask = np.zeros((len(users), width), dtype=bool)
    pair_index = np.zeros((len(users), width), dtype=np.int64)
    pair = answers.answer_pair[keep][order]
    pair_index[rows, position] = pair
    z[rows, position] = pair_differences[pair]
    labels[rows, position] = answers.answer_value[keep][order]
    mask[rows, position] = True
    true_diff = None
    if answers.true_reward_diff is not None:
        true_diff = np.zeros((len(users), width))
        true_diff[rows, position] = answers.true_reward_diff[keep][order]
    return PaddedAnswers(z, labels, mask, pair_index, true_diff)


def simulate_onboarding(
    pool: PaddedAnswers,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    budgets: list[int],
    selector: str | QuestionSelector = "active",
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Weights (B, J) of every user after each budget of answers drawn from their own pool."""
    selector = get_selector(selector) if isinstance(selector, str) else selector
    rng = np.random.default_rng(seed)
    B, N, J = pool.z.shape
    available = pool.mask.copy()
    lam = np.broadcast_to(prior_mean, (B, J)).copy()
    covariance = np.broadcast_to(np.linalg.inv(prior_precision), (B, J, J)).copy()
    asked_z = np.zeros((B, 0, J))
    asked_y = np.zeros((B, 0))
    asked_mask = np.zeros((B, 0), dtype=bool)
    weights_at: dict[int, np.ndarray] = {}
    rows = np.arange(B)
    if 0 in budgets:
        weights_at[0] = lam.copy()
    for step in range(1, max(budgets) + 1):
        has_any = available.any(-1)
        choice = selector.select(pool.z, lam, covariance, available, rng)
        available[rows, choice] = False
        asked_z = np.concatenate([asked_z, pool.z[rows, choice][:, None]], axis=1)
        asked_y = np.concatenate([asked_y, pool.labels[rows, choice][:, None]], axis=1)
        asked_mask = np.concatenate([asked_mask, has_any[:, None]], axis=1)
        lam, covariance = fit_user_weights(asked_z, asked_y, prior_mean, prior_precision, mask=asked_mask, init=lam)
        if step in budgets:
            weights_at[step] = lam.copy()
    return weights_at


def score_weights(weights: np.ndarray, test: PaddedAnswers) -> tuple[np.ndarray, np.ndarray]:
    """Per-user accuracy and AUC of weights (B, J) on their test answers."""
    scores = np.einsum("bnj,bj->bn", test.z, weights)
    return pairwise_accuracy(scores, test.labels, test.mask), pairwise_auc(scores, test.labels, test.mask)
